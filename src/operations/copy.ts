import { pipeline, Transform, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { blobsOf, checkDescriptorSize, formatPlatform, MAX_INDEX_DEPTH, reduceIndex, selectPlatform, toOciManifest, type Descriptor, type ManifestData, type Platform } from "../oci/index.js";
import type { BlobOutcome, BlobReadOptions, ImageDestination, ImageSource, MountOrigin } from "../locations/types.js";
import { limiter } from "../util/limit.js";
import { DEFAULT_JOBS } from "./defaults.js";

export type CopyEvent =
  /** Bytes of a blob start to move (`offset` > 0: resumed from there). */
  | { type: "blob-start"; digest: string; size: number; offset: number }
  /** Bytes of a blob moved so far (throttled; only with `byteProgress`). */
  | { type: "blob-progress"; digest: string; size: number; bytes: number }
  /** A blob failed verification and is fetched once more from the start. */
  | { type: "blob-retry"; digest: string; size: number; reason: string }
  /** A blob is done: copied, mounted, or already there. */
  | { type: "blob"; outcome: BlobOutcome; digest: string; size: number }
  | { type: "manifest"; digest: string; mediaType: string; reference: string; skipped: boolean }
  | { type: "image"; source: string; destination: string; digest: string; skipped: boolean }
  /** The image was written under another digest than the source's: converted to `mediaType` (convertToOci). */
  | { type: "digest-changed"; from: string; to: string; mediaType: string };

export interface CopyOptions {
  /** Copy only this platform of an index (the destination gets that image's manifest). */
  platform?: Platform;
  /** Write an index as a new index holding only these platforms' children (a new digest); not with `platform`. */
  platforms?: Platform[];
  /** Concurrent blob transfers. */
  jobs?: number;
  onEvent?: (event: CopyEvent) => void;
  /** Emit blob-progress events (counts every byte; only for renderers that show bars or JSON). */
  byteProgress?: boolean;
  /** Write Docker v2s2 manifests and lists in their OCI form (new digests), as skopeo does for OCI layouts. */
  convertToOci?: boolean;
  /**
   * Blobs this engine sent to one repository of a destination registry are mounted from there into its other
   * repositories (sync: a base layer shared by many repositories crosses the wire once per run).
   */
  mountAcrossRepositories?: boolean;
}

export interface CopyStats {
  /** Blobs whose bytes this run moved to the destination (uploaded, downloaded or written). */
  blobsUploaded: number;
  blobsMounted: number;
  blobsExisting: number;
  /** Bytes this run moved: a blob resumed from a kept partial counts only from where it resumed. */
  bytesUploaded: number;
  manifests: number;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  stats: CopyStats;
  /** The destination already had this image under that reference: nothing was written. */
  skipped: boolean;
}

export { DEFAULT_JOBS } from "./defaults.js";

/**
 * Blobs up to this size cost round trips rather than bandwidth: they get their own, wider pool, so that configs and
 * small layers of many images do not queue behind a few big layers.
 */
const SMALL_BLOB_BYTES = 1024 * 1024;
const SMALL_BLOBS_PER_JOB = 4;
const IMAGES_PER_JOB = 4;

/**
 * The transfer engine for one operation: each blob digest is handled once however many images share it,
 * blobs before manifests, children before their index, and at most `jobs` blob transfers at a time.
 */
export class CopyEngine {
  private readonly limit: <T>(task: () => Promise<T>) => Promise<T>;
  private readonly smallLimit: <T>(task: () => Promise<T>) => Promise<T>;
  /** Destination (description) -> blob digest -> its transfer: each blob is handled once per destination. */
  private readonly blobs = new Map<string, Map<string, Promise<void>>>();
  /** With mountAcrossRepositories: "registry\ndigest" -> the first repository it was sent to, and when it is there. */
  private readonly sent = new Map<string, { origin: MountOrigin; done: Promise<void> }>();
  readonly stats: CopyStats = { blobsUploaded: 0, blobsMounted: 0, blobsExisting: 0, bytesUploaded: 0, manifests: 0 };

  constructor(private readonly options: CopyOptions = {}) {
    const jobs = Math.max(1, options.jobs ?? DEFAULT_JOBS);
    this.limit = limiter(jobs);
    this.smallLimit = limiter(jobs * SMALL_BLOBS_PER_JOB);
  }

  private emit(event: CopyEvent): void {
    this.options.onEvent?.(event);
  }

  /**
   * Copy what `srcRef` names in `src` to `dst` under `dstRef` (a tag or, for children, the digest).
   * `dstRefAbsent`: the caller knows the destination has nothing under `dstRef`, so it is not asked.
   */
  async copy(src: ImageSource, srcRef: string, dst: ImageDestination, dstRef: string, dstRefAbsent = false): Promise<CopyResult> {
    let manifest = await src.getManifest(srcRef);
    if (manifest.parsed.kind === "index" && this.options.platform) {
      const child = selectPlatform(manifest.parsed.index, this.options.platform, `${src.description}:${srcRef}`);
      manifest = await src.getManifest(child.digest);
      checkDescriptorSize(child, manifest, src.description);
      if (manifest.parsed.kind !== "image") {
        throw new RegcliError("registry", `${formatPlatform(child.platform)} entry of ${src.description} is not an image manifest`);
      }
    }
    if (this.options.platforms) manifest = reduceIndex(manifest, this.options.platforms, `${src.description}:${srcRef}`);
    const existing = dstRefAbsent ? undefined : await dst.manifestDigest(dstRef).catch(() => undefined);
    if (existing === manifest.digest) {
      this.emit({ type: "image", source: src.description, destination: dst.description, digest: manifest.digest, skipped: true });
      return { digest: manifest.digest, mediaType: manifest.mediaType, stats: this.stats, skipped: true };
    }
    const written = await this.copyManifestTree(src, dst, manifest, dstRef, 0);
    if (written.digest !== manifest.digest) this.emit({ type: "digest-changed", from: manifest.digest, to: written.digest, mediaType: written.mediaType });
    this.emit({ type: "image", source: src.description, destination: dst.description, digest: written.digest, skipped: false });
    return { digest: written.digest, mediaType: written.mediaType, stats: this.stats, skipped: false };
  }

  /** Copy a manifest and everything below it; returns what was written (converted, with convertToOci). */
  private async copyManifestTree(src: ImageSource, dst: ImageDestination, manifest: ManifestData, dstRef: string, depth: number): Promise<ManifestData> {
    const children = new Map<string, Descriptor>();
    if (manifest.parsed.kind === "index") {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new RegcliError("registry", `index nesting in ${src.description} is deeper than ${MAX_INDEX_DEPTH}`);
      }
      await Promise.all(
        manifest.parsed.index.manifests.map(async (child) => {
          const childManifest = await src.getManifest(child.digest);
          checkDescriptorSize(child, childManifest, src.description);
          const written = await this.copyManifestTree(src, dst, childManifest, child.digest, depth + 1);
          if (written.digest !== child.digest) {
            children.set(child.digest, { ...child, mediaType: written.mediaType, digest: written.digest, size: written.bytes.length });
          }
        }),
      );
    } else {
      await Promise.all(blobsOf(manifest.parsed.manifest).map((blob) => this.copyBlob(src, dst, blob)));
    }
    const output = this.options.convertToOci ? toOciManifest(manifest, children) : manifest;
    const reference = output.digest !== manifest.digest && dstRef === manifest.digest ? output.digest : dstRef;
    await dst.putManifest(output, reference);
    this.stats.manifests++;
    this.emit({ type: "manifest", digest: output.digest, mediaType: output.mediaType, reference, skipped: false });
    return output;
  }

  /**
   * Forget the blobs handled for `dst`, once nothing more is copied there (sync: a repository is done), so that the
   * engine's memory grows with the distinct blobs of a run (see `sent`), not with its repositories. A later copy to
   * `dst` still works: the destination is asked again.
   */
  release(dst: ImageDestination): void {
    this.blobs.delete(dst.description);
  }

  private copyBlob(src: ImageSource, dst: ImageDestination, blob: Descriptor): Promise<void> {
    let handled = this.blobs.get(dst.description);
    if (!handled) this.blobs.set(dst.description, (handled = new Map()));
    let pending = handled.get(blob.digest);
    if (!pending) {
      const limit = blob.size <= SMALL_BLOB_BYTES ? this.smallLimit : this.limit;
      const target = this.options.mountAcrossRepositories ? dst.mountOrigin : undefined;
      const sentKey = target && `${target.registry}\n${blob.digest}`;
      const earlier = sentKey ? this.sent.get(sentKey) : undefined;
      // Same-registry copies mount from the source; otherwise from where this run already sent the blob, once there.
      const mountFrom = src.mountOrigin?.registry === target?.registry || !earlier ? src.mountOrigin : earlier.origin;
      const ready = earlier ? earlier.done.catch(() => undefined) : Promise.resolve();
      pending = ready.then(() => limit(async () => {
        const { outcome, resumedAt } = await this.transferBlob(src, dst, blob, mountFrom);
        if (outcome === "uploaded") {
          this.stats.blobsUploaded++;
          this.stats.bytesUploaded += blob.size - resumedAt;
        } else if (outcome === "mounted") this.stats.blobsMounted++;
        else this.stats.blobsExisting++;
        this.emit({ type: "blob", outcome, digest: blob.digest, size: blob.size });
      }));
      handled.set(blob.digest, pending);
      if (sentKey && !earlier) this.sent.set(sentKey, { origin: target!, done: pending });
    }
    return pending;
  }

  /**
   * One blob through the destination. Bytes that fail verification are fetched once more from the start (a
   * flipped bit in transit should not fail a long copy); a second failure is reported. `resumedAt`: the bytes the
   * destination held before this run (a partial kept by an earlier one), which this run did not move.
   */
  private async transferBlob(src: ImageSource, dst: ImageDestination, blob: Descriptor, mountFrom: MountOrigin | undefined): Promise<{ outcome: BlobOutcome; resumedAt: number }> {
    let resumedAt: number | undefined;
    const open = (options?: BlobReadOptions) => {
      resumedAt ??= options?.offset ?? 0;
      return this.openCounted(src, blob, options);
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await dst.putBlob(blob, open, mountFrom);
        return { outcome, resumedAt: resumedAt ?? 0 };
      } catch (err) {
        if (attempt > 0 || !(err instanceof RegcliError) || err.kind !== "integrity") throw err;
        this.emit({ type: "blob-retry", digest: blob.digest, size: blob.size, reason: err.message });
      }
    }
  }

  private async openCounted(src: ImageSource, blob: Descriptor, options?: BlobReadOptions): Promise<Readable> {
    const stream = await src.openBlob(blob, options);
    const offset = options?.offset ?? 0;
    this.emit({ type: "blob-start", digest: blob.digest, size: blob.size, offset });
    if (!this.options.byteProgress || !this.options.onEvent) return stream;
    let bytes = offset;
    let last = 0;
    const emit = (event: CopyEvent) => this.emit(event);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        bytes += chunk.length;
        const now = Date.now();
        if (now - last >= 100) {
          last = now;
          emit({ type: "blob-progress", digest: blob.digest, size: blob.size, bytes });
        }
        callback(null, chunk);
      },
    });
    return pipeline(stream, counter, () => undefined);
  }
}

