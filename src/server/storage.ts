import { createHash, randomUUID, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";

export class StorageError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function atomicWrite(path: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomUUID()}.tmp`;
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined); // a disk that filled up keeps no half-written temporary file
    throw err;
  }
}

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);

interface UploadState {
  hash: Hash;
  offset: number;
}

/**
 * Registry storage on a filesystem: blobs content-addressed and shared between repositories, a repository
 * sees a blob only once linked to it; manifests are blobs plus a revision link (holding the media type), and
 * tags are small files naming a digest. Every write is temp + rename, so a killed server never shows a
 * half-written blob, manifest or tag.
 */
export class RegistryStorage {
  /** Incremental hashes of uploads in progress (rebuilt from disk if the server restarted). */
  private readonly uploads = new Map<string, UploadState>();

  constructor(readonly root: string) {}

  blobPath(digest: string): string {
    return join(this.root, "blobs", "sha256", hexOf(digest));
  }
  private repoDir(name: string): string {
    return join(this.root, "repositories", name);
  }
  private layerLink(name: string, digest: string): string {
    return join(this.repoDir(name), "_layers", hexOf(digest));
  }
  private revisionLink(name: string, digest: string): string {
    return join(this.repoDir(name), "_manifests", "revisions", hexOf(digest));
  }
  private tagFile(name: string, tag: string): string {
    return join(this.repoDir(name), "_manifests", "tags", tag);
  }
  private uploadDir(id: string): string {
    return join(this.root, "uploads", id);
  }

  /** Whether the root holds the layout init() creates: gc must never take another directory for a registry. */
  async hasLayout(): Promise<boolean> {
    const dir = (path: string) => stat(path).then((s) => s.isDirectory(), () => false);
    return (await dir(join(this.root, "blobs", "sha256"))) && (await dir(join(this.root, "repositories")));
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(this.root, "repositories"), { recursive: true });
    await mkdir(join(this.root, "uploads"), { recursive: true });
  }

  // ---- blobs ----

  async blobSize(name: string, digest: string): Promise<number | undefined> {
    if (!(await exists(this.layerLink(name, digest))) && !(await exists(this.revisionLink(name, digest)))) return undefined;
    return stat(this.blobPath(digest)).then(
      (s) => s.size,
      () => undefined,
    );
  }

  async hasBlobAnywhere(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async linkBlob(name: string, digest: string): Promise<void> {
    await atomicWrite(this.layerLink(name, digest), digest);
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const link = this.layerLink(name, digest);
    if (!(await exists(link))) return false;
    await rm(link, { force: true });
    return true;
  }

  // ---- the pull-through cache (regcli serve --proxy) ----

  /** Where a blob fetched from upstream is written until verified; kept after a failed fetch, which the next one resumes. */
  partialBlobPath(digest: string): string {
    return join(this.root, "proxy", "partial", hexOf(digest));
  }

  /** Make a verified blob visible (rename from `path`) and link it to `names`. */
  async commitBlob(digest: string, path: string, names: Iterable<string>): Promise<void> {
    if (await exists(this.blobPath(digest))) await rm(path, { force: true });
    else await rename(path, this.blobPath(digest));
    for (const name of names) await this.linkBlob(name, digest);
  }

  /** The digest a tag names and when it was last fetched or confirmed from upstream (the tag file's mtime). */
  async tagRecord(name: string, tag: string): Promise<{ digest: string; checkedAt: number } | undefined> {
    const file = this.tagFile(name, tag);
    const [digest, info] = await Promise.all([readFile(file, "utf8").catch(() => undefined), stat(file).catch(() => undefined)]);
    return digest && info ? { digest, checkedAt: info.mtimeMs } : undefined;
  }

  /** Note that upstream confirmed a cached tag now. */
  async touchTag(name: string, tag: string): Promise<void> {
    const now = new Date();
    await utimes(this.tagFile(name, tag), now, now);
  }

  // ---- uploads ----

  async startUpload(name: string): Promise<string> {
    const id = randomUUID();
    await mkdir(this.uploadDir(id), { recursive: true });
    await writeFile(join(this.uploadDir(id), "data"), "");
    await writeFile(join(this.uploadDir(id), "info.json"), JSON.stringify({ name, started: Date.now() }));
    this.uploads.set(id, { hash: createHash("sha256"), offset: 0 });
    return id;
  }

  async uploadInfo(name: string, id: string): Promise<{ size: number } | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
    try {
      const info = JSON.parse(await readFile(join(this.uploadDir(id), "info.json"), "utf8")) as { name: string };
      if (info.name !== name) return undefined;
      return { size: (await stat(join(this.uploadDir(id), "data"))).size };
    } catch {
      return undefined;
    }
  }

  /** Append a chunk (streamed) to an upload; the caller has checked the offset. Returns the new size. */
  async appendUpload(id: string, body: Readable, limitBytes?: number): Promise<number> {
    const path = join(this.uploadDir(id), "data");
    let state = this.uploads.get(id);
    const size = (await stat(path)).size;
    if (!state || state.offset !== size) state = { hash: await hashFile(path), offset: size };
    const s = state;
    let written = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        written += chunk.length;
        if (limitBytes !== undefined && written > limitBytes) return cb(new StorageError(400, "SIZE_INVALID", "body longer than Content-Length"));
        s.hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      // A wide write buffer lets what arrives during a write go out in one writev, not a syscall per socket read.
      await pipeline(body, counter, createWriteStream(path, { flags: "a", highWaterMark: 1024 * 1024 }));
    } catch (err) {
      this.uploads.delete(id); // the file may hold part of the chunk: rehash next time
      throw err;
    }
    s.offset = size + written;
    this.uploads.set(id, s);
    return s.offset;
  }

  /** Finish an upload: verify the digest, then make the blob visible (rename) and link it to the repository. */
  async finishUpload(name: string, id: string, digest: string): Promise<void> {
    const path = join(this.uploadDir(id), "data");
    const size = (await stat(path)).size;
    let state = this.uploads.get(id);
    if (!state || state.offset !== size) state = { hash: await hashFile(path), offset: size };
    const actual = `sha256:${state.hash.copy().digest("hex")}`;
    if (actual !== digest) {
      await this.cancelUpload(id);
      throw new StorageError(400, "DIGEST_INVALID", `provided digest ${digest} does not match uploaded content ${actual}`);
    }
    if (!(await exists(this.blobPath(digest)))) await rename(path, this.blobPath(digest));
    await this.linkBlob(name, digest);
    await this.cancelUpload(id);
  }

  async cancelUpload(id: string): Promise<void> {
    this.uploads.delete(id);
    await rm(this.uploadDir(id), { recursive: true, force: true });
  }

  /** Remove uploads untouched for longer than `maxAgeMs`. */
  async expireUploads(maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const id of await readdir(join(this.root, "uploads")).catch(() => [] as string[])) {
      const s = await stat(join(this.uploadDir(id), "data")).catch(() => undefined);
      if (!s || Date.now() - s.mtimeMs > maxAgeMs) {
        await this.cancelUpload(id);
        removed++;
      }
    }
    return removed;
  }

  // ---- manifests and tags ----

  async putManifest(name: string, digest: string, bytes: Buffer, mediaType: string, tag?: string): Promise<void> {
    if (!(await exists(this.blobPath(digest)))) await atomicWrite(this.blobPath(digest), bytes);
    await atomicWrite(this.revisionLink(name, digest), mediaType);
    if (tag) await atomicWrite(this.tagFile(name, tag), digest);
  }

  async resolve(name: string, reference: string): Promise<string | undefined> {
    if (reference.includes(":")) return (await exists(this.revisionLink(name, reference))) ? reference : undefined;
    const digest = await readFile(this.tagFile(name, reference), "utf8").catch(() => undefined);
    return digest && (await exists(this.revisionLink(name, digest))) ? digest : undefined;
  }

  async getManifest(name: string, digest: string): Promise<{ bytes: Buffer; mediaType: string } | undefined> {
    const mediaType = await readFile(this.revisionLink(name, digest), "utf8").catch(() => undefined);
    if (mediaType === undefined) return undefined;
    const bytes = await readFile(this.blobPath(digest)).catch(() => undefined);
    return bytes ? { bytes, mediaType } : undefined;
  }

  async hasManifest(name: string, digest: string): Promise<boolean> {
    return exists(this.revisionLink(name, digest));
  }

  /** Delete a manifest by digest, and every tag pointing at it. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    if (!(await exists(this.revisionLink(name, digest)))) return false;
    for (const tag of await this.tags(name)) {
      if ((await readFile(this.tagFile(name, tag), "utf8").catch(() => "")) === digest) await rm(this.tagFile(name, tag), { force: true });
    }
    await rm(this.revisionLink(name, digest), { force: true });
    await this.unindexReferrer(name, digest);
    return true;
  }

  /** Remove one tag; the manifest stays (OCI 1.1 DELETE by tag). */
  async deleteTag(name: string, tag: string): Promise<boolean> {
    const file = this.tagFile(name, tag);
    if (!(await exists(file))) return false;
    await rm(file, { force: true });
    return true;
  }

  async tags(name: string): Promise<string[]> {
    const all = await readdir(join(this.repoDir(name), "_manifests", "tags")).catch(() => [] as string[]);
    return all.filter((t) => !t.endsWith(".tmp")).sort();
  }

  async repositoryExists(name: string): Promise<boolean> {
    return exists(join(this.repoDir(name), "_manifests"));
  }

  /** Repositories with manifests; with `marker` "_layers", those with blobs linked (a push may not have a manifest yet). */
  async repositories(marker: "_manifests" | "_layers" = "_manifests"): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (!entry.isDirectory() || entry.name.startsWith("_")) continue;
        const name = prefix ? `${prefix}/${entry.name}` : entry.name;
        if (await exists(join(dir, entry.name, marker))) out.push(name);
        await walk(join(dir, entry.name), name);
      }
    };
    await walk(join(this.root, "repositories"), "");
    return out.sort();
  }

  // ---- referrers (an index of subject -> referring manifests, one line per referrer) ----

  private referrersFile(name: string, subject: string): string {
    return join(this.repoDir(name), "_referrers", hexOf(subject));
  }

  async indexReferrer(name: string, subject: string, descriptor: Record<string, unknown>): Promise<void> {
    await mkdir(dirname(this.referrersFile(name, subject)), { recursive: true });
    await appendFile(this.referrersFile(name, subject), `${JSON.stringify(descriptor)}\n`);
  }

  private async unindexReferrer(name: string, digest: string): Promise<void> {
    const dir = join(this.repoDir(name), "_referrers");
    for (const file of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, file);
      const lines = (await readFile(path, "utf8").catch(() => "")).split("\n").filter(Boolean);
      const kept = lines.filter((l) => (JSON.parse(l) as { digest: string }).digest !== digest);
      if (kept.length !== lines.length) await atomicWrite(path, kept.map((l) => `${l}\n`).join(""));
    }
  }

  async referrers(name: string, subject: string): Promise<Array<Record<string, unknown>>> {
    const lines = (await readFile(this.referrersFile(name, subject), "utf8").catch(() => "")).split("\n").filter(Boolean);
    const seen = new Set<string>();
    const out: Array<Record<string, unknown>> = [];
    for (const line of lines) {
      const d = JSON.parse(line) as Record<string, unknown> & { digest: string };
      if (seen.has(d.digest) || !(await this.hasManifest(name, d.digest))) continue;
      seen.add(d.digest);
      out.push(d);
    }
    return out;
  }

  // ---- garbage collection and cache retention ----

  private scopeFile(): string {
    return join(this.root, "proxy", "scope.json");
  }

  /**
   * Record which repositories are a pull-through cache (`namespaces`: those under these names; undefined: all) and
   * its TTL, so that `serve gc` treats them as a cache without the server's flags; undefined clears it.
   */
  async recordCacheScope(scope: { ttlMs: number; namespaces?: string[] } | undefined): Promise<void> {
    if (scope) await atomicWrite(this.scopeFile(), JSON.stringify(scope));
    else await rm(this.scopeFile(), { force: true });
  }

  /** The cache scope recorded by the last `serve --proxy` on this root, if any. */
  async cacheScope(): Promise<{ ttlMs: number; cached(name: string): boolean } | undefined> {
    const text = await readFile(this.scopeFile(), "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    const { ttlMs, namespaces } = JSON.parse(text) as { ttlMs: number; namespaces?: string[] };
    return { ttlMs, cached: (name) => !namespaces || namespaces.some((ns) => name.startsWith(`${ns}/`)) };
  }

  /** The digests of the manifests a repository holds. */
  async revisions(name: string): Promise<string[]> {
    const hexes = await readdir(join(this.repoDir(name), "_manifests", "revisions")).catch(() => [] as string[]);
    return hexes.filter((hex) => !hex.endsWith(".tmp")).map((hex) => `sha256:${hex}`);
  }

  /** The blobs linked to a repository (pushed, mounted or cached there). */
  async linkedBlobs(name: string): Promise<string[]> {
    const hexes = await readdir(join(this.repoDir(name), "_layers")).catch(() => [] as string[]);
    return hexes.filter((hex) => !hex.endsWith(".tmp")).map((hex) => `sha256:${hex}`);
  }

  /** When a manifest of `name` was last stored or (for a cache) used: the later of its revision's and its blob's mtime. */
  async manifestTime(name: string, digest: string): Promise<number> {
    const times = await Promise.all([this.revisionLink(name, digest), this.blobPath(digest)].map((p) => stat(p).then((s) => s.mtimeMs, () => 0)));
    return Math.max(...times);
  }

  /**
   * Every digest `roots` (repository, manifest digest) reach: the manifests themselves, an index's child manifests
   * in the same repository, and each image manifest's config and layers.
   */
  async reachable(roots: Iterable<readonly [string, string]>): Promise<Set<string>> {
    const keep = new Set<string>();
    const queue = [...roots];
    for (let next = queue.pop(); next; next = queue.pop()) {
      const [repo, digest] = next;
      if (keep.has(digest)) continue;
      keep.add(digest);
      const m = await this.getManifest(repo, digest);
      if (!m) continue;
      try {
        const doc = JSON.parse(m.bytes.toString("utf8")) as { config?: { digest: string }; layers?: Array<{ digest: string }>; manifests?: Array<{ digest: string }> };
        if (doc.config) keep.add(doc.config.digest);
        for (const l of doc.layers ?? []) keep.add(l.digest);
        for (const c of doc.manifests ?? []) queue.push([repo, c.digest]);
      } catch {
        /* not JSON: nothing more it references */
      }
    }
    return keep;
  }

  /** Every blob file with its size and mtime (which a cache moves forward when the blob is used). */
  blobEntries(): Promise<FileEntry[]> {
    return fileEntries(join(this.root, "blobs", "sha256"));
  }

  /** The partial files of blobs fetched from upstream: in progress, or kept by a fetch that gave up (see partialBlobPath). */
  partialEntries(): Promise<FileEntry[]> {
    return fileEntries(join(this.root, "proxy", "partial"));
  }

  /** Remove a partial file; its size (0 if there was none). */
  async removePartial(digest: string): Promise<number> {
    return this.expirePartial(digest, -Infinity);
  }

  /** Remove a partial file untouched for longer than `maxAgeMs` (a fetch writing to it keeps it fresh); its size, 0 if kept. */
  async expirePartial(digest: string, maxAgeMs: number): Promise<number> {
    const path = this.partialBlobPath(digest);
    const s = await stat(path).catch(() => undefined);
    if (!s || Date.now() - s.mtimeMs <= maxAgeMs) return 0;
    await rm(path, { force: true });
    return s.size;
  }

  /** Record when blobs were last used (their mtime), in one pass for many uses. */
  async touchBlobs(times: Map<string, number>): Promise<void> {
    for (const [digest, ms] of times) await utimes(this.blobPath(digest), new Date(ms), new Date(ms)).catch(() => undefined);
  }

  /** Blobs (manifests included) outside `keep`; by default what any manifest of any repository reaches. */
  async unreferencedBlobs(keep?: Set<string>): Promise<string[]> {
    if (!keep) {
      const roots: Array<[string, string]> = [];
      for (const repo of await this.repositories()) for (const digest of await this.revisions(repo)) roots.push([repo, digest]);
      keep = await this.reachable(roots);
    }
    return (await this.blobEntries()).map((b) => b.digest).filter((digest) => !keep.has(digest));
  }

  async removeBlob(digest: string): Promise<number> {
    const size = (await stat(this.blobPath(digest)).catch(() => ({ size: 0 }))).size;
    await rm(this.blobPath(digest), { force: true });
    return size;
  }
}

export interface FileEntry {
  digest: string;
  size: number;
  mtimeMs: number;
}

/** The files of a directory named by digest hex, with their sizes and mtimes. */
async function fileEntries(dir: string): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for (const hex of await readdir(dir).catch(() => [] as string[])) {
    if (hex.endsWith(".tmp")) continue;
    const s = await stat(join(dir, hex)).catch(() => undefined);
    if (s?.isFile()) out.push({ digest: `sha256:${hex}`, size: s.size, mtimeMs: s.mtimeMs });
  }
  return out;
}

export async function hashFile(path: string): Promise<Hash> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash;
}
