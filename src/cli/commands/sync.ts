import { readFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import { EXIT_CODES, localFileError, RegcliError, type ErrorKind } from "../../errors.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { formatPlatform, isDigest, parsePlatforms } from "../../oci/index.js";
import type { SyncEntry } from "../../operations/sync-config.js";
import type { TagFilterSpec } from "../../operations/tag-filters.js";
import { askYesNo, canAsk } from "../confirm.js";
import { addSideOptions, collect, parseJobs, positiveInteger, resolveSides, withContext } from "../context.js";
import { err, note, parseFormat, plural, printJson, printLine, shortDigest, summary, writeEvent } from "../output.js";
import { COPY_VERBS, imageBars, resolveProgressMode, type ImageBars } from "../progress.js";

const load = async () => ({
  ...(await import("../../operations/sync.js")),
  ...(await import("../../operations/sync-config.js")),
  ...(await import("../../operations/shard.js")),
});


interface SyncFlags {
  config?: string;
  include?: string[];
  exclude?: string[];
  semver?: string;
  latest?: string;
  newerThan?: string;
  digest?: string[];
  platform?: string;
  keepIndex?: boolean;
  referrers: boolean;
  referrersArtifactType?: string[];
  prune?: boolean;
  force?: boolean;
  dryRun?: boolean;
  failFast?: boolean;
  shard?: string;
  shards?: string;
  jobs: string;
  format: string;
}

export function register(program: Command): void {
  const command = program
    .command("sync")
    .description("mirror repositories (or a registry's repositories by glob) to another registry, from the command line or a config file; copies only what the destination lacks")
    .argument("[source]", "a repository (localhost:5000/app) or a glob over the catalog (localhost:5000/team/*)")
    .argument("[destination]", "a repository; for a glob, the prefix the matched paths go under")
    .option("-c, --config <file>", "a sync config file (YAML; see the README)")
    .option("--include <regex>", "only tags matching this anchored regex (repeatable)", collect)
    .option("--exclude <regex>", "drop tags matching this anchored regex (repeatable)", collect)
    .option("--semver <range>", "only tags that are versions in this range, e.g. '>=1.2 <2'")
    .option("--latest <n>", "only the newest N tags left (semver order, else creation time)")
    .option("--newer-than <duration>", "only images created within this duration, e.g. 30d")
    .option("--digest <sha256:...>", "also mirror this manifest by digest, with no tag at the destination (repeatable)", collect)
    .option("--platform <os/arch,...|all>", "one platform: copy only its image of multi-platform indexes; several: copy indexes whole (or reduced with --keep-index); all (the default): indexes whole")
    .option("--keep-index", "with --platform, write each index reduced to those platforms' children (a new digest)")
    .option("--no-referrers", "leave the images' referrers (signatures, SBOMs, attestations) and cosign .sig/.att/.sbom tags behind (default: carried)")
    .option("--referrers-artifact-type <type>", "only the images' referrers of this artifact type (repeatable)", collect)
    .option("--prune", "after mirroring, delete the destination's tags that the filters no longer select")
    .option("--force", "with prune (--prune or prune: true), delete without asking (needed off a terminal)")
    .option("--dry-run", "print the plan (copy, skip or delete per image) and change nothing")
    .option("--fail-fast", "stop at the first failure instead of going on with the other images")
    .option("--shard <index/count>", "take only worker INDEX's share of the images (INDEX from 0 to COUNT-1), for COUNT workers together")
    .option("--shards <count>", "as --shard, with the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)")
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text or json (the report on stdout)").choices(["text", "json"]).default("text"));
  addSideOptions(command)
    .addHelpText(
      "after",
      "\nExamples:\n  regcli sync localhost:5000/app mirror:5000/app --semver '>=1.0' --latest 5\n  regcli sync 'localhost:5000/team/*' mirror:5000/hub --dry-run\n  regcli sync localhost:5000/app mirror:5000/app --include '1\\..*' --prune --force\n  regcli sync --config sync.yaml\n  regcli sync --config sync.yaml --shard 0/4       # worker 0 of 4",
    )
    .action(async (from: string | undefined, to: string | undefined, opts: SyncFlags, cmd: Command) => {
      const { sync, parseSyncConfig, parseShard, sideRegistries } = await load();
      const format = parseFormat(opts.format);
      const jobs = parseJobs(opts.jobs);
      const shard = parseShard(opts);
      const entries = await entriesFrom(from, to, opts, parseSyncConfig);
      const quiet = cmd.optsWithGlobals<{ quiet?: boolean }>().quiet === true;
      const mode = resolveProgressMode(cmd);
      const prunes = entries.some((e) => e.prune);
      if (prunes && !opts.dryRun && !opts.force && !canAsk()) {
        throw new RegcliError("usage", "sync with prune deletes the destination tags the filters no longer select; nothing done", {
          hint: "pass --force to delete them, or --dry-run to see the plan",
        });
      }
      const sides = await resolveSides(cmd, sideRegistries(entries));
      // On a terminal: the images' lines above an overall bar (images, bytes, failures); elsewhere one line per image.
      const bars: ImageBars | undefined = mode === "tty" && !opts.dryRun ? imageBars(COPY_VERBS, "Listing tags") : undefined;
      const report = await withContext(cmd, undefined, (ctx) =>
        sync(ctx, entries, {
          dryRun: opts.dryRun,
          failFast: opts.failFast,
          jobs,
          shard,
          onEvent: mode === "json" ? (e) => writeEvent(e) : bars?.onEvent,
          byteProgress: mode === "json" || bars !== undefined,
          onPlan: (images) => bars?.planned(images.length),
          approvePrune: async (going) => {
            bars?.stop();
            if (opts.force) return true;
            for (const p of going) note(`delete ${p.destination}  ${shortDigest(p.digest)}${p.sharedWith.length ? `  (manifest also under ${p.sharedWith.join(", ")}: only the tag may go)` : ""}`);
            const repositories = new Set(going.map((p) => p.destination.slice(0, -p.tag.length - 1))).size;
            const answer = await askYesNo(`Delete ${plural(going.length, "tag")} of ${plural(repositories, "repository")} that the filters no longer select?`);
            if (answer === undefined) throw new RegcliError("usage", `sync would delete ${plural(going.length, "tag")}; nothing deleted`, { hint: "pass --force to delete them" });
            if (!answer) note(`prune not confirmed: ${plural(going.length, "tag")} kept`);
            return answer;
          },
          onImage: (image) => {
            if (mode === "json") writeEvent({ type: "sync-image", ...image });
            else if (mode !== "none" && !opts.dryRun) {
              const line = `${image.status === "failed" ? err.red("failed ") : image.status === "copied" ? err.green("copied ") : "skipped"} ${image.source} -> ${image.destination}${image.error ? `: ${image.error}` : ""}`;
              if (bars) bars.settled(line, image.status === "failed");
              else note(line);
            }
          },
        }),
        sides,
      ).finally(() => bars?.stop());
      if (mode === "json") for (const p of report.prunes) writeEvent({ type: "sync-prune", ...p, status: opts.dryRun ? "delete" : p.status });
      if (format === "json") printJson(report);
      else {
        for (const image of report.images) {
          const status = opts.dryRun ? image.action : image.status === "planned" ? "not-run" : image.status;
          const indexes = image.indexes === "whole" ? " (indexes copied whole)" : image.indexes === "reduced" ? " (indexes reduced to the platforms: new digest)" : "";
          printLine(`${status} ${image.source} ${image.destination}${image.digest && !image.pinned ? ` ${image.digest}` : ""}${image.error ? `: ${image.error}` : ""}${indexes}`);
          // The plan shows each referrer (copy or skip); a run, those it copied.
          for (const r of (image.referrers ?? []).filter((x) => opts.dryRun || x.action === "copy")) {
            printLine(`  ${opts.dryRun ? r.action : "copied"} ${r.tag ? `tag ${r.tag}` : "referrer"} ${r.digest}${r.artifactType ? ` ${r.artifactType}` : ""}`);
          }
        }
        for (const p of report.prunes) {
          const status = opts.dryRun ? "delete" : p.status === "planned" ? "kept" : p.status;
          printLine(`${status} ${p.destination} ${p.digest}${p.reason ? `: ${p.reason}` : ""}`);
        }
        for (const f of report.failures.filter((f) => f.tag === undefined)) printLine(`failed ${f.source}${f.destination ? ` ${f.destination}` : ""}: ${f.error}`);
      }
      const toCopy = report.images.filter((i) => i.action === "copy").length;
      const referrersToCopy = report.images.flatMap((i) => i.referrers ?? []).filter((r) => r.action === "copy").length;
      const of = shard ? ` (shard ${shard.index}/${shard.count})` : "";
      const line = opts.dryRun
        ? `Plan${of}: ${plural(toCopy, "image")} to copy, ${report.skipped} up to date${referrersToCopy ? `, ${plural(referrersToCopy, "referrer")} to copy` : ""}${prunes ? `, ${plural(report.prunes.length, "tag")} to delete` : ""}${report.failed ? `, ${report.failed} failed` : ""} (dry run: nothing changed)`
        : `${report.failed ? err.red(`Sync incomplete${of}:`) : err.green(`Synced${of}:`)} ${report.copied} copied, ${report.skipped} skipped, ${prunes ? `${report.pruned} pruned, ` : ""}${report.failed} failed; ${plural(report.stats.blobsUploaded, "blob")} uploaded, ${report.stats.blobsMounted} mounted, ${report.stats.blobsExisting} already present${report.stats.referrersCopied ? `; ${plural(report.stats.referrersCopied, "referrer")} copied` : ""}`;
      summary(quiet, line, { dryRun: report.dryRun, ...(shard && { shard }), ...(report.dryRun && { referrersToCopy }), copied: report.copied, skipped: report.skipped, pruned: report.pruned, failed: report.failed, ...report.stats });
      const first = report.failures[0];
      if (first) {
        const kind = (Object.keys(EXIT_CODES) as ErrorKind[]).find((k) => EXIT_CODES[k] === first.exitCode && k !== "integrity" && k !== "network") ?? "registry";
        throw new RegcliError(kind, `sync: ${plural(report.failed, "failure")}; first: ${first.source}: ${first.error}`);
      }
    });
}

type ParseConfig = (text: string, file: string) => SyncEntry[];

/** The job: the config file's entries, or one entry from the arguments and filter flags. */
async function entriesFrom(from: string | undefined, to: string | undefined, opts: SyncFlags, parseConfig: ParseConfig): Promise<SyncEntry[]> {
  const filters = opts.include || opts.exclude || opts.semver || opts.latest || opts.newerThan || opts.digest || opts.platform || opts.keepIndex || opts.prune;
  if (opts.config) {
    if (from || to) throw new RegcliError("usage", "sync takes either --config FILE or SOURCE DESTINATION, not both");
    if (filters || opts.referrersArtifactType) throw new RegcliError("usage", "with --config, tag filters, digests, platforms, referrer types and prune go in the file (defaults: or per entry)");
    let text: string;
    try {
      text = await readFile(opts.config, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new RegcliError("usage", `sync config ${opts.config} does not exist`);
      throw localFileError(e, opts.config, "read") ?? e;
    }
    // --no-referrers turns them off for the whole job.
    return parseConfig(text, opts.config).map((entry) => (opts.referrers ? entry : { ...entry, referrers: false }));
  }
  if (!from || !to) throw new RegcliError("usage", "sync needs SOURCE and DESTINATION, or --config FILE");
  const tags: TagFilterSpec = {};
  if (opts.include) tags.include = opts.include;
  if (opts.exclude) tags.exclude = opts.exclude;
  if (opts.semver) tags.semver = opts.semver;
  if (opts.newerThan) tags.newerThan = opts.newerThan;
  if (opts.latest !== undefined) tags.latest = positiveInteger(opts.latest, "--latest");
  const bad = opts.digest?.find((d) => !isDigest(d));
  if (bad) throw new RegcliError("usage", `--digest ${bad} is not a digest`, { hint: "give sha256: and 64 lowercase hex digits, e.g. from regcli inspect" });
  return [{ sources: [from], destination: to, tags, digests: opts.digest ?? [], platforms: platformList(opts.platform), prune: opts.prune === true, keepIndex: opts.keepIndex === true, referrers: opts.referrers, referrerTypes: opts.referrersArtifactType ?? [] }];
}

/** --platform as the entry's list of platforms; `all` (whole indexes) is no list. */
function platformList(text: string | undefined): string[] {
  const selection = text ? parsePlatforms(text) : "all";
  return selection === "all" ? [] : selection.map(formatPlatform);
}
