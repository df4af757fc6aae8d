import { Option, type Command } from "commander";
import { parsePlatform } from "../../oci/index.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { withContext } from "../context.js";
import { parseFormat, printJson } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function register(program: Command): void {
  program
    .command("config")
    .description("print an image's config blob (from an index: the --platform image, default this machine's)")
    .argument("<image>", "image: a registry reference (docker:// optional), store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--platform <os/arch[/variant]>", "platform to pick from a multi-platform index")
    .addOption(new Option("--format <format>", "raw (the bytes as stored) or json (pretty-printed)").choices(["raw", "json"]).default("raw"))
    .addHelpText("after", "\nExample:\n  regcli config localhost:5000/app:1.0 --platform linux/arm64 --format json")
    .action(async (text: string, opts: { format: string; platform?: string }, cmd: Command) => {
      const { getConfig } = await load();
      const raw = opts.format === "raw";
      if (!raw) parseFormat(opts.format);
      const spec = parseLocation(text);
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const bytes = await withContext(cmd, registryOf(spec), (ctx) => getConfig(ctx, spec, platform));
      if (raw) process.stdout.write(bytes);
      else printJson(JSON.parse(bytes.toString("utf8")));
    });
}
