import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline, Transform, type Readable } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import { outputFileError, RegcliError } from "../errors.js";
import { compressor, decompressed, layerMediaType } from "../oci/compress.js";
import { blobsOf, checkDescriptorSize, HashingStream, formatPlatform, isArtifact, layerCompression, MAX_INDEX_DEPTH, MediaType, reduceIndex, selectPlatform, withDescriptors, type Descriptor, type ImageManifest, type LayerCompression, type ManifestData, type Platform } from "../oci/index.js";
import { checkReferrerSubject, COSIGN_SUFFIXES, isAttachmentTag, isReferrersTag, referrerDescriptor } from "../oci/referrers.js";
import type { BlobOutcome, BlobReadOptions, ImageDestination, ImageSource, MountOrigin, OpenBlob } from "../locations/types.js";
import { identityOf } from "../locations/image-names.js";
import type { OciLayout } from "../locations/oci-layout.js";
import { limiter } from "../util/limit.js";
import { fileBlob } from "./blob-readers.js";
import { DEFAULT_JOBS } from "./defaults.js";
import { readConfig } from "./inspect.js";

export type CopyEvent =
  /** Bytes of a blob start to move (`offset` > 0: resumed from there). */
  | { type: "blob-start"; digest: string; size: number; offset: number }
  /** Bytes of a blob moved so far (throttled; only with `byteProgress`). */
  | { type: "blob-progress"; digest: string; size: number; bytes: number }
  /** A blob failed verification and is fetched once more from the start. */
  | { type: "blob-retry"; digest: string; size: number; reason: string }
  /** A layer was read and compressed anew (CopyOptions.compress): `from`'s bytes are now `to`'s; a blob event for `to` follows. */
  | { type: "blob-recompressed"; from: string; to: string; size: number; compression: LayerCompression }
  /** A blob is done: copied, mounted, or already there. */
  | { type: "blob"; outcome: BlobOutcome; digest: string; size: number }
  | { type: "manifest"; digest: string; mediaType: string; reference: string; skipped: boolean }
  | { type: "image"; source: string; destination: string; digest: string; skipped: boolean }
  /**
   * The image (or a child of an index) was written under another digest than the source's: converted to
   * `mediaType` (convertToOci), or with `compression` its layers re-compressed (CopyOptions.compress).
   */
  | { type: "digest-changed"; from: string; to: string; mediaType: string; compression?: LayerCompression }
  /** A referrer (or a cosign tag attachment, with `tag`) of `subject` was copied, or was there already. */
  | { type: "referrer"; subject: string; digest: string; artifactType?: string; tag?: string; skipped: boolean };

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
  /**
   * Re-compress image layers to this while copying (streaming, via a temporary file to learn the new digest
   * before the upload): new layer digests, so new manifest and index digests; zstd and none write OCI media types.
   * Layers already so compressed, configs and artifacts' blobs are copied as they are.
   */
  compress?: LayerCompression;
  /** Refuse what is not wanted (pull: an artifact), given the manifest chosen to copy (after platform selection). */
  accept?: (manifest: ManifestData, where: string) => void;
  /** Carry the image's referrers (and cosign's sha256-<hex>.sig/.att/.sbom tags) along; undefined: not. */
  referrers?: ReferrerOptions;
}

export interface ReferrerOptions {
  /**
   * Only the image's referrers (and tag attachments) of these artifact types; whatever refers to those comes along
   * whatever its type (the signature of a chosen SBOM). A manifest without artifactType counts as its config's media type.
   */
  artifactTypes?: string[];
}

/** One referrer or tag attachment of a copied image: copied (planned, in a plan) or already at the destination. */
export interface ReferrerCopy {
  subject: string;
  digest: string;
  artifactType?: string;
  /** A cosign tag attachment: the tag it is under at both ends. */
  tag?: string;
  action: "copy" | "skip";
}

