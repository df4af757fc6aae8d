import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parsePlatforms, type LayerCompression } from "../../oci/index.js";
import { createdTime, sourceDateEpoch } from "../../oci/mutate.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { collect, parseJobs, withContext } from "../context.js";
import { err, humanSize, parseFormat, plural, printJson, printLine, summary } from "../output.js";
import { targetOf } from "./mutate.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/append.js")), ...(await import("../progress.js")) });

interface AppendFlags {
  layer?: string[];
  tag?: string;
  compress: LayerCompression;
  keepOwner?: boolean;
  allowDevices?: boolean;
  platform?: string;
  jobs: string;
  format: string;
}

export function register(program: Command): void {
  program
    .command("append")
    .description("add layers (directories, tars or tar.gz files) on top of an image and write the new image, on any location; reproducible with SOURCE_DATE_EPOCH")
    .argument("<base>", "the base image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--layer <path>", "a directory (packed: sorted, owned by 0:0, mtimes clamped to SOURCE_DATE_EPOCH), a tar, tar.gz or tar.zst; repeatable, in order", collect)
    .option("-t, --tag <target>", "where to write the new image (any location); default: back under BASE's own tag")
    .addOption(new Option("--compress <algorithm>", "compression of new layers (zstd: OCI bases only; readers need containerd 1.5+, podman 3+)").choices(["gzip", "zstd", "none"]).default("gzip"))
    .option("--keep-owner", "a directory's files keep their uid/gid (default 0:0)")
    .option("--allow-devices", "(root only) pack a directory's device nodes and fifos instead of refusing them")
    .option("--platform <os/arch,...>", "of an index: the platforms to append to (default all; the others are kept as they are)")
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text (the new digest) or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli append localhost:5000/base:1 --layer ./out -t localhost:5000/app:1\n  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) regcli append gcr.io/distroless/static --layer ./dist -t oci:./app:1\n  regcli append store:app:1 --layer extra.tar.gz --platform linux/arm64 -t store:app:2")
    .action(async (base: string, opts: AppendFlags, cmd: Command) => {
      const { appendLayers, progressFor, blobCounts, PUSH_VERBS } = await load();
      const format = parseFormat(opts.format);
      const quiet = cmd.optsWithGlobals().quiet === true;
      if (!opts.layer?.length) throw new RegcliError("usage", "append needs at least one --layer PATH (a directory, a tar or a tar.gz)");
      if (opts.allowDevices && process.getuid?.() !== 0) throw new RegcliError("usage", "--allow-devices is for root only: device nodes in a layer are made by whoever unpacks it as root");
      const selection = opts.platform ? parsePlatforms(opts.platform) : "all";
      const jobs = parseJobs(opts.jobs);
      const epoch = sourceDateEpoch();
      const created = createdTime(undefined);
      const source = parseLocation(base);
      const target = parseLocation(targetOf(base, opts.tag, quiet));
      const progress = progressFor(cmd, PUSH_VERBS, `Packing ${plural(opts.layer.length, "layer")}`);
      try {
        const result = await withContext(cmd, registryOf(target), (ctx) =>
          appendLayers(ctx, source, target, {
            layers: opts.layer!,
            compress: opts.compress,
            pack: { keepOwner: opts.keepOwner, allowDevices: opts.allowDevices, epoch },
            created,
            platforms: selection === "all" ? undefined : selection,
            jobs,
            onEvent: progress.onEvent,
            byteProgress: progress.byteProgress,
          }),
        );
        progress.stop();
        if (format === "json") printJson(result);
        else printLine(result.digest);
        const size = result.layers.reduce((n, l) => n + l.size, 0);
        summary(quiet, `${err.green("Appended")} ${plural(result.layers.length, "layer")} (${humanSize(size)}) to ${plural(result.images.length, "image")} of ${result.source} -> ${result.destination}: ${blobCounts(result.stats)}`, { source: result.source, destination: result.destination, digest: result.digest, layers: result.layers.length, images: result.images.length, ...result.stats });
      } finally {
        progress.stop();
      }
    });
}
