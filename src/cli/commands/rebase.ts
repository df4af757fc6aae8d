import { Option, type Command } from "commander";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parsePlatforms } from "../../oci/index.js";
import { parseKeyValues } from "../../oci/mutate.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { collect, parseJobs, withContext } from "../context.js";
import { err, parseFormat, plural, printJson, printLine, summary } from "../output.js";
import { targetOf } from "./mutate.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/rebase.js")), ...(await import("../progress.js")) });

interface RebaseFlags {
  oldBase?: string;
  newBase?: string;
  tag?: string;
  platform?: string;
  annotation?: string[];
  jobs: string;
  format: string;
}

export function register(program: Command): void {
  program
    .command("rebase")
    .description("put an image's own layers on another base (crane rebase): the old base's layers must be the start of the image's; each platform of an index on the bases' image of that platform; on any location")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--old-base <image>", "the base the image was built on (default: its org.opencontainers.image.base.name@base.digest annotations)")
    .option("--new-base <image>", "the base to put under it (default: its org.opencontainers.image.base.name annotation, as that tag is now)")
    .option("-t, --tag <target>", "where to write the new image (any location); default: back under IMAGE's own tag")
    .option("--platform <os/arch,...>", "of an index: the platforms to rebase (default all; the others are kept as they are)")
    .option("--annotation <key=value>", "a manifest annotation, on the index of a multi-platform image (repeatable)", collect)
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text (the new digest) or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli rebase localhost:5000/app:1.0 --old-base localhost:5000/base:1 --new-base localhost:5000/base:2 -t localhost:5000/app:1.0-base2\n  regcli rebase localhost:5000/app:1.0 -t localhost:5000/app:1.0-rebased   # bases from the image's annotations")
    .action(async (image: string, opts: RebaseFlags, cmd: Command) => {
      const { rebaseImage, progressFor, blobCounts, COPY_VERBS } = await load();
      const format = parseFormat(opts.format);
      const quiet = cmd.optsWithGlobals().quiet === true;
      const annotations = Object.fromEntries(parseKeyValues(opts.annotation, "--annotation"));
      const selection = opts.platform ? parsePlatforms(opts.platform) : "all";
      const jobs = parseJobs(opts.jobs);
      const source = parseLocation(image);
      const target = parseLocation(targetOf(image, opts.tag, quiet));
      const progress = progressFor(cmd, COPY_VERBS, `Rebasing ${image}`);
      try {
        const result = await withContext(cmd, registryOf(target), (ctx) =>
          rebaseImage(ctx, source, target, { oldBase: opts.oldBase, newBase: opts.newBase, annotations, platforms: selection === "all" ? undefined : selection, jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress }),
        );
        progress.stop();
        if (format === "json") printJson(result);
        else printLine(result.digest);
        summary(quiet, `${err.green("Rebased")} ${result.source} -> ${result.destination} (${plural(result.images.length, "image")}): ${blobCounts(result.stats)}`, { source: result.source, destination: result.destination, digest: result.digest, images: result.images.length, ...result.stats });
      } finally {
        progress.stop();
      }
    });
}