export interface CopyTagsResult {
  tags: Array<{ tag: string; digest: string; skipped: boolean }>;
  stats: CopyStats;
}

/** Copy every tag of a repository, many images at a time, each shared blob once. */
export async function copyAllTags(src: ImageSource, dst: ImageDestination, options: CopyOptions = {}): Promise<CopyTagsResult> {
  const [tags, present] = await Promise.all([src.listTags(), presentTags(dst)]);
  const engine = new CopyEngine(options);
  // Images are mostly round trips (manifests, existence checks): keep many in flight; the engine bounds the bytes.
  const images = limiter(IMAGES_PER_JOB * Math.max(1, options.jobs ?? DEFAULT_JOBS));
  const results = await Promise.all(
    tags.map((tag) =>
      images(async () => {
        const { digest, skipped } = await engine.copy(src, tag, dst, tag, present ? !present.has(tag) : false);
        return { tag, digest, skipped };
      }),
    ),
  );
  return { tags: results, stats: engine.stats };
}

/** The destination's tags in one listing (a repository that does not exist yet has none); undefined: ask per tag. */
async function presentTags(dst: ImageDestination): Promise<Set<string> | undefined> {
  if (!dst.listTags) return undefined;
  try {
    return new Set(await dst.listTags());
  } catch (err) {
    return err instanceof RegcliError && err.kind === "not-found" ? new Set() : undefined;
  }
}
