import type { Command } from "commander";
import type { LayerCompression } from "../../oci/index.js";
import { compressOption } from "../context.js";
import { rewriteOptions, runRewrite, type RewriteFlags } from "../rewrite.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => await import("../../operations/flatten.js");

export function register(program: Command): void {
  const command = program
    .command("flatten")
    .description("make an image one with a single layer: its filesystem with whiteouts applied (as export writes it), each platform of an index; on any location")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .addOption(compressOption("the layer's compression (zstd: OCI images only; readers need containerd 1.5+, podman 3+)", "gzip"));
  rewriteOptions(command, "IMAGE", "flatten")
    .addHelpText("after", "\nExamples:\n  regcli flatten localhost:5000/app:1.0 -t localhost:5000/app:1.0-flat\n  regcli flatten oci:./layout:1.0 -t oci:./layout:flat --compress none")
    .action(async (image: string, opts: RewriteFlags & { compress: LayerCompression }, cmd: Command) => {
      const { flattenImage } = await load();
      await runRewrite(cmd, image, opts, `Flattening ${image}`, (ctx, source, target, run) => flattenImage(ctx, source, target, { compression: opts.compress, ...run }), () => ({ verb: "Flattened" }));
    });
}
