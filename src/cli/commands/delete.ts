import type { Command } from "commander";
import { parseReference } from "../../reference/index.js";
import { withContext } from "../context.js";
import { err, note, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/tag.js")) });


export function register(program: Command): void {
  program
    .command("delete")
    .alias("rm")
    .description("delete an image's manifest from its registry (a tag is resolved to its digest first)")
    .argument("<image>", "image reference")
    .addHelpText(
      "after",
      "\nDeleting by digest removes the manifest and every tag pointing to it; registries reclaim blobs in their own GC.\n\nExample:\n  regcli delete localhost:5000/app:old",
    )
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { deleteImage } = await load();
      const ref = parseReference(text);
      const quiet = cmd.optsWithGlobals().quiet;
      const result = await withContext(cmd, ref.registry, (ctx) => deleteImage(ctx, ref));
      if (!quiet) note(`${err.red("Deleted")} ${ref.name}@${result.digest}`);
      printLine(result.digest);
    });
}
