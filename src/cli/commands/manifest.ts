import { Option, type Command } from "commander";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parseOnePlatform } from "../../oci/index.js";
import { withContext } from "../context.js";
import { parseFormat, printJson } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function register(program: Command): void {
  program
    .command("manifest")
    .description("print an image's manifest (or index) exactly as the registry serves it (or the layout, archive or store holds it)")
    .argument("<image>", "image: a registry reference (docker:// optional), store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--platform <os/arch[/variant]>", "the manifest of this platform's image in a multi-platform index")
    .addOption(new Option("--format <format>", "raw (the bytes as served) or json (digest, media type and the document)").choices(["raw", "json"]).default("raw"))
    .addHelpText("after", "\nExamples:\n  regcli manifest localhost:5000/app:1.0 | jq .\n  regcli manifest busybox --platform linux/arm64 | jq .layers\n  regcli manifest busybox --format json")
    .action(async (text: string, opts: { format: string; platform?: string }, cmd: Command) => {
      const { getManifest } = await load();
      const raw = opts.format === "raw";
      if (!raw) parseFormat(opts.format);
      const platform = opts.platform ? parseOnePlatform(opts.platform, "manifest prints one image's manifest") : undefined;
      const spec = parseLocation(text);
      const manifest = await withContext(cmd, registryOf(spec), (ctx) => getManifest(ctx, spec, platform));
      if (raw) process.stdout.write(manifest.bytes);
      else printJson({ reference: manifest.reference, digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length, manifest: JSON.parse(manifest.bytes.toString("utf8")) });
    });
}
