import { RegcliError } from "../errors.js";
import { registryDestination, registrySource } from "../locations/registry.js";
import type { ImageDestination, ImageSource } from "../locations/types.js";
import { parsePlatform, reduceIndex, selectPlatform, type Platform } from "../oci/index.js";
import { parseReference, type Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { limiter } from "../util/limit.js";
import { isAttachmentTag, isReferrersTag } from "../oci/referrers.js";
import { CopyEngine, knownTags, type CopyEvent, type CopyStats, type ReferrerCopy, type ReferrerOptions } from "./copy.js";
import { DEFAULT_JOBS } from "./defaults.js";
import { bucketOf, shareOf, type Shard } from "./shard.js";
import type { SyncEntry } from "./sync-config.js";
import { createdLookup } from "./tag-created.js";
import { selectTags } from "./tag-filters.js";
import { planRemovals, removeTags, type PruneOutcome } from "./tag-prune.js";
import { heapPacer, type HeapPacer } from "./sync-heap.js";

/** One image of a sync: what the plan says, then what happened. */
export interface SyncImage {
  source: string;
  destination: string;
  /** The tag; for a digest pin, the digest. */
  tag: string;
  /** A digest pin: mirrored by digest, with no tag at the destination. */
  pinned?: true;
  /** copy: the destination lacks it or holds another digest; skip: it holds this digest already. */
  action: "copy" | "skip";
  status: "planned" | "copied" | "skipped" | "failed";
  digest?: string;
  /**
   * What happens to an index, when the entry names platforms: "whole" (several platforms without keepIndex: the
   * index is copied as it is, so its digest stays valid) or "reduced" (keepIndex: a new index with only those
   * platforms' children, a new digest). Absent: one platform copies that platform's image; none, whole indexes.
   */
  indexes?: "whole" | "reduced";
  /** The image's referrers and cosign tag attachments: copied or present (planned, with --dry-run); absent when off. */
  referrers?: ReferrerCopy[];
  error?: string;
}

/** A repository (or a source glob) whose listing failed: none of its images could be planned. */
export interface SyncFailure {
  source: string;
  /** An image's failure (its line in `images` says so too); absent: the repository or source as a whole. */
  tag?: string;
  destination?: string;
  error: string;
  exitCode: number;
}

/** A destination tag that an entry with `prune` no longer selects. */
export interface SyncPrune {
  destination: string;
  tag: string;
  digest: string;
  /** Staying tags that point at the same manifest: it is never deleted by digest, only the tag may go. */
  sharedWith: string[];
  /** planned: dry run, or the deletion was not confirmed; else what tag prune's removal did (see PruneOutcome). */
  status: "planned" | PruneOutcome["action"];
  reason?: string;
}

export interface SyncReport {
  dryRun: boolean;
  /** This run's share of the job (--shard), if not the whole job. */
  shard?: Shard;
  images: SyncImage[];
  prunes: SyncPrune[];
  failures: SyncFailure[];
  copied: number;
  skipped: number;
  /** Destination tags removed (untagged or deleted). */
  pruned: number;
  failed: number;
  stats: CopyStats;
}

export interface SyncOptions {
  dryRun?: boolean;
  failFast?: boolean;
  jobs?: number;
  /** A repository's images, once planned (before any is copied). */
  onPlan?: (images: SyncImage[]) => void;
  /** Each image once it is settled (planned with --dry-run). */
  onImage?: (image: SyncImage) => void;
  onEvent?: (event: CopyEvent) => void;
  byteProgress?: boolean;
  /** Take only this share of the images (see shard.ts); other workers take the rest. */
  shard?: Shard;
  /** Asked once, after mirroring, with every tag prune would remove (not with dryRun): false keeps them all. */
  approvePrune?: (prunes: SyncPrune[]) => Promise<boolean>;
}

/** Repositories synced at once; the engine bounds the blob transfers. */
const REPOSITORIES_AT_ONCE = 4;
const IMAGES_PER_JOB = 4;

interface Pair {
  source: { registry: string; repository: string };
  destination: { registry: string; repository: string };
  entry: SyncEntry;
}

/**
 * Mirror the images the entries name: one tag listing per repository on each side, a digest comparison for
 * the tags the destination has, and a copy of the rest through one engine, so a blob sent to one repository of a
 * destination registry is mounted into the others. A failing repository or image is reported, not fatal
 * (unless failFast).
 */
export async function sync(ctx: RegistryContext, entries: SyncEntry[], options: SyncOptions = {}): Promise<SyncReport> {
  const heap = heapPacer();
  try {
    return await syncWith(ctx, entries, options, heap);
  } finally {
    heap.stop();
  }
}

async function syncWith(ctx: RegistryContext, entries: SyncEntry[], options: SyncOptions, heap: HeapPacer): Promise<SyncReport> {
  const jobs = Math.max(1, options.jobs ?? DEFAULT_JOBS);
  // One engine per platform choice (the engine copies one platform of every index, or whole indexes), shared by all
  // repositories: each blob is handled once and mounted where this run already sent it.
  const engines = new Map<string, CopyEngine>();
  const engineFor = (choice: PlatformChoice, referrers: ReferrerOptions | undefined) => {
    const key = JSON.stringify({ choice, referrers });
    let e = engines.get(key);
    if (!e) {
      e = new CopyEngine({ jobs, onEvent: options.onEvent, byteProgress: options.byteProgress, mountAcrossRepositories: true, referrers, ...choice });
      engines.set(key, e);
    }
    return e;
  };
  const engine = engineFor({}, undefined);
  const report: SyncReport = { dryRun: options.dryRun === true, shard: options.shard, images: [], prunes: [], failures: [], copied: 0, skipped: 0, pruned: 0, failed: 0, stats: engine.stats };
  let stop = false;
  const failed = (failure: SyncFailure) => {
    report.failures.push(failure);
    if (options.failFast) stop = true;
  };

  const pairs: Pair[] = [];
  const pruning: Array<{ repository: Pair["destination"]; prunes: SyncPrune[] }> = [];
  for (const entry of entries) {
    platformChoice(entry);
    for (const source of entry.sources) {
      if (stop) break;
      try {
        pairs.push(...(await expandSource(ctx.source, source, entry)));
      } catch (err) {
        failed({ source, error: messageOf(err), exitCode: exitCodeOf(err) });
      }
    }
  }

  const repositories = limiter(REPOSITORIES_AT_ONCE);
  await Promise.all(
    pairs.map((pair) =>
      repositories(async () => {
        if (stop) return;
        const src = registrySource(ctx.source, pair.source);
        const dst = registryDestination(ctx.destination, pair.destination);
        let plan: SyncImage[];
        try {
          plan = await planRepository(src, dst, pair.entry, platformChoice(pair.entry), limiter(IMAGES_PER_JOB * jobs), options.shard);
        } catch (err) {
          failed({ source: src.description, destination: dst.description, error: messageOf(err), exitCode: exitCodeOf(err) });
          return;
        }
        report.images.push(...plan);
        options.onPlan?.(plan);
        const prune = async () => {
          if (!pair.entry.prune || stop) return;
          // Sharded: one worker prunes a repository (its owner by name, even when its tags are shared out).
          if (options.shard && bucketOf(src.description, options.shard.count) !== options.shard.index) return;
          try {
            const prunes = await planPrune(ctx.destination, src, dst, pair, plan, options.dryRun === true);
            if (prunes.length) pruning.push({ repository: pair.destination, prunes });
          } catch (err) {
            failed({ source: src.description, destination: dst.description, error: `prune: ${messageOf(err)}`, exitCode: exitCodeOf(err) });
          }
        };
        const referrers = referrerOptions(pair.entry);
        // A pin is that exact manifest: copied as it is (whole), whatever the entry's platforms.
        const engineOf = (image: SyncImage) => engineFor(image.pinned ? {} : platformChoice(pair.entry), referrers);
        if (options.dryRun) {
          const images = limiter(IMAGES_PER_JOB * jobs);
          await Promise.all(
            plan.map((image) =>
              images(async () => {
                if (referrers && !stop) {
                  try {
                    image.referrers = await engineOf(image).copyReferrers(src, image.tag, dst, true);
                  } catch (err) {
                    image.error = `referrers: ${messageOf(err)}`;
                    failed({ source: image.source, destination: image.destination, tag: image.tag, error: image.error, exitCode: exitCodeOf(err) });
                  }
                }
                options.onImage?.(image);
              }),
            ),
          );
          return prune();
        }
        const images = limiter(IMAGES_PER_JOB * jobs);
        await Promise.all(
          plan.map((image) =>
            images(async () => {
              if (image.action === "skip" && !referrers) image.status = "skipped";
              else if (stop) return;
              else {
                try {
                  if (image.action === "skip") {
                    // The image is there; its referrers may be new.
                    image.referrers = await engineOf(image).copyReferrers(src, image.tag, dst);
                    image.status = "skipped";
                  } else {
                    const result = await engineOf(image).copy(src, image.tag, dst, image.tag, true);
                    image.digest = result.digest;
                    image.status = "copied";
                    if (referrers) image.referrers = result.referrers;
                  }
                } catch (err) {
                  image.status = "failed";
                  image.error = messageOf(err);
                  failed({ source: image.source, destination: image.destination, tag: image.tag, error: image.error, exitCode: exitCodeOf(err) });
                }
              }
              options.onImage?.(image);
              heap.check();
            }),
          ),
        );
        // The repository is done: its blobs' entries go (the engine keeps only where each distinct blob was sent).
        for (const e of engines.values()) e.release(dst);
        await prune();
      }),
    ),
  );
  pruning.sort((a, b) => (a.prunes[0]!.destination < b.prunes[0]!.destination ? -1 : 1));
  report.prunes = pruning.flatMap((p) => p.prunes);
  if (report.prunes.length && !options.dryRun && !stop && (await (options.approvePrune?.(report.prunes) ?? true))) {
    await Promise.all(
      pruning.map(({ repository, prunes }) =>
        repositories(async () => {
          const outcomes = await removeTags(ctx.destination, repository, prunes);
          outcomes.forEach((o, i) => {
            const p = prunes[i]!;
            p.status = o.action;
            if (o.reason) p.reason = o.reason;
            if (o.action === "failed") failed({ source: p.destination, destination: p.destination, tag: p.tag, error: `prune: ${o.reason}`, exitCode: 5 });
          });
        }),
      ),
    );
  }
  report.pruned = report.prunes.filter((p) => p.status === "untagged" || p.status === "deleted").length;
  for (const e of engines.values()) if (e !== engine) addStats(engine.stats, e.stats);
  report.copied = report.images.filter((i) => i.status === "copied").length;
  report.skipped = report.images.filter((i) => i.status === "skipped" || (report.dryRun && i.action === "skip")).length;
  report.failed = report.failures.length;
  return report;
}

function addStats(total: CopyStats, more: CopyStats): void {
  for (const key of Object.keys(total) as Array<keyof CopyStats>) total[key] += more[key];
}

/** The tags to mirror and, for those the destination lists, whether it already holds the same digest. */
async function planRepository(
  src: ImageSource,
  dst: ImageDestination,
  entry: SyncEntry,
  choice: PlatformChoice,
  limit: <T>(task: () => Promise<T>) => Promise<T>,
  shard?: Shard,
): Promise<SyncImage[]> {
  const indexes = choice.platforms ? "reduced" : entry.platforms.length > 1 ? "whole" : undefined;
  // Sharded, every worker lists the source; only one that takes the repository (or some of its tags) goes on.
  const [all, listed] = await Promise.all([src.listTags(), shard ? undefined : destinationTags(dst)]);
  knownTags(src, all);
  // Referrers' tags go with their images (see isAttachmentTag).
  const tags = all.filter((t) => !(entry.referrers === false ? isReferrersTag(t) : isAttachmentTag(t)));
  const mine = shareOf(shard, src.description, tags.length);
  if (!mine()) return [];
  const present = listed ?? (await destinationTags(dst));
  const selected = (await selectTags(tags, entry.tags, createdLookup(src))).filter((tag) => mine(tag));
  const pins = (entry.digests ?? []).filter((digest) => mine(digest));
  const pinned = pins.map((digest) => limit(async (): Promise<SyncImage> => {
    const image: SyncImage = { source: `${src.description}@${digest}`, destination: `${dst.description}@${digest}`, tag: digest, pinned: true, action: "copy", status: "planned", digest };
    if ((await dst.manifestDigest(digest)) === digest) image.action = "skip";
    return image;
  }));
  return Promise.all([
    ...selected.map((tag) => limit(async (): Promise<SyncImage> => {
      const image: SyncImage = { source: `${src.description}:${tag}`, destination: `${dst.description}:${tag}`, tag, action: "copy", status: "planned", ...(indexes ? { indexes } : {}) };
      if (!present.has(tag)) return image;
      const [want, have] = await Promise.all([sourceDigest(src, tag, choice), dst.manifestDigest(tag)]);
      image.digest = want;
      if (want === have) image.action = "skip";
      return image;
    })),
    ...pinned,
  ]);
}

/**
 * The destination tags of a pair with `prune` that the entry's filters no longer select, with tag prune's check of
 * the staying tags that share their manifest. The filters see the destination's tags plus, in a dry run, those
 * the plan would copy; a tag the plan copies is dated from the source (the same image), and an undated image is
 * kept (not known to be older). Listed after the copies, so a tag that just arrived counts.
 */
async function planPrune(ctx: RegistryContext, src: ImageSource, dst: ImageSource & ImageDestination, pair: Pair, plan: SyncImage[], dryRun: boolean): Promise<SyncPrune[]> {
  // Referrers' tags (the tag schema's index, cosign's .sig/.att/.sbom) belong to their images, not to the filters.
  const listed = [...(await destinationTags(dst))].filter((t) => !isAttachmentTag(t));
  const planned = new Set(plan.filter((i) => !i.pinned).map((i) => i.tag));
  const fromSource = createdLookup(src);
  const fromDestination = createdLookup(dst);
  const selected = await selectTags(dryRun ? [...new Set([...listed, ...planned])] : listed, { ...pair.entry.tags, undated: "keep" }, (t) =>
    planned.has(t) ? fromSource(t) : fromDestination(t),
  );
  const kept = new Set(selected);
  const removals = await planRemovals(ctx, pair.destination, listed, listed.filter((t) => !kept.has(t)).sort());
  // A pinned manifest stays too: a tag on it may go, the manifest is never deleted by digest.
  const pins = new Set(pair.entry.digests);
  return removals.map((r) => ({ destination: `${dst.description}:${r.tag}`, ...r, sharedWith: pins.has(r.digest) ? [...r.sharedWith, "a digest pin"] : r.sharedWith, status: "planned" }));
}

/**
 * How an entry's platforms are copied: none, whole indexes; one, that platform's image; with keepIndex, a new index
 * of those platforms' children; several without keepIndex, whole indexes too (their digests stay valid).
 */
interface PlatformChoice {
  platform?: Platform;
  platforms?: Platform[];
}

/** Referrers are carried unless the entry says `referrers: false` (or --no-referrers). */
function referrerOptions(entry: SyncEntry): ReferrerOptions | undefined {
  if (entry.referrers === false) return undefined;
  return entry.referrerTypes?.length ? { artifactTypes: entry.referrerTypes } : {};
}

function platformChoice(entry: SyncEntry): PlatformChoice {
  const platforms = entry.platforms.map(parsePlatform);
  if (entry.keepIndex) {
    if (!platforms.length) throw new RegcliError("usage", `${entry.where ? `${entry.where}: ` : ""}keep-index needs platforms to keep`);
    return { platforms };
  }
  return platforms.length === 1 ? { platform: platforms[0] } : {};
}

/** The digest a copy of `tag` would write: the manifest's (HEAD), with a platform the chosen child's, with keepIndex the reduced index's. */
async function sourceDigest(src: ImageSource, tag: string, choice: PlatformChoice): Promise<string> {
  if (!choice.platform && !choice.platforms) return (await src.resolve(tag)).digest;
  const top = await src.getManifest(tag);
  if (top.parsed.kind !== "index") return top.digest;
  const where = `${src.description}:${tag}`;
  return choice.platform ? selectPlatform(top.parsed.index, choice.platform, where).digest : reduceIndex(top, choice.platforms!, where).digest;
}

/** The destination's tags in one listing; a repository that does not exist yet has none. */
async function destinationTags(dst: ImageDestination): Promise<Set<string>> {
  try {
    return new Set(await dst.listTags!());
  } catch (err) {
    if (err instanceof RegcliError && err.kind === "not-found") return new Set();
    throw err;
  }
}

const WILDCARD = /[*?]/;

/**
 * The repository pairs one source names. A repository goes to the destination repository (or template). A glob
 * (`*` within a path segment, `**` across segments, `?` one character) is matched against the registry's catalog;
 * each match goes to the destination plus its path below the glob's fixed prefix: `reg/team/*` to `mirror/hub`
 * puts `reg/team/app` at `mirror/hub/app`; a registry's list puts each at the destination plus its whole path. A template's {repository} is the source path, {registry} its registry.
 */
async function expandSource(ctx: RegistryContext, source: string, entry: SyncEntry): Promise<Pair[]> {
  const template = /\{(repository|registry)\}/.test(entry.destination);
  if (!WILDCARD.test(source)) {
    const ref = parseReference(source, { defaultTag: false });
    if (ref.tag || ref.digest) throw new RegcliError("usage", `sync source ${source} names a tag or digest: give a repository (filter tags with --include)`);
    return [{ source: ref, destination: destinationFor(entry.destination, ref, ref.repository, template, entry.list === true), entry }];
  }
  const parsed = parseSourceGlob(source);
  if (parsed.tag || parsed.digest) throw new RegcliError("usage", `sync source ${source} names a tag or digest: give a repository glob`);
  const pattern = parsed.repository.replace(/x0star0x/g, "*").replace(/x0any0x/g, "?");
  const segments = pattern.split("/");
  const fixed = segments.slice(0, segments.findIndex((s) => WILDCARD.test(s))).join("/");
  const regex = new RegExp(
    `^${pattern
      .split(/(\*\*|\*|\?)/)
      .map((part) => (part === "**" ? ".*" : part === "*" ? "[^/]*" : part === "?" ? "[^/]" : part.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
      .join("")}$`,
  );
  const repositories = (await ctx.client(parsed.registry).catalog()).filter((r) => regex.test(r)).sort();
  if (repositories.length === 0) throw new RegcliError("not-found", `no repository of ${parsed.registry} matches ${pattern}`);
  return repositories.map((repository) => {
    const relative = fixed ? repository.slice(fixed.length + 1) : repository;
    return { source: { registry: parsed.registry, repository }, destination: destinationFor(entry.destination, { registry: parsed.registry, repository }, relative, template, true), entry };
  });
}

/** A source glob parsed as a reference, the wildcards stood in for by name characters to split registry and path. */
function parseSourceGlob(source: string): Reference {
  return parseReference(source.replace(/\*/g, "x0star0x").replace(/\?/g, "x0any0x"), { defaultTag: false });
}

/**
 * The registries the entries read from and write to (for per-side credentials); a name that does not parse is
 * left out here and reported by sync itself.
 */
export function sideRegistries(entries: SyncEntry[]): { source: string[]; destination: string[] } {
  const source = new Set<string>();
  const destination = new Set<string>();
  for (const entry of entries) {
    for (const text of entry.sources) {
      try {
        const registry = parseSourceGlob(text).registry;
        source.add(registry);
        destination.add(parseReference(entry.destination.replace(/\{registry\}/g, registry).replace(/\{repository\}/g, "x"), { defaultTag: false }).registry);
      } catch {
        // reported by sync
      }
    }
  }
  return { source: [...source], destination: [...destination] };
}

function destinationFor(
  destination: string,
  source: { registry: string; repository: string },
  relative: string | undefined,
  template: boolean,
  many: boolean,
): { registry: string; repository: string } {
  const text = template
    ? destination.replace(/\{repository\}/g, source.repository).replace(/\{registry\}/g, source.registry)
    : many
      ? `${destination.replace(/\/+$/, "")}/${relative}`
      : destination;
  const ref = parseReference(text, { defaultTag: false });
  if (ref.tag || ref.digest) throw new RegcliError("usage", `sync destination ${text} names a tag or digest: give a repository`);
  return ref;
}

function messageOf(err: unknown): string {
  return err instanceof RegcliError ? err.toLine() : err instanceof Error ? err.message : String(err);
}

function exitCodeOf(err: unknown): number {
  return err instanceof RegcliError ? err.exitCode : 5;
}
