import type { Command } from "commander";
import { parseReference } from "../../reference/index.js";
import { withContext } from "../context.js";
import { parseFormat, printJson, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function register(program: Command): void {
  program
    .command("digest")
    .description("print the digest of an image's manifest (a HEAD request: no download)")
    .argument("<image>", "image reference")
    .option("--format <format>", "text or json", "text")
    .addHelpText("after", "\nExample:\n  regcli digest localhost:5000/app:1.0")
    .action(async (text: string, opts: { format: string }, cmd: Command) => {
      const { resolveDigest } = await load();
      const format = parseFormat(opts.format);
      const ref = parseReference(text);
      const head = await withContext(cmd, ref.registry, (ctx) => resolveDigest(ctx, ref));
      if (format === "json") printJson({ reference: ref.full, digest: head.digest, mediaType: head.mediaType });
      else printLine(head.digest);
    });
}
