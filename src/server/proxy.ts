import { EventEmitter } from "node:events";
import { open, mkdir, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RegcliError } from "../errors.js";
import type { BlobReadOptions, ListOptions, ReferrerFilter } from "../locations/types.js";
import { MANIFEST_ACCEPT, type Descriptor, type ManifestData } from "../oci/index.js";
import { writeFully } from "../util/files.js";
import { hashFile, StorageError, type RegistryStorage } from "./storage.js";

/** The upstream side of one proxied repository (a RegistryRepository: tokens, retries and resumes included). */
export interface UpstreamRepository {
  readonly description: string;
  getManifest(reference: string, accept?: readonly string[]): Promise<ManifestData>;
  resolve(reference: string, accept?: readonly string[]): Promise<Descriptor>;
  blobSize(digest: string): Promise<number | undefined>;
  /** With `desc.size` -1 the size is the response's (`size`, -1 when it gave none). */
  openBlob(desc: Descriptor, options?: BlobReadOptions): Promise<Readable & { readonly size: number }>;
  /** Every tag, or with `onePage` one page of them and whether upstream has more. */
  tagsPage(options: ListOptions): Promise<{ items: string[]; more: boolean }>;
  referrers(digest: string, filter?: ReferrerFilter): Promise<Descriptor[]>;
}

export interface ProxyOptions {
  /** Where a repository of this server is read from upstream; undefined: it is the server's own. */
  upstream(name: string): UpstreamRepository | undefined;
  /** Whether a repository of this server is a cached one (as `upstream` would say, without making its upstream side). */
  cached(name: string): boolean;
  /** How long a cached tag is served before upstream is asked whether it moved. */
  ttlMs: number;
  /** The upstream's catalog, when every repository is proxied. */
  catalog?: () => Promise<string[]>;
}

export interface CachedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
  /** Served from the cache because upstream could not be asked. */
  stale?: boolean;
}

/** A blob to answer with: its size, and its file when it is whole in the cache, else its bytes as they are fetched. */
export interface CachedBlob {
  size: number;
  path?: string;
  /** Bytes `start` to `end` (inclusive), followed as the fetch writes them. */
  open?(range: { start: number; end: number }): Readable;
}

/**
 * The pull-through cache of `regcli serve --proxy`: manifests and blobs read from upstream once and kept in the
 * server's storage. Tags are asked about again after the TTL (a HEAD); digests never. A blob is fetched once however
 * many clients ask for it at the same time: they all follow the one download, reading the file it grows.
 */
export class PullThroughCache {
  private readonly fetches = new Map<string, BlobFetch>();
  /** Manifest requests being answered: the same one asked again meanwhile waits for that answer (one upstream request). */
  private readonly manifests = new Map<string, Promise<CachedManifest>>();

  constructor(
    private readonly storage: RegistryStorage,
    readonly options: ProxyOptions,
    private readonly log: (line: string) => void,
  ) {}

  upstream(name: string): UpstreamRepository | undefined {
    return this.options.upstream(name);
  }

  /** Whether a fetch of `digest` from upstream is under way (writing its partial file). */
  fetching(digest: string): boolean {
    return this.fetches.has(digest);
  }

  /**
   * A manifest by digest (cached for good) or by tag (revalidated after the TTL). `accept` is what the client asked
   * for (undefined: anything): upstream is asked the same, and a cached manifest of another type is not served.
   * A tag is cached only from an answer to a request that accepted every manifest type.
   */
  manifest(up: UpstreamRepository, name: string, reference: string, accept: string[] | undefined): Promise<CachedManifest> {
    const key = `${name}\n${reference}\n${accept?.join(",") ?? "*"}`;
    let pending = this.manifests.get(key);
    if (!pending) {
      pending = this.answerManifest(up, name, reference, accept).finally(() => this.manifests.delete(key));
      this.manifests.set(key, pending);
    }
    return pending;
  }

