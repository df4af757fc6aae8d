import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { hasLocalTransport, parseLocation, withoutDockerTransport } from "../../locations/parse.js";
import { parseListTarget } from "../../reference/index.js";
import { withContext } from "../context.js";
import { parseFormat, printJson, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/list.js")) });


export function register(program: Command): void {
  program
    .command("ls")
    .alias("list")
    .description("list the repositories of a registry, the tags of a repository, or the names in a layout, an archive or the local store")
    .argument("<target>", "a registry (localhost:5000), a repository (localhost:5000/app), oci:DIR, docker-archive:FILE, oci-archive:FILE, store: or store:REPOSITORY")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .option("--page-size <n>", "entries asked for per page (every page is followed)", "1000")
    .addHelpText("after", "\nExamples:\n  regcli ls localhost:5000\n  regcli ls localhost:5000/firstapp --format json\n  regcli ls oci:./layout\n  regcli ls store:busybox")
    .action(async (text: string, opts: { format: string; pageSize: string }, cmd: Command) => {
      const { list, listLocation } = await load();
      const format = parseFormat(opts.format);
      const pageSize = Number(opts.pageSize);
      if (!Number.isInteger(pageSize) || pageSize < 1) throw new RegcliError("usage", `--page-size must be a positive integer, got "${opts.pageSize}"`);
      const spec = hasLocalTransport(text) ? parseLocation(text) : undefined;
      const target = spec ? undefined : parseListTarget(withoutDockerTransport(text));
      const result = await withContext(cmd, target?.registry, (ctx) => (spec && spec.kind !== "registry" ? listLocation(ctx, spec) : list(ctx, target!, pageSize)));
      if (format === "json") {
        printJson(result.kind === "repositories" ? { registry: result.registry, repositories: result.items } : { repository: result.repository, tags: result.items });
      } else {
        for (const item of result.items) printLine(item);
      }
    });
}
