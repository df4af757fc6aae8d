import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { RegcliError } from "../errors.js";
import {
  BlobCheck,
  digestOf,
  filterReferrers,
  isDigest,
  MediaType,
  referrerDescriptor,
  referrersIndex,
  referrersIndexBytes,
  referrersTag,
  subjectOf,
  type Descriptor,
  type ManifestData,
} from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import { UploadError, type RegistryClient } from "../registry/client.js";
import type { RegistryContext } from "../registry/context.js";
import type { MirrorUse } from "../registry/rules.js";
import { backoffMs } from "../transport/http.js";
import type { BlobOutcome, BlobReadOptions, ImageDestination, ImageSource, ListOptions, MountOrigin, OpenBlob, ReferrerFilter } from "./types.js";

export interface RepositoryOptions {
  /** Upload in PATCH chunks of this many bytes (--chunk-size); otherwise one streaming PUT per blob. */
  chunkSize?: number;
}

/** Writes of a referrers tag schema index before giving up on keeping an entry in it (see updateFallbackIndex). */
const MAX_INDEX_WRITES = 10;

/** When a registry asks for chunked uploads (OCI-Chunk-Min-Length) and no --chunk-size was given. */
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/** One repository of one registry endpoint, readable and writable. */
export class RegistryRepository implements ImageSource, ImageDestination {
  readonly description: string;
  readonly mountOrigin: MountOrigin;

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    private readonly options: RepositoryOptions = {},
  ) {
    this.description = `${client.registry}/${repository}`;
    this.mountOrigin = { registry: client.registry, repository };
  }

  /** With `accept`, the manifest types asked for (a pull-through cache asks as its client asked); default every type. */
  getManifest(reference: string, accept?: readonly string[]): Promise<ManifestData> {
    return this.client.getManifest(this.repository, reference, accept);
  }

  async resolve(reference: string, accept?: readonly string[]): Promise<Descriptor> {
    const head = await this.client.headManifest(this.repository, reference, accept);
    if (!head) throw new RegcliError("not-found", `manifest ${this.description}${reference.includes(":") ? "@" : ":"}${reference} not found`, { code: "MANIFEST_UNKNOWN" });
    return { mediaType: head.mediaType ?? "", digest: head.digest, size: head.size };
  }

  /**
   * The blob from `offset`, verified at its end. A body cut mid-way (reset, truncated, stalled past --timeout)
   * is continued with a Range request from the byte it stopped at, so no byte crosses the network twice;
   * attempts that make no progress are bounded by --retries.
   */
  async openBlob(desc: Descriptor, options: BlobReadOptions = {}): Promise<Readable & { readonly size: number }> {
    const start = options.offset ?? 0;
    let first: Readable;
    if (desc.size < 0) {
      // Size unknown (a blob named only by digest): the response says it, and resumes are checked against that.
      const { body, size } = await this.client.getBlob(this.repository, desc.digest, start);
      desc = { ...desc, size: size ?? -1 };
      first = body;
    } else first = await this.openRange(desc, start);
    const check = new BlobCheck(desc.digest, desc.size < 0 ? undefined : desc.size, this.client.registry, { offset: start, prefixHash: options.prefixHash });
    return new ResumingBody(desc, start, first, check, this.client.retries, (offset) => this.openRange(desc, offset), (line) => this.client.debug(line), this.client.registry);
  }

  private async openRange(desc: Descriptor, offset: number): Promise<Readable> {
    const { body, size } = await this.client.getBlob(this.repository, desc.digest, offset);
    if (size !== undefined && size !== desc.size) {
      body.destroy();
      throw new RegcliError("integrity", `blob ${desc.digest} from ${this.client.registry} has size ${size}, expected ${desc.size}`);
    }
    return body;
  }

  listTags(options?: ListOptions): Promise<string[]> {
    return this.client.listTags(this.repository, options);
  }

  /** As listTags, and with `onePage` whether the registry has more after them (a pull-through cache answers page by page). */
  tagsPage(options: ListOptions): Promise<{ items: string[]; more: boolean }> {
    return this.client.tagsPage(this.repository, options);
  }

  /** A blob's size (HEAD), or undefined when the repository does not have it. */
  async blobSize(digest: string): Promise<number | undefined> {
    return (await this.client.headBlob(this.repository, digest))?.size;
  }

  /**
   * From the referrers API when the registry has it, else from the referrers tag schema's index (none there: no
   * referrers). Either answer must be an OCI index; the artifactType filter is applied here when the registry did not.
   */
  async referrers(digest: string, filter: ReferrerFilter = {}): Promise<Descriptor[]> {
    const api = this.client.referrersApi === false ? undefined : await this.client.getReferrers(this.repository, digest, filter.artifactType);
    if (api) return api.filtered ? api.manifests : filterReferrers(api.manifests, filter.artifactType);
    return filterReferrers((await this.fallbackIndex(digest))?.manifests ?? [], filter.artifactType);
  }

  /** The referrers tag schema's index for `subject` (`sha256-<hex>`) with its digest, or undefined when there is none. */
  private async fallbackIndex(subject: string): Promise<{ manifests: Descriptor[]; digest: string; etag?: string } | undefined> {
    const tag = referrersTag(subject);
    let data: ManifestData & { etag?: string };
    try {
      // Every manifest type accepted: Distribution answers 404 to an Accept its manifest is not in, and what is
      // under the tag must be seen to be refused when it is not an index.
      data = await this.client.getManifest(this.repository, tag);
    } catch (err) {
      if (err instanceof RegcliError && err.kind === "not-found") return undefined;
      throw err;
    }
    return { manifests: referrersIndex(data, `${this.description}:${tag}`), digest: data.digest, etag: data.etag };
  }

  async putBlob(desc: Descriptor, open: OpenBlob, mountFrom?: MountOrigin): Promise<BlobOutcome> {
    if (mountFrom && mountFrom.registry === this.client.registry && mountFrom.repository !== this.repository) {
      // Mount first: the source repository has the blob, so this usually settles it in one round trip. Only
      // when the registry declines (no mount support, no read access there) is the destination asked.
      const mount = await this.client.mountBlob(this.repository, desc.digest, mountFrom.repository);
      if (mount.mounted) return "mounted";
      if (await this.client.headBlob(this.repository, desc.digest)) return "exists"; // the opened session expires unused
      await this.upload(desc, open, mount);
      return "uploaded";
    }
    const opened = await this.checkAndStartUpload(desc);
    if (!opened) return "exists";
    await this.upload(desc, open, opened);
    return "uploaded";
  }

  /**
   * "Is the blob here?" and "where do I upload it?" in one round trip: a mount from this same repository succeeds
   * (201) exactly when the blob is already linked here, and otherwise opens an upload session (202), as the
   * distribution spec asks of registries that cannot mount. A registry that refuses the mount parameters gets
   * the classic HEAD, then a plain POST.
   */
  private async checkAndStartUpload(desc: Descriptor): Promise<{ location: URL; chunkMin?: number } | undefined> {
    try {
      const mount = await this.client.mountBlob(this.repository, desc.digest, this.repository);
      return mount.mounted ? undefined : mount;
    } catch (err) {
      if (!(err instanceof RegcliError) || err.kind !== "registry") throw err;
      this.client.debug(`! mount-from-self of ${desc.digest} refused (${err.message}); checking with HEAD`);
    }
    if (await this.client.headBlob(this.repository, desc.digest)) return undefined;
    return this.startUpload();
  }

  /**
   * Upload a blob, resuming after a failure: after a wait, the registry is asked how many bytes it holds (GET on the
   * upload location) and the source is reopened from there. An upload the registry lost or refuses
   * (BLOB_UPLOAD_UNKNOWN/INVALID) is not asked about again: unless the blob landed, a new one is started. Attempts
   * without progress are bounded by --retries; the refusal of a session resumed from a status read is not counted,
   * as it follows from the failure before it: Distribution writes a cut request's bytes only when it notices the
   * cut, and a status read before that reports an offset whose next request it refuses, for good.
   */
  private async upload(desc: Descriptor, open: OpenBlob, opened: { location: URL; chunkMin?: number }): Promise<void> {
    const { location, chunkMin } = opened;
    const chunkSize = this.options.chunkSize ?? (chunkMin ? Math.max(chunkMin, DEFAULT_CHUNK_BYTES) : undefined);
    const state = { location, offset: 0 };
    let stalls = 0;
    let resumed = false; // the session's offset came from a status read after a failure
    for (let tries = 1; ; tries++) {
      const before = state.offset;
      const wasResumed = resumed;
      let source: Readable | undefined;
      try {
        source = await open(state.offset > 0 ? { offset: state.offset } : undefined);
        if (chunkSize) await this.sendChunks(desc, source, state, chunkSize);
        else if (state.offset === 0) await this.client.completeUpload(this.repository, state.location, desc, source, desc.size);
        else {
          const rest = desc.size - state.offset;
          state.location = await this.client.patchUpload(this.repository, state.location, source, state.offset, rest);
          await this.client.completeUpload(this.repository, state.location, desc);
        }
        return;
      } catch (err) {
        source?.destroy();
        // A source that failed (bad digest, gone) aborts the upload: report the source's error, not ours.
        const cause = (source as { errored?: unknown } | undefined)?.errored;
        if (cause instanceof RegcliError) throw cause;
        const resumable = err instanceof UploadError ? err.resumable : !(err instanceof RegcliError) || err.kind === "network";
        if (!resumable) throw err;
        const lost = err instanceof UploadError && err.sessionLost;
        // Waiting first lets the registry finish with the request that failed, so the status below is current.
        await sleep(backoffMs(stalls));
        const status = lost ? undefined : await this.client.uploadStatus(this.repository, state.location).catch(() => undefined);
        resumed = status !== undefined && status.offset <= desc.size;
        if (status && resumed) {
          state.location = status.location;
          state.offset = status.offset;
        } else if (await this.client.headBlob(this.repository, desc.digest).catch(() => undefined)) {
          return; // the request whose answer was lost had completed the upload
        } else {
          state.location = (await this.startUpload()).location;
          state.offset = 0;
        }
        if (state.offset > before) stalls = 0;
        else if (!(lost && wasResumed)) stalls++;
        if (stalls > this.client.retries) {
          throw new RegcliError("network", `upload of blob ${desc.digest} to ${this.description} failed after ${tries} tries: ${(err as Error).message}`, {
            hint: "check the network or raise --retries",
            cause: err,
          });
        }
        this.client.debug(`! upload of ${desc.digest}: ${(err as Error).message}; ${resumed ? `resuming at byte ${state.offset}` : "starting a new upload"}`);
      }
    }
  }

  private async startUpload(): Promise<{ location: URL; chunkMin?: number }> {
    const started = await this.client.startUpload(this.repository);
    return { location: started.location!, chunkMin: started.chunkMin };
  }

  /** PATCH the source in pieces of `chunkSize` (one piece in memory at a time), then close with PUT. */
  private async sendChunks(desc: Descriptor, source: Readable, state: { location: URL; offset: number }, chunkSize: number): Promise<void> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const chunk = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      state.location = await this.client.patchUpload(this.repository, state.location, chunk, state.offset, chunk.length);
      state.offset += chunk.length;
    };
    for await (const data of source) {
      let piece = data as Buffer;
      while (pendingBytes + piece.length >= chunkSize) {
        const take = chunkSize - pendingBytes;
        pending.push(piece.subarray(0, take));
        pendingBytes += take;
        piece = piece.subarray(take);
        await flush();
      }
      if (piece.length) {
        pending.push(piece);
        pendingBytes += piece.length;
      }
    }
    if (pendingBytes > 0) await flush();
    await this.client.completeUpload(this.repository, state.location, desc);
  }

  async manifestDigest(reference: string): Promise<string | undefined> {
    return (await this.client.headManifest(this.repository, reference))?.digest;
  }

  /**
   * Store a manifest. One with a subject, on a registry that did not answer with OCI-Subject (no referrers API),
   * is also added to the subject's referrers tag schema index.
   */
  async putManifest(manifest: ManifestData, reference: string): Promise<void> {
    const put = await this.client.putManifest(this.repository, reference, manifest);
    const subject = subjectOf(manifest)?.digest;
    if (!subject) return;
    this.client.referrersApi = put.subject !== undefined;
    if (put.subject) return;
    try {
      await this.updateFallbackIndex(subject, { add: referrerDescriptor(manifest) });
    } catch (err) {
      if (!(err instanceof RegcliError)) throw err;
      throw new RegcliError(err.kind, `${this.description}@${manifest.digest} was pushed, but adding it to the referrers of ${subject} failed: ${err.message}`, {
        hint: err.hint ?? "push it again: the referrers index is updated then",
        code: err.code,
        cause: err,
      });
    }
  }

  /**
   * Delete a manifest by digest. Where the registry has the referrers API that is all (asked once a run, by a
   * referrers request for the digest, unless a listing or a push already told). Otherwise one with a subject (read
   * first; a manifest regcli cannot parse has none for it) also leaves its subject's referrers tag schema index, and
   * its own such index goes when it lists nothing (its referrers were deleted first).
   */
  async deleteManifest(digest: string): Promise<void> {
    if (this.client.referrersApi === undefined) {
      // A referrers answer that cannot be read leaves it unknown: the tag schema is then kept as well.
      await this.client.getReferrers(this.repository, digest).catch((err: unknown) => {
        if (!(err instanceof RegcliError)) throw err;
      });
    }
    if (this.client.referrersApi) return this.client.deleteManifest(this.repository, digest);
    const manifest = await this.getManifest(digest).catch((err: unknown) => {
      if (err instanceof RegcliError && err.kind === "registry") return undefined;
      throw err;
    });
    await this.client.deleteManifest(this.repository, digest);
    const subject = manifest && subjectOf(manifest)?.digest;
    try {
      if (subject) await this.updateFallbackIndex(subject, { remove: digest });
      const own = await this.fallbackIndex(digest);
      if (own && own.manifests.length === 0) await this.client.deleteManifest(this.repository, own.digest);
    } catch (err) {
      if (!(err instanceof RegcliError)) throw err;
      const where = subject ? `taking it out of the referrers of ${subject}` : `removing its empty referrers index ${referrersTag(digest)}`;
      throw new DeletedWithLeftovers(err.kind, `${this.description}@${digest} was deleted, but ${where} failed: ${err.message}`, { code: err.code, cause: err });
    }
  }

  /**
   * Add an entry to (or remove one from) the referrers tag schema index of `subject` by read-modify-write, keeping
   * what concurrent writers do. Where the registry honours If-Match a lost race is a 412 and is read again.
   * Distribution 2.8 sends ETags but ignores If-Match, so every write is checked: after a pause longer than our own
   * read-modify-write took, the index is read again and, if the change is undone (a writer that read before our
   * write wrote after it), written again onto what is there now. A writer whose change a stale write undid finds
   * it so the same way. Removing from an index that is not there is nothing to do.
   */
  private async updateFallbackIndex(subject: string, change: { add: Descriptor } | { remove: string }): Promise<void> {
    const tag = referrersTag(subject);
    const digest = "add" in change ? change.add.digest : change.remove;
    for (let write = 0; write < MAX_INDEX_WRITES; write++) {
      const started = Date.now();
      const current = await this.fallbackIndex(subject);
      const listed = current?.manifests.some((d) => d.digest === digest) ?? false;
      if ("add" in change ? listed : !listed) return;
      const manifests = "add" in change ? [...(current?.manifests ?? []), change.add] : current!.manifests.filter((d) => d.digest !== digest);
      const bytes = referrersIndexBytes(manifests);
      try {
        await this.client.putManifest(this.repository, tag, { bytes, mediaType: MediaType.OciIndex, digest: digestOf(bytes) }, { ifMatch: current?.etag });
      } catch (err) {
        if (err instanceof RegcliError && err.code === "PRECONDITION_FAILED") {
          this.client.debug(`! referrers index ${this.description}:${tag} changed under us; reading it again`);
          await sleep(Math.random() * 100);
          continue;
        }
        throw err;
      }
      const settle = Math.min(3000, Math.max(200, 3 * (Date.now() - started)));
      await sleep(settle * (1 + Math.random()));
    }
    throw new RegcliError("registry", `the referrers index ${this.description}:${tag} kept losing the change for ${digest} after ${MAX_INDEX_WRITES} writes`, {
      hint: "other clients are rewriting it without keeping entries; try again when they are done",
    });
  }
}

