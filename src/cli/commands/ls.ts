import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { hasLocalTransport, parseLocation, withoutDockerTransport } from "../../locations/parse.js";
import { parseListTarget } from "../../reference/index.js";
import type { NameOrder } from "../../operations/tag-filters.js";
import { collect, positiveInteger, withContext } from "../context.js";
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
    .option("--include <regex>", "only names matching this anchored regex (repeatable: any of them)", collect)
    .addOption(new Option("--sort <order>", "semver (versions ascending, then other names), alpha, or none: the registry's order").choices(["semver", "alpha", "none"]).default("none"))
    .option("-n <count>", "one page: the first COUNT names (after --last), as the registry's n parameter")
    .option("--last <name>", "start after this name, as the registry's last parameter (with -n: the page after it)")
    .option("--page-size <n>", "entries asked for per page (every page is followed)", "1000")
    .addHelpText(
      "after",
      "\nExamples:\n  regcli ls localhost:5000\n  regcli ls localhost:5000/firstapp --format json\n  regcli ls localhost:5000/app --include 'v?1\\..*' --sort semver\n  regcli ls localhost:5000/app -n 50                 # the first page of 50 tags\n  regcli ls localhost:5000/app -n 50 --last v1.9     # the next page\n  regcli ls oci:./layout\n  regcli ls store:busybox",
    )
    .action(async (text: string, opts: { format: string; pageSize: string; include?: string[]; sort: string; n?: string; last?: string }, cmd: Command) => {
      const { list, listLocation } = await load();
      const format = parseFormat(opts.format);
      let pageSize = positiveInteger(opts.pageSize, "--page-size");
      if (opts.n !== undefined) {
        if (cmd.getOptionValueSource("pageSize") === "cli") throw new RegcliError("usage", "-n and --page-size exclude each other: -n is the size of the one page");
        pageSize = positiveInteger(opts.n, "-n");
      }
      const shape = { include: opts.include, sort: opts.sort as NameOrder };
      const spec = hasLocalTransport(text) ? parseLocation(text) : undefined;
      if (spec && (opts.n !== undefined || opts.last !== undefined)) throw new RegcliError("usage", "-n and --last page a registry's listing; a layout, an archive or the store is listed whole");
      const target = spec ? undefined : parseListTarget(withoutDockerTransport(text));
      const result = await withContext(cmd, target?.registry, (ctx) =>
        spec && spec.kind !== "registry" ? listLocation(ctx, spec, shape) : list(ctx, target!, { pageSize, last: opts.last, onePage: opts.n !== undefined, ...shape }),
      );
      if (format === "json") {
        printJson(result.kind === "repositories" ? { registry: result.registry, repositories: result.items } : { repository: result.repository, tags: result.items });
      } else {
        for (const item of result.items) printLine(item);
      }
    });
}
