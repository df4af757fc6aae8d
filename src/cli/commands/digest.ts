import { Option, type Command } from "commander";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { withContext } from "../context.js";
import { parseFormat, printJson, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function register(program: Command): void {
  program
    .command("digest")
    .description("print the digest of an image's manifest (from a registry: a HEAD request, no download)")
    .argument("<image>", "image: a registry reference (docker:// optional), store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExample:\n  regcli digest localhost:5000/app:1.0")
    .action(async (text: string, opts: { format: string }, cmd: Command) => {
      const { resolveDigest } = await load();
      const format = parseFormat(opts.format);
      const spec = parseLocation(text);
      const head = await withContext(cmd, registryOf(spec), (ctx) => resolveDigest(ctx, spec));
      if (format === "json") printJson({ reference: head.reference, digest: head.digest, mediaType: head.mediaType });
      else printLine(head.digest);
    });
}