/**
 * A repository read through its mirrors first (Docker's registry-mirrors for docker.io, registries.conf's
 * [[registry.mirror]] for any registry): the first endpoint that serves the manifest serves its blobs too; any
 * failure on a mirror falls through to the next endpoint, the registry itself last.
 */
export class MirroredSource implements ImageSource {
  readonly description: string;
  readonly mountOrigin: MountOrigin;
  private preferred: RegistryRepository | undefined;
  private readonly endpoints: RegistryRepository[];
  private readonly uses: Map<RegistryRepository, MirrorUse>;

  constructor(endpoints: { repository: RegistryRepository; use: MirrorUse }[]) {
    this.endpoints = endpoints.map((e) => e.repository);
    this.uses = new Map(endpoints.map((e) => [e.repository, e.use]));
    const origin = this.endpoints[this.endpoints.length - 1]!;
    this.description = origin.description;
    this.mountOrigin = origin.mountOrigin;
  }

  private ordered(): RegistryRepository[] {
    const p = this.preferred;
    return p ? [p, ...this.endpoints.filter((e) => e !== p)] : this.endpoints;
  }

  /** A read by tag skips the mirrors that serve only digests, and the other way round (pull-from-mirror). */
  private async first<T>(action: (e: RegistryRepository) => Promise<T>, by?: "tag" | "digest"): Promise<T> {
    const origin = this.endpoints[this.endpoints.length - 1]!;
    const skip: MirrorUse | undefined = by === "tag" ? "digest-only" : by === "digest" ? "tag-only" : undefined;
    const mirrorErrors: unknown[] = [];
    let originError: unknown;
    for (const endpoint of this.ordered()) {
      if (skip && this.uses.get(endpoint) === skip) continue;
      try {
        const result = await action(endpoint);
        this.preferred ??= endpoint;
        return result;
      } catch (err) {
        if (err instanceof RegcliError && err.kind === "integrity") throw err;
        if (endpoint === origin) originError = err;
        else mirrorErrors.push(err);
      }
    }
    throw mirroredFailure(mirrorErrors, originError);
  }

