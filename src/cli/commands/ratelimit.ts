import { Option, type Command } from "commander";
import { parseReference } from "../../reference/index.js";
import { withContext } from "../context.js";
import { parseFormat, printJson, printLine, table } from "../output.js";
import { humanDuration } from "../../util/duration.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/ratelimit.js")) });

function windowText(seconds: number): string {
  const human = humanDuration(seconds * 1000);
  return human === `${seconds} s` ? human : `${human} (${seconds} s)`;
}

export function register(program: Command): void {
  program
    .command("ratelimit")
    .description("show the pull rate limit a registry reports (Docker Hub's ratelimit headers), from a HEAD on a manifest, which does not count as a pull")
    .argument("[image]", "image whose registry to ask (the registry itself, not a mirror)", "docker.io/ratelimitpreview/test")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli ratelimit\n  regcli ratelimit docker.io/library/alpine --format json")
    .action(async (text: string, opts: { format: string }, cmd: Command) => {
      const { checkRateLimit } = await load();
      const format = parseFormat(opts.format);
      const ref = parseReference(text);
      const rl = await withContext(cmd, ref.registry, (ctx) => checkRateLimit(ctx, ref));
      if (format === "json") {
        printJson(rl ? { registry: ref.registry, reported: true, limit: rl.limit ?? null, remaining: rl.remaining, window: rl.window ?? null, source: rl.source ?? null, headers: rl.headers } : { registry: ref.registry, reported: false });
      } else if (!rl) {
        printLine(`${ref.registry}: no rate limit reported`);
      } else {
        printLine(
          table([
            ["registry", ref.registry],
            ["limit", rl.limit === undefined ? "not reported" : String(rl.limit)],
            ["remaining", String(rl.remaining)],
            ["window", rl.window === undefined ? "not reported" : windowText(rl.window)],
            ["source", rl.source ?? "not reported"],
          ]),
        );
      }
    });
}
