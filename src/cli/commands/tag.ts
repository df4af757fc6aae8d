import type { Command } from "commander";
import { withoutDockerTransport } from "../../locations/parse.js";
import { parseReference } from "../../reference/index.js";
import { withContext } from "../context.js";
import { err, note, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/tag.js")) });


export function register(program: Command): void {
  program
    .command("tag")
    .description("add a tag to an image in place (the same manifest under a new tag; no blob moves)")
    .argument("<image>", "image reference")
    .argument("<tag>", "the new tag, in the same repository")
    .addHelpText("after", "\nExample:\n  regcli tag localhost:5000/app:1.0 stable")
    .action(async (text: string, newTag: string, _opts: unknown, cmd: Command) => {
      const { tag } = await load();
      const ref = parseReference(withoutDockerTransport(text));
      const quiet = cmd.optsWithGlobals().quiet;
      const result = await withContext(cmd, ref.registry, (ctx) => tag(ctx, ref, newTag));
      if (!quiet) note(`${err.green("Tagged")} ${result.target.full}`);
      printLine(result.digest);
    });
}