  getManifest(reference: string): Promise<ManifestData> {
    return this.first((e) => e.getManifest(reference), isDigest(reference) ? "digest" : "tag");
  }

  resolve(reference: string): Promise<Descriptor> {
    return this.first((e) => e.resolve(reference), isDigest(reference) ? "digest" : "tag");
  }

  openBlob(desc: Descriptor, options?: BlobReadOptions): Promise<Readable> {
    return this.first((e) => e.openBlob(desc, options));
  }

  listTags(options?: ListOptions): Promise<string[]> {
    // A digest-only mirror is not trusted for what tags point to, so not for the tag list either.
    return this.first((e) => e.listTags(options), "tag");
  }

  referrers(digest: string, filter?: ReferrerFilter): Promise<Descriptor[]> {
    return this.first((e) => e.referrers(digest, filter));
  }
}

/**
 * What to report when the mirrors and the registry itself all failed. The registry's answer wins, unless it
 * could not be reached (docker.io without internet): then a mirror's answer (not found, denied) is what the user
 * needs to see, with the registry's failure after it.
 */
function mirroredFailure(mirrorErrors: unknown[], originError: unknown): unknown {
  if (!(originError instanceof RegcliError) || originError.kind !== "network") return originError;
  const answer = mirrorErrors.find((e): e is RegcliError => e instanceof RegcliError && e.kind !== "network");
  if (!answer) return originError;
  return new RegcliError(answer.kind, `${answer.message}, and ${originError.message}`, { hint: answer.hint ?? originError.hint, code: answer.code, cause: answer });
}

