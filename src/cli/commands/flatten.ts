import { Option, type Command } from "commander";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parsePlatforms, type LayerCompression } from "../../oci/index.js";
import { parseKeyValues } from "../../oci/mutate.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { collect, parseJobs, withContext } from "../context.js";
import { err, parseFormat, plural, printJson, printLine, summary } from "../output.js";
import { targetOf } from "./mutate.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/flatten.js")), ...(await import("../progress.js")) });

interface FlattenFlags {
  tag?: string;
  compress: LayerCompression;
  platform?: string;
  annotation?: string[];
  jobs: string;
  format: string;
}

export function register(program: Command): void {
  program
    .command("flatten")
    .description("make an image one with a single layer: its filesystem with whiteouts applied (as export writes it), each platform of an index; on any location")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("-t, --tag <target>", "where to write the new image (any location); default: back under IMAGE's own tag")
    .addOption(new Option("--compress <algorithm>", "the layer's compression (zstd: OCI images only; readers need containerd 1.5+, podman 3+)").choices(["gzip", "zstd", "none"]).default("gzip"))
    .option("--platform <os/arch,...>", "of an index: the platforms to flatten (default all; the others are kept as they are)")
    .option("--annotation <key=value>", "a manifest annotation, on the index of a multi-platform image (repeatable)", collect)
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text (the new digest) or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli flatten localhost:5000/app:1.0 -t localhost:5000/app:1.0-flat\n  regcli flatten oci:./layout:1.0 -t oci:./layout:flat --compress none")
    .action(async (image: string, opts: FlattenFlags, cmd: Command) => {
      const { flattenImage, progressFor, blobCounts, COPY_VERBS } = await load();
      const format = parseFormat(opts.format);
      const quiet = cmd.optsWithGlobals().quiet === true;
      const annotations = Object.fromEntries(parseKeyValues(opts.annotation, "--annotation"));
      const selection = opts.platform ? parsePlatforms(opts.platform) : "all";
      const jobs = parseJobs(opts.jobs);
      const source = parseLocation(image);
      const target = parseLocation(targetOf(image, opts.tag, quiet));
      const progress = progressFor(cmd, COPY_VERBS, `Flattening ${image}`);
      try {
        const result = await withContext(cmd, registryOf(target), (ctx) =>
          flattenImage(ctx, source, target, { compression: opts.compress, annotations, platforms: selection === "all" ? undefined : selection, jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress }),
        );
        progress.stop();
        if (format === "json") printJson(result);
        else printLine(result.digest);
        summary(quiet, `${err.green("Flattened")} ${result.source} -> ${result.destination} (${plural(result.images.length, "image")}): ${blobCounts(result.stats)}`, { source: result.source, destination: result.destination, digest: result.digest, images: result.images.length, ...result.stats });
      } finally {
        progress.stop();
      }
    });
}