  private async answerManifest(up: UpstreamRepository, name: string, reference: string, accept: string[] | undefined): Promise<CachedManifest> {
    const asked = accept ?? MANIFEST_ACCEPT;
    const fits = (mediaType: string) => accept === undefined || accept.includes(mediaType);
    const what = `manifest ${name}${reference.includes(":") ? "@" : ":"}${reference}`;
    const refuse = (err: unknown): never => {
      // Upstream is there but answered a manifest the cache cannot check and serve (Distribution rewrites a list
      // into Docker schema 1 for a client that takes neither lists nor schema 2): not found in a form the client takes.
      if (err instanceof RegcliError && err.code === "MANIFEST_UNSUPPORTED") {
        this.log(`warning: ${what}: ${err.message}`);
        throw new StorageError(404, "MANIFEST_UNKNOWN", `${what} is not served in a form regcli serve handles (${err.message}); ask with an Accept of OCI or Docker schema 2 manifests or indexes`);
      }
      return upstreamFailure(err, what, "MANIFEST_UNKNOWN", up);
    };
    if (reference.includes(":")) {
      const cached = await this.storage.getManifest(name, reference);
      if (cached) return { ...cached, digest: reference };
      const got = await up.getManifest(reference, asked).catch(refuse);
      await this.storage.putManifest(name, got.digest, got.bytes, got.mediaType);
      return got;
    }
    const tagging = MANIFEST_ACCEPT.every((t) => asked.includes(t));
    const record = await this.storage.tagRecord(name, reference);
    const cached = record && (await this.storage.getManifest(name, record.digest));
    const usable = record && cached && fits(cached.mediaType) ? { ...cached, digest: record.digest } : undefined;
    if (usable && Date.now() - record!.checkedAt < this.options.ttlMs) return usable;
    const stale = (err: unknown): CachedManifest => {
      if (!usable || !(err instanceof RegcliError) || err.kind === "not-found" || err.code === "MANIFEST_UNSUPPORTED") return refuse(err);
      this.log(`warning: serving cached ${what} (${usable.digest}) without revalidation: ${err.message}`);
      return { ...usable, stale: true };
    };
    if (record) {
      // Revalidate with a HEAD (free on Docker Hub): an unchanged digest, or one already cached, costs no GET.
      let digest: string;
      try {
        digest = (await up.resolve(reference, asked)).digest;
      } catch (err) {
        return stale(err);
      }
      const known = await this.storage.getManifest(name, digest);
      if (known && fits(known.mediaType)) {
        if (tagging && digest === record.digest) await this.storage.touchTag(name, reference);
        else if (tagging) await this.storage.putManifest(name, digest, known.bytes, known.mediaType, reference);
        return { ...known, digest };
      }
    }
    let got: ManifestData;
    try {
      got = await up.getManifest(reference, asked);
    } catch (err) {
      return stale(err);
    }
    await this.storage.putManifest(name, got.digest, got.bytes, got.mediaType, tagging ? reference : undefined);
    return got;
  }

  /** A blob's size without fetching it (HEAD). */
  async blobSize(up: UpstreamRepository, name: string, digest: string): Promise<number> {
    const local = await this.localBlob(name, digest);
    if (local) return local.size;
    const size = await up.blobSize(digest).catch((err: unknown) => upstreamFailure(err, `blob ${name}@${digest}`, "BLOB_UNKNOWN", up));
    if (size === undefined) throw new StorageError(404, "BLOB_UNKNOWN", `blob ${digest} is not in ${up.description}`);
    return size;
  }

  /** A blob from the cache, or followed as it is fetched from upstream (one fetch however many clients ask). */
  async blob(up: UpstreamRepository, name: string, digest: string): Promise<CachedBlob> {
    const local = await this.localBlob(name, digest);
    if (local) return local;
    let fetch = this.fetches.get(digest);
    if (!fetch) {
      const started = new BlobFetch(digest, this.storage.partialBlobPath(digest), this.storage.blobPath(digest));
      this.fetches.set(digest, started);
      void started.run(up, this.storage, this.log).finally(() => this.fetches.delete(digest));
      fetch = started;
    }
    fetch.names.add(name);
    const size = await fetch.sized.catch((err: unknown) => upstreamFailure(err, `blob ${name}@${digest}`, "BLOB_UNKNOWN", up));
    const f = fetch;
    return { size, open: (range) => new FetchReader(f, range.start, range.end) };
  }

  /** A blob already in the cache; one cached for another repository is linked to this one (content is content). */
  private async localBlob(name: string, digest: string): Promise<CachedBlob | undefined> {
    let size = await this.storage.blobSize(name, digest);
    if (size === undefined && (await this.storage.hasBlobAnywhere(digest))) {
      await this.storage.linkBlob(name, digest);
      size = await this.storage.blobSize(name, digest);
    }
    if (size === undefined) return undefined;
    return { size, path: this.storage.blobPath(digest) };
  }
}