export interface CopyStats {
  /** Blobs whose bytes this run moved to the destination (uploaded, downloaded or written). */
  blobsUploaded: number;
  blobsMounted: number;
  blobsExisting: number;
  /** Bytes this run moved: a blob resumed from a kept partial counts only from where it resumed. */
  bytesUploaded: number;
  manifests: number;
  /** Referrers and tag attachments this run wrote to the destination, and those it found there already. */
  referrersCopied: number;
  referrersExisting: number;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  /** The written manifest's length in bytes. */
  size: number;
  stats: CopyStats;
  /** The destination already had this image under that reference: nothing was written. */
  skipped: boolean;
  /** With the referrers option: the image's referrers this call carried or found present (empty otherwise). */
  referrers: ReferrerCopy[];
}

export { DEFAULT_JOBS } from "./defaults.js";

/**
 * Blobs up to this size cost round trips rather than bandwidth: they get their own, wider pool, so that configs and
 * small layers of many images do not queue behind a few big layers.
 */
const SMALL_BLOB_BYTES = 1024 * 1024;
const SMALL_BLOBS_PER_JOB = 4;
const IMAGES_PER_JOB = 4;
/** Signatures of signatures of...: a chain longer than this is refused rather than followed. */
const MAX_REFERRER_DEPTH = 8;

/** Each source's tag listing, for cosign's tag attachments: listed once per repository (or given by whoever listed it). */
const sourceTags = new WeakMap<ImageSource, Promise<Set<string>>>();

/** A listing the caller already made: the engine looks for cosign tag attachments in it instead of listing again. */
export function knownTags(src: ImageSource, tags: string[]): void {
  sourceTags.set(src, Promise.resolve(new Set(tags)));
}

