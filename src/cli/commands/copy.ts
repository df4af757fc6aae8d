import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { copyPlatforms, parsePlatforms } from "../../oci/index.js";
import type { LayerCompression } from "../../oci/media-types.js";
import { addReferrerOptions, addSideOptions, compressChoice, compressOption, referrerChoice, parseJobs, resolveSides, withContext } from "../context.js";
import { err, parseFormat, plural, printJson, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../locations/registry.js")), ...(await import("../../operations/copy.js")), ...(await import("../../operations/transfer.js")), ...(await import("../../locations/parse.js")), ...(await import("../progress.js")) });


export function register(program: Command): void {
  const copy = program
    .command("copy")
    .alias("cp")
    .description("copy an image between registries and OCI layouts (or a whole repository with --all-tags), keeping digests")
    .argument("<source>", "source: a registry reference, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .argument("<destination>", "destination: a registry reference (a repository with --all-tags), oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--platform <os/arch,...|all>", "of a multi-platform index: one platform copies that image alone; several copy the index reduced to them (a new index: its digest changes); all (the default) copies the whole index")
    .option("-a, --all-tags", "copy every tag of the source repository")
    .option("--preserve-digests", "keep exact bytes: Docker manifests into OCI layouts/archives as they are (default: convert to OCI media types, like skopeo), and a legacy docker-archive's uncompressed layers into a registry (default: gzip them)")
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(compressOption())
    .addOption(new Option("--format <format>", "text or json (the result on stdout)").choices(["text", "json"]).default("text"));
  addReferrerOptions(addSideOptions(copy))
    .addHelpText(
      "after",
      "\nExamples:\n  regcli copy docker.io/library/busybox localhost:5000/firstapp\n  regcli copy --src-creds reader --dest-authfile ci-auth.json src.example.com/app:1.0 dst.example.com/app:1.0\n  regcli copy localhost:5000/app:1.0 registry.example.com/team/app:1.0 --platform linux/amd64\n  regcli copy localhost:5000/app:1.0 localhost:5000/app:1.0-intel-arm --platform linux/amd64,linux/arm64\n  regcli copy --all-tags localhost:5000/app localhost:5001/mirror/app\n  regcli copy localhost:5000/app:1.0 oci:./app-layout:1.0\n  regcli copy --compress zstd localhost:5000/app:1.0 localhost:5000/app:1.0-zstd\n  regcli copy --referrers localhost:5000/app:1.0 mirror.example.com/app:1.0",
    )
    .action(async (from: string, to: string, opts: { platform?: string; allTags?: boolean; jobs: string; format: string; preserveDigests?: boolean; compress?: LayerCompression; referrers?: boolean; referrersArtifactType?: string[] }, cmd: Command) => {
      const { registryDestination, registrySource, copyAllTags, transfer, parseLocation, registryOf, progressFor, blobCounts, referrerCounts, COPY_VERBS } = await load();
      const format = parseFormat(opts.format);
      const jobs = parseJobs(opts.jobs);
      const platforms = copyPlatforms(opts.platform ? parsePlatforms(opts.platform) : "all");
      const quiet = cmd.optsWithGlobals().quiet === true;
      const referrers = referrerChoice(opts);
      const compress = compressChoice(opts);
      const src = parseLocation(from, { defaultTag: !opts.allTags });
      const dst = parseLocation(to, { defaultTag: !opts.allTags });
      const sides = await resolveSides(cmd, { source: [registryOf(src)].filter((r) => r !== undefined), destination: [registryOf(dst)].filter((r) => r !== undefined) });
      const progress = progressFor(cmd, COPY_VERBS, `Resolving ${from}`, opts.allTags === true);
      try {
        await withContext(cmd, registryOf(dst), async (ctx) => {
          if (opts.allTags) {
            if (src.kind !== "registry" || dst.kind !== "registry" || src.ref.tag || src.ref.digest || dst.ref.tag || dst.ref.digest) {
              throw new RegcliError("usage", "--all-tags copies a whole registry repository: give two repositories without tag or digest");
            }
            const result = await copyAllTags(registrySource(ctx.source, src.ref), registryDestination(ctx.destination, dst.ref), { ...platforms, jobs, referrers, compress, onEvent: progress.onEvent, byteProgress: progress.byteProgress });
            progress.stop();
            if (format === "json") printJson({ source: src.ref.name, destination: dst.ref.name, ...result });
            else for (const t of result.tags) printLine(`${dst.ref.name}:${t.tag} ${t.digest}`);
            const upToDate = result.tags.filter((t) => t.skipped).length;
            const copied = result.tags.length - upToDate;
            const line =
              copied === 0
                ? `${err.green("Up to date:")} ${dst.ref.name} has all ${plural(upToDate, "tag")} of ${src.ref.name}`
                : `${err.green("Copied")} ${plural(copied, "tag")}${upToDate ? ` (${upToDate} more up to date)` : ""}, ${blobCounts(result.stats)}`;
            const carried = referrerCounts(result.stats);
            summary(quiet, line + (copied === 0 ? carried.replace(/^, /, "; ") : carried), { source: src.ref.name, destination: dst.ref.name, tagsCopied: copied, tagsUpToDate: upToDate, ...result.stats });
            return;
          }
          const result = await transfer(ctx, src, dst, { ...platforms, jobs, referrers, compress, onEvent: progress.onEvent, byteProgress: progress.byteProgress, preserveDigests: opts.preserveDigests });
          progress.stop();
          if (format === "json") printJson(result);
          else printLine(result.digest);
          const line = result.skipped
            ? `${err.green("Up to date:")} ${result.destination} already has ${result.source}`
            : `${err.green("Copied")} ${result.source} -> ${result.destination}: ${blobCounts(result.stats)}`;
          const carried = referrerCounts(result.stats);
          summary(quiet, line + (result.skipped ? carried.replace(/^, /, "; ") : carried), { source: result.source, destination: result.destination, digest: result.digest, skipped: result.skipped, ...result.stats });
        }, sides);
      } finally {
        progress.stop();
      }
    });
}