/**
 * What a client is told when upstream failed: not found stays 404, a refusal of our credentials is 403 (the client's
 * own credentials would not help), rate limiting 429, bytes that fail their digest 502, anything else (unreachable,
 * 5xx after retries, an answer too large or invalid) 503.
 */
export function upstreamFailure(err: unknown, what: string, notFoundCode: string, up?: UpstreamRepository): never {
  if (!(err instanceof RegcliError)) throw err;
  const from = up ? `upstream ${up.description}` : "upstream";
  if (err.kind === "not-found") throw new StorageError(404, notFoundCode, `${what} is not known to ${from}`);
  if (err.kind === "auth") throw new StorageError(403, "DENIED", `${from} refused the cache's credentials for ${what}: ${err.message}`);
  if (err.code === "429" || err.code === "TOOMANYREQUESTS") throw new StorageError(429, "TOOMANYREQUESTS", `${from} is rate limiting ${what}`);
  if (err.kind === "integrity") throw new StorageError(502, "UNKNOWN", `${from} sent a bad ${what}: ${err.message}`);
  throw new StorageError(503, "UNAVAILABLE", `${from} is unavailable for ${what}: ${err.message}`);
}

/** How far behind the download a reader may be and still be given its bytes from memory (per blob being fetched). */
const IN_MEMORY_BEHIND = 4 * 1024 * 1024;

/**
 * One download of a blob from upstream into a partial file, renamed into the cache only once its digest is verified.
 * Readers follow `written`; a failed download cuts them. A cut body is resumed by the registry location itself;
 * a download that gave up keeps its partial file, and the next one continues it (checked whole, by digest).
 */
class BlobFetch extends EventEmitter {
  readonly names = new Set<string>();
  written = 0;
  /** The latest chunks that arrived, in order, from byte `recentStart` on (see sink). */
  readonly recent: Buffer[] = [];
  recentStart = 0;
  /** Bytes arrived: `recent` holds those from `recentStart` to here. */
  received = 0;
  size = -1;
  state: "running" | "done" | "failed" = "running";
  error: unknown;
  readonly sized: Promise<number>;
  private announce!: (size: number) => void;
  private refuse!: (err: unknown) => void;

  constructor(
    readonly digest: string,
    readonly path: string,
    readonly finalPath: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.sized = new Promise((resolve, reject) => {
      this.announce = resolve;
      this.refuse = reject;
    });
    this.sized.catch(() => undefined);
  }

  async run(up: UpstreamRepository, storage: RegistryStorage, log: (line: string) => void): Promise<void> {
    try {
      const cached = await stat(this.finalPath).catch(() => undefined);
      if (cached) {
        // A fetch that finished just before this one was asked for.
        await storage.commitBlob(this.digest, this.path, this.names);
        this.size = this.written = cached.size;
        this.state = "done";
        this.announce(cached.size);
        return;
      }
      await mkdir(dirname(this.path), { recursive: true });
      const held = await stat(this.path).then((s) => s.size, () => 0);
      // The size is the GET's (no HEAD first), except to resume a kept partial file, whose offset it must check.
      let size = held > 0 ? await up.blobSize(this.digest) : -1;
      if (size === undefined) throw new RegcliError("not-found", `blob ${this.digest} not found in ${up.description}`);
      const offset = held > 0 && held < size ? held : 0;
      const prefixHash = offset > 0 ? await hashFile(this.path) : undefined;
      if (offset > 0) log(`resuming the fetch of ${this.digest} from ${up.description} at byte ${offset}`);
      const body = await up.openBlob({ mediaType: "application/octet-stream", digest: this.digest, size }, offset > 0 ? { offset, prefixHash } : undefined);
      // A body without a Content-Length: the HEAD's size, then.
      size = this.size = body.size >= 0 ? body.size : ((await up.blobSize(this.digest).catch(() => undefined)) ?? -1);
      if (size < 0) {
        body.destroy();
        throw new RegcliError("registry", `${up.description} told no size for blob ${this.digest}`);
      }
      const file = await open(this.path, offset > 0 ? "r+" : "w").catch((err: unknown) => (body.destroy(), Promise.reject(err)));
      this.written = this.recentStart = this.received = offset;
      this.announce(size); // readers can open the file now
      try {
        await pipeline(body, this.sink(file));
      } finally {
        await file.close();
      }
      await storage.commitBlob(this.digest, this.path, this.names);
      this.state = "done";
    } catch (err) {
      if (err instanceof RegcliError && err.kind === "integrity") await rm(this.path, { force: true }).catch(() => undefined);
      log(`error: fetching ${this.digest} from ${up.description}: ${err instanceof RegcliError ? err.message : String(err)}`);
      this.refuse(err);
      this.error = err;
      this.state = "failed";
    }
    this.emit("change");
  }