/** The image source for a reference: its registry, behind its mirrors when any are configured. */
export function registrySource(ctx: RegistryContext, ref: Pick<Reference, "registry" | "repository">): ImageSource {
  const endpoints = ctx.pullEndpoints(ref).map((e) => ({ repository: new RegistryRepository(e.client, e.repository), use: e.use }));
  return endpoints.length > 1 ? new MirroredSource(endpoints) : endpoints[0]!.repository;
}

export function registryDestination(ctx: RegistryContext, ref: Pick<Reference, "registry" | "repository">): RegistryRepository {
  return new RegistryRepository(ctx.client(ref.registry, ref.repository), ref.repository, { chunkSize: ctx.options.chunkSize });
}

/** A manifest was deleted, but keeping the referrers tag schema indexes in step with that failed afterwards. */
export class DeletedWithLeftovers extends RegcliError {}

/**
 * One blob download as a stream that outlives its HTTP responses: a body cut mid-way (reset, truncated, stalled
 * past --timeout) is continued by `reopen(position)` with a Range request, so no byte crosses the network twice;
 * attempts that make no progress are bounded by `retries`. Chunks pass straight through with backpressure (an
 * async iterator would concatenate whatever the socket had buffered: a copy of every byte), checked on the way by
 * `check` (size and digest), so the stream fails rather than ends on bad bytes, without a second stream per blob.
 */
