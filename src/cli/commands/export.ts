import type { Command } from "commander";
import { parseOnePlatform } from "../../oci/index.js";
import { withContext } from "../context.js";
import { note, refuseBinaryOnTerminal } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/export.js")) });


interface ExportOptions {
  output?: string;
  platform?: string;
  preservePermissions?: boolean;
  devices?: boolean;
}

export function register(program: Command): void {
  program
    .command("export")
    .description("flatten an image's layers into one filesystem (whiteouts applied): a tar, a directory, or stdout")
    .argument("<image>", "a local image, a registry reference, or oci:/docker-archive:/oci-archive:")
    .option("-o, --output <path>", "a path ending in .tar gets a tar; any other path becomes a new (or empty) directory (default: tar to stdout)")
    .option("--platform <os/arch[/variant]>", "platform to pick from a multi-platform index (default: this machine's)")
    .option("--preserve-permissions", "keep setuid/setgid/sticky bits (stripped by default; in a directory, setuid/setgid only as root, where owners are kept)")
    .option("--devices", "keep device nodes and fifos (created in a directory only when running as root; skipped by default)")
    .addHelpText("after", "\nExamples:\n  regcli export busybox -o rootfs.tar\n  regcli export localhost:5000/app:1.0 -o ./rootfs/\n  regcli export localhost:5000/app:1.0 --platform linux/arm64 -o arm64-rootfs.tar\n  regcli export busybox | tar -tv")
    .action(async (text: string, opts: ExportOptions, cmd: Command) => {
      const { exportImage, exportImageToStream } = await load();
      const platform = opts.platform ? parseOnePlatform(opts.platform, "export writes one filesystem, which is one platform's") : undefined;
      const flatten = { platform, preservePermissions: opts.preservePermissions, devices: opts.devices };
      await withContext(cmd, undefined, async (ctx) => {
        if (!opts.output) {
          refuseBinaryOnTerminal("a tar");
          return exportImageToStream(ctx, text, process.stdout, flatten);
        }
        const toDirectory = opts.output.endsWith("/") || !/\.tar$/.test(opts.output);
        const output = opts.output.replace(/\/+$/, "") || opts.output;
        const r = await exportImage(ctx, text, output, { ...flatten, toDirectory });
        if (!cmd.optsWithGlobals().quiet) note(`Exported ${r.entries} entries to ${output}`);
      });
    });

  program
    .command("cat")
    .description("print one file from an image (the version in the topmost layer that has it)")
    .argument("<image>", "a local image, a registry reference, or oci:/docker-archive:/oci-archive:")
    .argument("<path>", "path inside the image, e.g. /etc/os-release")
    .option("--platform <os/arch[/variant]>", "platform to pick from a multi-platform index (default: this machine's)")
    .addHelpText("after", "\nExample:\n  regcli cat busybox /etc/os-release")
    .action(async (text: string, path: string, opts: { platform?: string }, cmd: Command) => {
      const { cat } = await load();
      const platform = opts.platform ? parseOnePlatform(opts.platform, "cat reads one platform's filesystem") : undefined;
      await withContext(cmd, undefined, (ctx) => cat(ctx, text, path, process.stdout, platform));
    });
}