  /**
   * Writes at `written`. Chunks stay in memory from their arrival until IN_MEMORY_BEHIND bytes after them are written,
   * so a reader that keeps up, or lags a little (the usual single client), reads nothing back from the file.
   */
  private sink(file: FileHandle): Writable {
    const arrived = (chunk: Buffer) => {
      this.recent.push(chunk);
      this.received += chunk.length;
      this.emit("change");
    };
    const wrote = (n: number) => {
      this.written += n;
      while (this.recent.length > 0 && this.recentStart + this.recent[0]!.length <= this.written - IN_MEMORY_BEHIND) this.recentStart += this.recent.shift()!.length;
    };
    return new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _e, cb) => {
        arrived(chunk);
        void writeFully(file, [chunk], this.written).then((n) => (wrote(n), cb()), cb);
      },
      writev: (chunks, cb) => {
        const buffers = chunks.map((c) => c.chunk as Buffer);
        buffers.forEach(arrived);
        void writeFully(file, buffers, this.written).then((n) => (wrote(n), cb()), cb);
      },
    });
  }

  /** Up to `max` bytes from `position` out of the chunks still in memory, if they hold it. */
  inMemory(position: number, max: number): Buffer | undefined {
    if (position < this.recentStart || position >= this.received) return undefined;
    // From the newest chunk back: a reader that keeps up wants one of the last few.
    let at = this.received;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const chunk = this.recent[i]!;
      at -= chunk.length;
      if (position >= at) return chunk.subarray(position - at, Math.min(chunk.length, position - at + max));
    }
    return undefined;
  }
}

/**
 * Bytes `start` to `end` of a blob being fetched: from the chunks the fetch keeps in memory while the reader keeps up
 * with it, else read from its growing file. The last of them is held back until the download is verified, so a
 * blob that fails its digest is cut short for the client, never completed.
 */
class FetchReader extends Readable {
  private file: FileHandle | undefined;
  private position: number;
  private busy = false;

  constructor(
    private readonly fetch: BlobFetch,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.position = start;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    open(this.fetch.path, "r")
      .catch((err: NodeJS.ErrnoException) => {
        // Renamed into the cache in the meantime.
        if (err.code === "ENOENT" && this.fetch.state === "done") return open(this.fetch.finalPath, "r");
        throw err;
      })
      .then((file) => {
        this.file = file;
        callback();
      }, (err: Error) => callback(this.fetch.state === "failed" ? asError(this.fetch.error) : err));
  }

  override _read(): void {
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        const f = this.fetch;
        if (f.state === "failed") return void this.destroy(asError(f.error));
        const done = f.state === "done";
        const stop = done ? this.end + 1 : this.end; // `end` itself waits for the verification
        const arrived = this.position < stop ? f.inMemory(this.position, stop - this.position) : undefined;
        if (arrived) {
          this.position += arrived.length;
          if (!this.push(arrived)) return;
          continue;
        }
        if (this.position < stop && this.position < f.written) {
          const length = Math.min(stop, f.written, this.position + 256 * 1024) - this.position;
          const { bytesRead, buffer } = await this.file!.read(Buffer.allocUnsafe(length), 0, length, this.position);
          if (bytesRead === 0) throw new Error(`blob ${f.digest}: the cached file ended early`);
          this.position += bytesRead;
          if (!this.push(buffer.subarray(0, bytesRead))) return;
          continue;
        }
        if (done) return void this.push(null);
        await new Promise((resolve) => f.once("change", resolve));
        if (this.destroyed) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.busy = false;
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const file = this.file;
    this.file = undefined;
    if (!file) return callback(err);
    file.close().then(() => callback(err), () => callback(err));
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
