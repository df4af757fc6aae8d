import { stat } from "node:fs/promises";
import type { RegistryStorage } from "./storage.js";

/** Which repositories of a storage are a pull-through cache, and how long a cached tag or manifest counts as in use. */
export interface CacheScope {
  ttlMs: number;
  cached(name: string): boolean;
}

/**
 * The manifests a cache's storage must keep, and those it may drop. Kept: every manifest of the server's own
 * repositories; in cached repositories, a tag's manifest while upstream confirmed the tag within the TTL, and a
 * manifest fetched or served within it; and whatever these reach (an index's children). `used`: uses not yet
 * written to disk. `cachedOnly`: blobs linked to cached repositories and to none of the server's own (a blob pushed
 * or mounted into its own repository before the manifest that will reference it is the server's, not the cache's).
 */
export async function cacheRoots(
  storage: RegistryStorage,
  scope: CacheScope,
  now = Date.now(),
  used: (digest: string) => number = () => 0,
): Promise<{ keep: Set<string>; manifests: Set<string>; expired: Array<[string, string]>; cachedOnly: Set<string> }> {
  const roots: Array<[string, string]> = [];
  const cachedRevisions: Array<[string, string]> = [];
  const manifests = new Set<string>();
  const cachedLinks = new Set<string>();
  const ownLinks = new Set<string>();
  for (const repo of await storage.repositories()) {
    const revisions = await storage.revisions(repo);
    for (const digest of revisions) manifests.add(digest);
    if (!scope.cached(repo)) {
      for (const digest of revisions) roots.push([repo, digest]);
      continue;
    }
    for (const tag of await storage.tags(repo)) {
      const record = await storage.tagRecord(repo, tag);
      if (record && now - record.checkedAt < scope.ttlMs) roots.push([repo, record.digest]);
    }
    for (const digest of revisions) {
      cachedRevisions.push([repo, digest]);
      if (now - Math.max(await storage.manifestTime(repo, digest), used(digest)) < scope.ttlMs) roots.push([repo, digest]);
    }
  }
  for (const repo of await storage.repositories("_layers")) {
    for (const digest of await storage.linkedBlobs(repo)) (scope.cached(repo) ? cachedLinks : ownLinks).add(digest);
  }
  const keep = await storage.reachable(roots);
  const cachedOnly = new Set([...cachedLinks].filter((digest) => !ownLinks.has(digest)));
  return { keep, manifests, expired: cachedRevisions.filter(([, digest]) => !keep.has(digest)), cachedOnly };
}

export interface RetentionOptions extends CacheScope {
  maxBytes: number;
  log: (line: string) => void;
  /** Whether a fetch from upstream is writing the partial file of `digest` (it is not removed then). */
  fetching?: (digest: string) => boolean;
  /** Over the size with nothing evictable, new blobs bring another pass at most this often (and at most the TTL); default a minute. */
  rescanMs?: number;
}

/**
 * `--proxy-max-size`: keeps a cache's storage under a size by removing the least recently used cached blobs (linked
 * to cached repositories only) that no manifest within its TTL needs, and partial downloads no fetch is writing or
 * request is waiting for (left by fetches that gave up). Uses are counted in memory and written to the blobs' mtimes in batches (never a
 * write per read); a blob being served is never removed. Manifests themselves stay (small, and what lets a cached
 * tag be served while upstream is down); `serve gc` removes expired ones.
 */