class ResumingBody extends Readable {
  private body: Readable | undefined;
  private position: number;
  private stalls = 0;
  private tries = 1;

  constructor(
    private readonly desc: Descriptor,
    start: number,
    first: Readable,
    private readonly check: BlobCheck,
    private readonly retries: number,
    private readonly reopen: (offset: number) => Promise<Readable>,
    private readonly debug: (line: string) => void,
    private readonly host: string,
  ) {
    super();
    this.position = start;
    this.attach(first);
  }

  /** The blob's whole size: as asked for, or as the response said when it was asked for with size -1 (-1: not said). */
  get size(): number {
    return this.desc.size;
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.body?.destroy();
    this.body = undefined;
    callback(err);
  }

  private attach(body: Readable): void {
    this.body = body;
    const before = this.position;
    let settled = false;
    const settle = (failure?: unknown) => {
      if (settled || this.body !== body) return;
      settled = true;
      if (failure === undefined) {
        const bad = this.check.finish();
        if (bad) this.destroy(bad);
        else this.push(null);
      } else if (failure instanceof RegcliError) this.destroy(failure);
      else this.resumeAfter(failure, before);
    };
    body.on("data", (chunk: Buffer) => {
      if (this.body !== body) return;
      this.position += chunk.length;
      const bad = this.check.update(chunk);
      if (bad) this.destroy(bad);
      else if (!this.push(chunk)) body.pause();
    });
    body.once("end", () => settle(this.position >= this.desc.size ? undefined : new Error("the body ended early")));
    body.once("error", (err) => settle(err));
  }

  private resumeAfter(failure: unknown, before: number): void {
    this.body = undefined;
    this.stalls = this.position > before ? 0 : this.stalls + 1;
    const reason = (failure as Error)?.message ?? String(failure);
    if (this.stalls > this.retries) {
      this.destroy(
        new RegcliError(
          "network",
          `download of blob ${this.desc.digest} from ${this.host} stopped at byte ${this.position} of ${this.desc.size} after ${this.tries} tries (${reason})`,
          { hint: "check the network or raise --retries/--timeout; a re-run resumes", cause: failure },
        ),
      );
      return;
    }
    this.debug(`! blob ${this.desc.digest}: ${reason}; resuming at byte ${this.position}`);
    const wait = this.stalls > 0 ? sleep(backoffMs(this.stalls - 1)) : Promise.resolve();
    wait
      .then(() => {
        if (this.destroyed) return;
        this.tries++;
        return this.reopen(this.position).then((next) => (this.destroyed ? next.destroy() : this.attach(next)));
      })
      .catch((err: Error) => this.destroy(err));
  }
}