function tagsOf(src: ImageSource): Promise<Set<string>> {
  let tags = sourceTags.get(src);
  if (!tags) {
    tags = src.listTags().then(
      (list) => new Set(list),
      (err: unknown) => {
        // A repository that cannot list tags (or has none) has no tag attachments.
        if (err instanceof RegcliError && (err.kind === "not-found" || err.kind === "unsupported")) return new Set<string>();
        throw err;
      },
    );
    sourceTags.set(src, tags);
  }
  return tags;
}

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
  /** "destination\nsubject" -> the walk over that subject's referrers, so one run carries them once. */
  private readonly referrerWalks = new Map<string, Promise<void>>();
  /** "destination\nsource digest" -> the re-compressed layer there and its uncompressed digest (compress option). */
  private readonly recompressed = new Map<string, Promise<{ desc: Descriptor; diffId: string }>>();
  readonly stats: CopyStats = { blobsUploaded: 0, blobsMounted: 0, blobsExisting: 0, bytesUploaded: 0, manifests: 0, referrersCopied: 0, referrersExisting: 0 };

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
    const manifest = await this.selected(src, srcRef);
    const existing = dstRefAbsent ? undefined : await dst.manifestDigest(dstRef).catch(() => undefined);
    if (existing === manifest.digest) {
      this.emit({ type: "image", source: src.description, destination: dst.description, digest: manifest.digest, skipped: true });
      const referrers = await this.carryReferrers(src, dst, manifest, manifest, true);
      return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length, stats: this.stats, skipped: true, referrers };
    }
    const written = await this.copyManifestTree(src, dst, manifest, dstRef, 0);
    if (written.digest !== manifest.digest) this.digestChanged(manifest, written);
    this.emit({ type: "image", source: src.description, destination: dst.description, digest: written.digest, skipped: false });
    const referrers = await this.carryReferrers(src, dst, manifest, written, true);
    return { digest: written.digest, mediaType: written.mediaType, size: written.bytes.length, stats: this.stats, skipped: false, referrers };
  }

  /**
   * The referrers of what `srcRef` names (an image the destination already holds): carried, or with `plan` only
   * listed, each marked copy or skip (present at the destination). Empty without the referrers option.
   */
  async copyReferrers(src: ImageSource, srcRef: string, dst: ImageDestination, plan = false): Promise<ReferrerCopy[]> {
    if (!this.options.referrers) return [];
    const manifest = await this.selected(src, srcRef);
    return this.carryReferrers(src, dst, manifest, manifest, !plan);
  }

  /** What a copy of `srcRef` writes: the manifest, or with a platform that platform's image, with platforms a reduced index. */
  private async selected(src: ImageSource, srcRef: string): Promise<ManifestData> {
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
    this.options.accept?.(manifest, `${src.description}:${srcRef}`);
    return manifest;
  }

  /**
   * The referrers of what was written (the manifest, and an index's children), recursively, each after its subject
   * is at the destination, and cosign's tag attachments of the same digests. Only digests the destination holds as
   * the source does: a converted manifest (new digest) is not what its referrers refer to.
   */
  private async carryReferrers(src: ImageSource, dst: ImageDestination, manifest: ManifestData, written: ManifestData, write: boolean): Promise<ReferrerCopy[]> {
    if (!this.options.referrers) return [];
    const subjects: string[] = [];
    if (written.digest === manifest.digest) subjects.push(manifest.digest);
    if (written.parsed.kind === "index" && manifest.parsed.kind === "index") {
      const kept = new Set(manifest.parsed.index.manifests.map((c) => c.digest));
      subjects.push(...written.parsed.index.manifests.map((c) => c.digest).filter((d) => kept.has(d)));
    }
    const found: ReferrerCopy[] = [];
    await Promise.all(subjects.map((subject) => this.walkReferrers(src, dst, subject, 0, write, found)));
    return found;
  }

  private walkReferrers(src: ImageSource, dst: ImageDestination, subject: string, depth: number, write: boolean, found: ReferrerCopy[]): Promise<void> {
    const key = `${dst.description}\n${subject}`;
    if (write) {
      const earlier = this.referrerWalks.get(key);
      if (earlier) return earlier;
    }
    const walk = (async () => {
      if (depth > MAX_REFERRER_DEPTH) throw new RegcliError("registry", `referrers of ${subject} in ${src.description} nest deeper than ${MAX_REFERRER_DEPTH}`);
      const types = depth === 0 ? this.options.referrers?.artifactTypes : undefined;
      const listed = (await src.referrers(subject, types?.length === 1 ? { artifactType: types[0] } : undefined)).filter((d) => !types || types.includes(d.artifactType ?? ""));
      const tags = await tagsOf(src);
      const [alg, hex] = subject.split(":");
      const attachments = COSIGN_SUFFIXES.map((suffix) => `${alg}-${hex}${suffix}`).filter((tag) => tags.has(tag));
      await Promise.all([
        ...listed.map(async (desc) => {
          if (await this.carryOne(src, dst, subject, desc, undefined, write, found)) await this.walkReferrers(src, dst, desc.digest, depth + 1, write, found);
        }),
        ...attachments.map(async (tag) => {
          const desc = await src.resolve(tag);
          const carried = await this.carryOne(src, dst, subject, desc, tag, write, found, types);
          if (carried) await this.walkReferrers(src, dst, desc.digest, depth + 1, write, found);
        }),
      ]);
    })();
    if (write) this.referrerWalks.set(key, walk);
    return walk;
  }

  /**
   * One referrer (or tag attachment, under `tag`) to the destination by digest unless there already. `types`: a tag
   * attachment is kept only if its artifact type is one of them. Returns whether it was taken (its own referrers follow).
   */
  private async carryOne(src: ImageSource, dst: ImageDestination, subject: string, desc: Descriptor, tag: string | undefined, write: boolean, found: ReferrerCopy[], types?: string[]): Promise<boolean> {
    const reference = tag ?? desc.digest;
    let manifest: ManifestData | undefined;
    let artifactType = desc.artifactType;
    if (types) {
      manifest = await this.referrerManifest(src, desc, subject, tag);
      artifactType = artifactTypeOf(manifest);
      if (!types.includes(artifactType ?? "")) return false;
    }
    const present = (await dst.manifestDigest(reference).catch(() => undefined)) === desc.digest;
    if (!present && write) {
      manifest ??= await this.referrerManifest(src, desc, subject, tag);
      artifactType ??= artifactTypeOf(manifest);
      // Exact bytes: a referrer converted to another digest would no longer be what signed or was signed.
      await this.copyManifestTree(src, dst, manifest, reference, 0, true);
    }
    if (write) this.stats[present ? "referrersExisting" : "referrersCopied"]++;
    found.push({ subject, digest: desc.digest, ...(artifactType ? { artifactType } : {}), ...(tag ? { tag } : {}), action: present ? "skip" : "copy" });
    if (write) this.emit({ type: "referrer", subject, digest: desc.digest, ...(artifactType ? { artifactType } : {}), ...(tag ? { tag } : {}), skipped: present });
    return true;
  }

  /** A referrer's manifest, refused if it names another subject (a tag attachment has none to check). */
  private async referrerManifest(src: ImageSource, desc: Descriptor, subject: string, tag: string | undefined): Promise<ManifestData> {
    const manifest = await src.getManifest(desc.digest);
    checkDescriptorSize(desc, manifest, src.description);
    if (!tag) checkReferrerSubject(manifest, subject, src.description);
    return manifest;
  }

  private digestChanged(from: ManifestData, to: ManifestData): void {
    const compression = this.options.compress;
    this.emit({ type: "digest-changed", from: from.digest, to: to.digest, mediaType: to.mediaType, ...(compression ? { compression } : {}) });
  }

  /** Copy a manifest and everything below it; returns what was written (converted with convertToOci, re-compressed with compress). */
  private async copyManifestTree(src: ImageSource, dst: ImageDestination, manifest: ManifestData, dstRef: string, depth: number, exact = false): Promise<ManifestData> {
    const compress = exact ? undefined : this.options.compress;
    // Re-compressing to zstd or none leaves Docker's media types behind (they name gzip layers only).
    const convert = !exact && (this.options.convertToOci === true || (compress !== undefined && compress !== "gzip"));
    const children = new Map<string, Descriptor>();
    if (manifest.parsed.kind === "index") {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new RegcliError("registry", `index nesting in ${src.description} is deeper than ${MAX_INDEX_DEPTH}`);
      }
      await Promise.all(
        manifest.parsed.index.manifests.map(async (child) => {
          const childManifest = await src.getManifest(child.digest);
          checkDescriptorSize(child, childManifest, src.description);
          const written = await this.copyManifestTree(src, dst, childManifest, child.digest, depth + 1, exact);
          if (written.digest !== child.digest) {
            children.set(child.digest, { ...child, mediaType: written.mediaType, digest: written.digest, size: written.bytes.length });
            if (compress) this.digestChanged(childManifest, written);
          }
        }),
      );
    } else if (compress && !isArtifact(manifest.parsed.manifest)) {
      await this.recompressLayers(src, dst, manifest, manifest.parsed.manifest, compress, convert, children);
    } else {
      await Promise.all(blobsOf(manifest.parsed.manifest).map((blob) => this.copyBlob(src, dst, blob)));
    }
    const docker = manifest.mediaType === MediaType.DockerManifest || manifest.mediaType === MediaType.DockerManifestList;
    const output = children.size || (convert && docker) ? withDescriptors(manifest, children, convert) : manifest;
    const reference = output.digest !== manifest.digest && dstRef === manifest.digest ? output.digest : dstRef;
    await dst.putManifest(output, reference);
    this.stats.manifests++;
    this.emit({ type: "manifest", digest: output.digest, mediaType: output.mediaType, reference, skipped: false });
    return output;
  }

  /**
   * An image's blobs to `dst` with its filesystem layers in `compression` (into `replaced`: old digest -> new
   * descriptor). Each re-compressed layer's uncompressed digest must be the config's diff_id for it. Layers
   * already so compressed, non-distributable ones and the config are copied as they are.
   */
  private async recompressLayers(src: ImageSource, dst: ImageDestination, manifest: ManifestData, image: ImageManifest, compression: LayerCompression, toOci: boolean, replaced: Map<string, Descriptor>): Promise<void> {
    const docker = manifest.mediaType === MediaType.DockerManifest && !toOci;
    const diffIds = (await readConfig(src, manifest, src.description)).config.rootfs?.diff_ids ?? [];
    await Promise.all([
      this.copyBlob(src, dst, image.config),
      ...image.layers.map(async (layer, i) => {
        const from = layerCompression(layer.mediaType);
        if (from === undefined || from === compression || /nondistributable|foreign/.test(layer.mediaType)) return this.copyBlob(src, dst, layer);
        const { desc, diffId } = await this.recompressBlob(src, dst, layer, compression);
        if (diffIds[i] !== undefined && diffIds[i] !== diffId) {
          throw new RegcliError("integrity", `layer ${layer.digest} of ${src.description} uncompresses to ${diffId}, but its config's diff_id is ${diffIds[i]}`);
        }
        replaced.set(layer.digest, { ...desc, mediaType: layerMediaType(compression, docker) });
      }),
    ]);
  }

  /** One layer decompressed and compressed again into a temporary file (both digests in the same pass), then to `dst`. */
  private recompressBlob(src: ImageSource, dst: ImageDestination, layer: Descriptor, compression: LayerCompression): Promise<{ desc: Descriptor; diffId: string }> {
    const key = `${dst.description}\n${layer.digest}`;
    let pending = this.recompressed.get(key);
    if (!pending) {
      pending = this.limit(async () => {
        const dir = await mkdtemp(join(tmpdir(), "regcli-recompress-"));
        const file = join(dir, "layer");
        try {
          const plain = new HashingStream();
          const packed = new HashingStream();
          const { stream } = await decompressed(await this.openCounted(src, layer));
          try {
            await pipelineAsync(stream, plain, await compressor(compression), packed, createWriteStream(file));
          } catch (err) {
            throw outputFileError(err, file) ?? err;
          }
          // Annotations that describe the old compressed bytes (zstd:chunked's table of contents, eStargz's) go.
          const annotations = Object.fromEntries(Object.entries(layer.annotations ?? {}).filter(([k]) => !/^io\.(github\.)?containers\.|stargz/.test(k)));
          const desc: Descriptor = { mediaType: layerMediaType(compression), digest: packed.digest(), size: packed.bytes, ...(Object.keys(annotations).length ? { annotations } : {}) };
          this.emit({ type: "blob-recompressed", from: layer.digest, to: desc.digest, size: desc.size, compression });
          await this.sendBlob(dst, desc, fileBlob(file, desc, "the re-compressed layer"));
          return { desc, diffId: plain.digest() };
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
      this.recompressed.set(key, pending);
    }
    return pending;
  }

  /**
   * Forget the blobs handled for `dst`, once nothing more is copied there (sync: a repository is done), so that the
   * engine's memory grows with the distinct blobs of a run (see `sent`), not with its repositories. A later copy to
   * `dst` still works: the destination is asked again.
   */
  release(dst: ImageDestination): void {
    this.blobs.delete(dst.description);
    for (const key of this.recompressed.keys()) if (key.startsWith(`${dst.description}\n`)) this.recompressed.delete(key);
  }

  /** Blobs of `src` to `dst` without their manifest (an operation that writes its own: rewriteImage), each once. */
  async copyBlobs(src: ImageSource, dst: ImageDestination, blobs: Descriptor[]): Promise<void> {
    await Promise.all(blobs.map((blob) => this.copyBlob(src, dst, blob)));
  }

  /**
   * A blob that is in no source (a new layer, a new config) to `dst`, once per destination however many images
   * name it; `open` is called only when the destination lacks it.
   */
  putBlob(dst: ImageDestination, blob: Descriptor, open: OpenBlob): Promise<void> {
    return this.once(dst, blob, () => this.limitFor(blob)(() => this.sendBlob(dst, blob, open)));
  }

  /** A blob in no source to `dst`, with the events and counts of a copied one (blob-start when its bytes are read). */
  private async sendBlob(dst: ImageDestination, blob: Descriptor, open: OpenBlob): Promise<void> {
    const outcome = await dst.putBlob(blob, async (options) => {
      const stream = await open(options);
      this.emit({ type: "blob-start", digest: blob.digest, size: blob.size, offset: options?.offset ?? 0 });
      return stream;
    });
    this.count(blob, outcome, 0);
  }

  /** A manifest an operation made (not copied) to `dst` under `reference`. */
  async putManifest(dst: ImageDestination, manifest: ManifestData, reference: string): Promise<void> {
    await dst.putManifest(manifest, reference);
    this.stats.manifests++;
    this.emit({ type: "manifest", digest: manifest.digest, mediaType: manifest.mediaType, reference, skipped: false });
  }

  private limitFor(blob: Descriptor): <T>(task: () => Promise<T>) => Promise<T> {
    return blob.size <= SMALL_BLOB_BYTES ? this.smallLimit : this.limit;
  }

  /** Each blob once per destination: the transfer started first is the one every later caller waits for. */
  private once(dst: ImageDestination, blob: Descriptor, start: () => Promise<void>): Promise<void> {
    let handled = this.blobs.get(dst.description);
    if (!handled) this.blobs.set(dst.description, (handled = new Map()));
    let pending = handled.get(blob.digest);
    if (!pending) handled.set(blob.digest, (pending = start()));
    return pending;
  }

  private count(blob: Descriptor, outcome: BlobOutcome, resumedAt: number): void {
    if (outcome === "uploaded") {
      this.stats.blobsUploaded++;
      this.stats.bytesUploaded += blob.size - resumedAt;
    } else if (outcome === "mounted") this.stats.blobsMounted++;
    else this.stats.blobsExisting++;
    this.emit({ type: "blob", outcome, digest: blob.digest, size: blob.size });
  }

  private copyBlob(src: ImageSource, dst: ImageDestination, blob: Descriptor): Promise<void> {
    return this.once(dst, blob, () => {
      const target = this.options.mountAcrossRepositories ? dst.mountOrigin : undefined;
      const sentKey = target && `${target.registry}\n${blob.digest}`;
      const earlier = sentKey ? this.sent.get(sentKey) : undefined;
      // Same-registry copies mount from the source; otherwise from where this run already sent the blob, once there.
      const mountFrom = src.mountOrigin?.registry === target?.registry || !earlier ? src.mountOrigin : earlier.origin;
      const ready = earlier ? earlier.done.catch(() => undefined) : Promise.resolve();
      const pending = ready.then(() => this.limitFor(blob)(async () => {
        const { outcome, resumedAt } = await this.transferBlob(src, dst, blob, mountFrom);
        this.count(blob, outcome, resumedAt);
      }));
      if (sentKey && !earlier) this.sent.set(sentKey, { origin: target!, done: pending });
      return pending;
    });
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
  tags: Array<{ tag: string; digest: string; skipped: boolean; referrers: ReferrerCopy[] }>;
  stats: CopyStats;
}

/**
 * The other named images of a layout (an unpacked archive) to `dst`, under their names, all but `except`: an archive
 * is written anew, so the images it held that an operation does not replace must move to the new one too.
 */
export async function carryOtherImages(engine: CopyEngine, layout: OciLayout, dst: ImageDestination, except: string): Promise<void> {
  const others = (await layout.entries()).map((d) => ({ digest: d.digest, id: identityOf(d) })).filter((e) => (e.id.name ?? e.id.tag) && (e.id.name ?? e.id.tag) !== except);
  for (const o of others) await engine.copy(layout, o.digest, dst, (o.id.name ?? o.id.tag)!);
}

/** Copy every tag of a repository, many images at a time, each shared blob once. */
export async function copyAllTags(src: ImageSource, dst: ImageDestination, options: CopyOptions = {}): Promise<CopyTagsResult> {
  const [listed, present] = await Promise.all([src.listTags(), presentTags(dst)]);
  knownTags(src, listed);
  const tags = listed.filter((t) => !(options.referrers ? isAttachmentTag(t) : isReferrersTag(t)));
  const engine = new CopyEngine(options);
  // Images are mostly round trips (manifests, existence checks): keep many in flight; the engine bounds the bytes.
  const images = limiter(IMAGES_PER_JOB * Math.max(1, options.jobs ?? DEFAULT_JOBS));
  const results = await Promise.all(
    tags.map((tag) =>
      images(async () => {
        const { digest, skipped, referrers } = await engine.copy(src, tag, dst, tag, present ? !present.has(tag) : false);
        return { tag, digest, skipped, referrers };
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

/** A manifest's artifact type as the referrers API reports it: artifactType, else (an image) its config's media type. */
function artifactTypeOf(manifest: ManifestData): string | undefined {
  return referrerDescriptor(manifest).artifactType;
}