export class CacheRetention {
  /** Uses not yet written to the blobs' mtimes. */
  private readonly uses = new Map<string, number>();
  /** Blobs being served right now, and how many times over. */
  private readonly pinned = new Map<string, number>();
  /** Blobs being removed: a request for one waits until it is gone (then fetches it anew), never finds it half there. */
  private readonly removing = new Map<string, Promise<unknown>>();
  /** Sizes of the blobs seen (from the last pass, and served since): to notice growth without a scan. */
  private readonly sizes = new Map<string, number>();
  private total = 0;
  /**
   * Set while the last pass left the storage over the size: when it ended, and the blobs it could not remove because
   * they were being served. Until one of those is released or the rescan interval has passed, nothing it looked at
   * can have become removable, so a new blob brings no pass (each would measure the whole storage for nothing).
   */
  private stuck: { at: number; skipped: Set<string> } | undefined;
  /** Blobs linked to the server's own repositories since the pass under way began: its scan of the links may have missed them. */
  private readonly claimed = new Set<string>();
  /** Blobs counted by `grew` since the pass under way began: its listing of the storage may have missed them. */
  private readonly grownInPass = new Map<string, number>();
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly storage: RegistryStorage,
    private readonly options: RetentionOptions,
  ) {}

  /** Measure the storage in the background (and trim it if it is over the size already); write uses every `flushMs`. */
  start(flushMs = 60_000): void {
    void this.trim();
    this.timer = setInterval(() => void this.flush().catch(() => undefined), flushMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.flush();
  }

  /** Settles once a removal of `digest` under way is done (a request pinning it afterwards then finds it gone). */
  removed(digest: string): Promise<unknown> | undefined {
    return this.removing.get(digest);
  }

  /** `digest` was just linked to one of the server's own repositories (mounted, or uploaded again): never removed now. */
  claim(digest: string): void {
    if (this.running) this.claimed.add(digest); // a pass starting later reads the link
  }

  /** A blob (or manifest) of a cached repository is being served: it is in use, and stays until `release`. */
  serving(digest: string): () => void {
    this.uses.set(digest, Date.now());
    this.pinned.set(digest, (this.pinned.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = this.pinned.get(digest)! - 1;
      if (n > 0) this.pinned.set(digest, n);
      else {
        this.pinned.delete(digest);
        if (this.stuck?.skipped.delete(digest)) void this.trim();
      }
      if (!this.sizes.has(digest)) void this.grew(digest);
    };
  }

  /** A blob new to this process was served (fetched from upstream, most likely): count it, trim when over. */
  private async grew(digest: string): Promise<void> {
    const size = await stat(this.storage.blobPath(digest)).then((s) => s.size, () => undefined);
    if (size === undefined || this.sizes.has(digest)) return;
    this.sizes.set(digest, size);
    this.total += size;
    if (this.running) this.grownInPass.set(digest, size);
    const rescanMs = Math.min(this.options.rescanMs ?? 60_000, this.options.ttlMs);
    // A pass under way counts this blob (and is not told to run again for it: what it could remove, it does).
    if (this.total > this.options.maxBytes && !this.running && (!this.stuck || Date.now() - this.stuck.at >= rescanMs)) void this.trim();
  }

  /** Run a pass now, or once more after the one running. */
  trim(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again);
      } catch (err) {
        this.options.log(`error: cache retention: ${(err as Error).message}`);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async flush(): Promise<void> {
    if (!this.uses.size) return;
    const batch = new Map(this.uses);
    this.uses.clear();
    await this.storage.touchBlobs(batch);
  }

  /** Measure every blob; when over the size, remove the least recently used ones nothing needs until under it. */
  private async pass(): Promise<void> {
    this.claimed.clear(); // this pass reads the links written until now
    this.grownInPass.clear();
    const blobs = await this.storage.blobEntries();
    // Partial files (fetches in progress, or kept to be resumed) take space too.
    const partials = await this.storage.partialEntries();
    const partialBytes = partials.reduce((sum, p) => sum + p.size, 0);
    this.sizes.clear();
    this.total = partialBytes;
    for (const [digest, size] of [...blobs.map((b): [string, number] => [b.digest, b.size]), ...this.grownInPass]) {
      if (this.sizes.has(digest)) continue;
      this.sizes.set(digest, size);
      this.total += size;
    }
    const max = this.options.maxBytes;
    if (this.total <= max) {
      this.stuck = undefined;
      return;
    }
    const lastUse = (digest: string, mtimeMs: number) => Math.max(mtimeMs, this.uses.get(digest) ?? 0);
    const { keep, manifests, cachedOnly } = await cacheRoots(this.storage, this.options, Date.now(), (d) => this.uses.get(d) ?? 0);
    const candidates = [
      ...blobs.filter((b) => cachedOnly.has(b.digest) && !keep.has(b.digest) && !manifests.has(b.digest)).map((b) => ({ ...b, partial: false })),
      ...partials.map((p) => ({ ...p, partial: true })),
    ].sort((a, b) => lastUse(a.digest, a.mtimeMs) - lastUse(b.digest, b.mtimeMs));
    let removed = 0;
    let removedPartials = 0;
    let freed = 0;
    const skipped = new Set<string>();
    for (const b of candidates) {
      if (this.total <= max) break;
      if (this.claimed.has(b.digest)) continue;
      // A request for a blob pins it before it looks for the blob or starts its fetch; a fetch outlives its requests.
      if (this.pinned.has(b.digest) || (b.partial && this.options.fetching?.(b.digest))) {
        skipped.add(b.digest);
        continue;
      }
      // No await between the checks and `removing`: a request pinning the blob from here on waits for `removed`.
      const removal = (b.partial ? this.storage.removePartial(b.digest) : this.storage.removeBlob(b.digest)).finally(() => this.removing.delete(b.digest));
      this.removing.set(b.digest, removal.catch(() => undefined));
      await removal;
      if (!b.partial) this.sizes.delete(b.digest);
      this.uses.delete(b.digest);
      this.total -= b.size;
      freed += b.size;
      if (b.partial) removedPartials++;
      else removed++;
    }
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    if (removed || removedPartials) {
      const what = [removed && `${removed} least recently used blobs`, removedPartials && `${removedPartials} partial downloads`].filter(Boolean).join(" and ");
      this.options.log(`cache: removed ${what} (${mib(freed)}); ${mib(this.total)} of ${mib(max)} in use`);
    }
    if (this.total <= max) this.stuck = undefined;
    else {
      // Once while it lasts, not once per blob.
      if (!this.stuck) this.options.log(`warning: cache: ${mib(this.total)} stored, over --proxy-max-size ${mib(max)}: the rest is needed by manifests within the TTL, pushed images or transfers in progress`);
      this.stuck = { at: Date.now(), skipped };
    }
  }
}
