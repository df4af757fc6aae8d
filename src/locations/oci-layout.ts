import { createReadStream, createWriteStream } from "node:fs";
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline as pipelineCb, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { localFileError, RegcliError, writingTo } from "../errors.js";
import { digestOf, isDigest, MediaType, parseManifest, VerifyingStream, verifyBytes, type Descriptor, type ManifestData } from "../oci/index.js";
import { withFileLock } from "../store/lock.js";
import { algorithmOf } from "../oci/digest.js";
import { crypto } from "../util/builtins.js";
import { makeDirectory } from "../util/files.js";
import { filterReferrers, isReferrersTag, referrerDescriptor, referrersIndex, referrersIndexBytes, referrersTag, subjectOf } from "../oci/referrers.js";
import type { BlobOutcome, BlobReadOptions, ImageDestination, ImageSource, OpenBlob, ReferrerFilter } from "./types.js";

const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Blobs are read in 256 KiB pieces: a quarter of the syscalls and buffers of the 64 KiB default. */
const READ_BUFFER_BYTES = 256 * 1024;

/** The OCI annotation for an index entry's name; by convention (skopeo, Docker 25, containerd) a tag only. */
export const REF_NAME = "org.opencontainers.image.ref.name";

export interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/*
 * How an OCI layout (a directory, an oci-archive, the local store) records referrers, as regctl's ocidir does:
 * with the referrers tag schema of distribution-spec 1.1 inside index.json. The referrers of a subject are an
 * OCI index blob listing one descriptor per referring manifest (mediaType, digest, size, artifactType,
 * annotations: oci/referrers.ts referrerDescriptor), named by the tag `<alg>-<hex>` of the subject's digest
 * (referrersTag). Other tools read it as one more tagged index (skopeo, umoci) or as the fallback tag (regctl);
 * index.json keeps the referrer manifests reachable, so a garbage collection that walks index.json keeps them.
 */

/**
 * An OCI Image Layout directory (oci-layout, index.json, blobs/ALG/HEX) as an image location. Blobs appear
 * only once verified (temp file + rename); index.json changes are atomic and serialized between processes.
 * Names live in the index's org.opencontainers.image.ref.name annotations, as skopeo's oci: transport reads them.
 * Referrers are recorded as regctl's ocidir records them: an index tagged `sha256-<hex>` (described above);
 * those tags are records, not names, and names() leaves them out.
 */
export class OciLayout implements ImageSource, ImageDestination {
  readonly description: string;

  constructor(
    readonly dir: string,
    description?: string,
  ) {
    this.description = description ?? `oci:${dir}`;
  }

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(":") as [string, string];
    return join(this.dir, "blobs", alg, hex);
  }

  private get indexPath(): string {
    return join(this.dir, "index.json");
  }

  /** Create the layout skeleton if missing (idempotent). */
  async init(): Promise<void> {
    await writingTo(this.dir, async () => {
      await makeDirectory(join(this.dir, "blobs", "sha256"));
      const marker = join(this.dir, "oci-layout");
      if (!(await exists(marker))) await atomicWrite(marker, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      if (!(await exists(this.indexPath))) {
        await withFileLock(`${this.indexPath}.lock`, async () => {
          if (!(await exists(this.indexPath))) await atomicWrite(this.indexPath, JSON.stringify(emptyIndex()));
        });
      }
    });
  }

  async readIndex(): Promise<LayoutIndex> {
    let text: string;
    try {
      text = await readFile(this.indexPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new RegcliError("not-found", `${this.description} is not an OCI layout (no index.json)`);
      }
      throw err;
    }
    try {
      const index = JSON.parse(text) as LayoutIndex;
      if (!Array.isArray(index.manifests)) throw new Error("no manifests");
      return index;
    } catch {
      throw new RegcliError("integrity", `${this.description}: index.json is not a valid OCI index`);
    }
  }

  /** Change index.json under the lock; the update sees the latest state and is written atomically. */
  async updateIndex(change: (index: LayoutIndex) => void | Promise<void>): Promise<void> {
    await this.init();
    await writingTo(this.dir, () =>
      withFileLock(`${this.indexPath}.lock`, async () => {
        const index = await this.readIndex();
        await change(index);
        await atomicWrite(this.indexPath, JSON.stringify(index));
      }),
    );
  }

  async find(reference: string): Promise<Descriptor | undefined> {
    const index = await this.readIndex();
    if (isDigest(reference)) {
      const listed = index.manifests.find((d) => d.digest === reference);
      if (listed) return listed;
      return undefined;
    }
    return index.manifests.find((d) => d.annotations?.[REF_NAME] === reference);
  }

  /** The index.json entries that are images (or artifacts): all but the referrers records. */
  async entries(): Promise<Descriptor[]> {
    return (await this.readIndex()).manifests.filter((d) => !isReferrersTag(d.annotations?.[REF_NAME]));
  }

  async names(): Promise<Array<{ name: string; descriptor: Descriptor }>> {
    return (await this.entries())
      .filter((d) => d.annotations?.[REF_NAME])
      .map((d) => ({ name: d.annotations![REF_NAME]!, descriptor: d }));
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.blobPath(digest));
      return size === undefined || s.size === size;
    } catch {
      return false;
    }
  }

  async readBlob(digest: string, limit: number): Promise<Buffer> {
    const path = this.blobPath(digest);
    let s;
    try {
      s = await stat(path);
    } catch {
      throw new RegcliError("not-found", `blob ${digest} not found in ${this.description}`);
    }
    if (s.size > limit) throw new RegcliError("integrity", `blob ${digest} in ${this.description} is larger than ${limit} bytes`);
    const bytes = await readFile(path);
    verifyBytes(bytes, digest, this.description);
    return bytes;
  }

  // ---- ImageSource ----

  async getManifest(reference: string): Promise<ManifestData> {
    // By digest the blob is read directly (no index.json parse per child); by name the index says which.
    let desc: Descriptor | undefined;
    if (isDigest(reference)) {
      if (await this.hasBlob(reference)) desc = { mediaType: "", digest: reference, size: -1 };
    } else {
      desc = await this.find(reference);
    }
    if (!desc) throw new RegcliError("not-found", `${reference} not found in ${this.description}`);
    const bytes = await this.readBlob(desc.digest, 4 * 1024 * 1024);
    const data = parseManifest(bytes, desc.mediaType || undefined, this.description);
    data.digest = desc.digest;
    return data;
  }

  /** A name from index.json, or a digest: listed there, or a manifest blob (an index's child) read to learn its type. */
  async resolve(reference: string): Promise<Descriptor> {
    const listed = await this.find(reference);
    if (listed) return listed;
    if (isDigest(reference) && (await this.hasBlob(reference))) {
      const m = await this.getManifest(reference);
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
    }
    throw new RegcliError("not-found", `${reference} not found in ${this.description}`);
  }

  async openBlob(desc: Descriptor, options: BlobReadOptions = {}): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    if (!(await this.hasBlob(desc.digest))) throw new RegcliError("not-found", `blob ${desc.digest} not found in ${this.description}`);
    const offset = options.offset ?? 0;
    const size = desc.size < 0 ? undefined : desc.size;
    const verifier = new VerifyingStream(desc.digest, size, this.description, { offset, prefixHash: options.prefixHash });
    return pipelineCb(createReadStream(path, { start: offset, highWaterMark: READ_BUFFER_BYTES }), verifier, () => undefined);
  }

  async listTags(): Promise<string[]> {
    return (await this.names()).map((n) => n.name);
  }

  /** From the index tagged `<alg>-<hex>` of `digest` (regctl's ocidir record); [] when there is none. */
  async referrers(digest: string, filter?: ReferrerFilter): Promise<Descriptor[]> {
    const record = await this.find(referrersTag(digest));
    return record ? filterReferrers(await this.recordEntries(record), filter?.artifactType) : [];
  }

  private async recordEntries(record: Descriptor): Promise<Descriptor[]> {
    return referrersIndex(await this.getManifest(record.digest), `${this.description} (${record.annotations?.[REF_NAME]})`);
  }

  /**
   * Every referrers record: the subject (as its tag names it: `sha256-<hex>`; the digest itself for sha256) and
   * its referrers. What `images` and friends use to show artifacts, which names() leaves out.
   */
  async referrerRecords(): Promise<Array<{ tag: string; subject?: string; referrers: Descriptor[] }>> {
    const records = [];
    for (const d of (await this.readIndex()).manifests) {
      const tag = d.annotations?.[REF_NAME];
      if (!isReferrersTag(tag)) continue;
      const subject = await this.recordSubject(d);
      records.push({ tag: tag!, ...(subject ? { subject } : {}), referrers: await this.recordEntries(d) });
    }
    return records;
  }

  /** The subject a record is for: from its tag (sha256), else from a referrer it lists (the tag cuts longer digests). */
  private async recordSubject(record: Descriptor): Promise<string | undefined> {
    const tag = record.annotations![REF_NAME]!;
    if (tag.startsWith("sha256-")) return tag.replace("-", ":");
    const first = (await this.recordEntries(record).catch(() => []))[0];
    const manifest = first && (await this.getManifest(first.digest).catch(() => undefined));
    return manifest ? subjectOf(manifest)?.digest : undefined;
  }

  /** Add referrers of `subject` to its record (one read-modify-write of index.json under its lock). */
  async recordReferrers(subject: string, added: Descriptor[]): Promise<void> {
    const tag = referrersTag(subject);
    await this.updateIndex(async (index) => {
      const current = index.manifests.find((d) => d.annotations?.[REF_NAME] === tag);
      const existing = current ? await this.recordEntries(current) : [];
      const bytes = referrersIndexBytes(existing.filter((d) => !added.some((a) => a.digest === d.digest)).concat(added));
      const digest = digestOf(bytes);
      await this.writeBlobBytes(bytes, digest);
      index.manifests = index.manifests.filter((d) => d !== current);
      index.manifests.push({ mediaType: MediaType.OciIndex, digest, size: bytes.length, annotations: { [REF_NAME]: tag } });
    });
  }

  // ---- ImageDestination ----

  /**
   * `open` gives a stream that fails at its end unless digest and size match (every ImageSource's contract), so
   * bytes are hashed once, on the way in. The bytes collect in `<hex>.partial`, kept when a transfer is cut, so
   * the next run resumes where this one stopped (its prefix re-hashed from disk). A per-blob lock keeps two
   * processes from writing one partial file; the second finds the blob complete. A partial that fails
   * verification is deleted, since nothing says which of its bytes are bad.
   */
  async putBlob(desc: Descriptor, open: OpenBlob): Promise<BlobOutcome> {
    if (await this.hasBlob(desc.digest, desc.size)) return "exists";
    await this.init();
    const target = this.blobPath(desc.digest);
    await writingTo(this.dir, () => makeDirectory(join(target, "..")));
    const partial = `${target}.partial`;
    return withFileLock(`${target}.lock`, async () => {
      if (await this.hasBlob(desc.digest, desc.size)) return "exists";
      const held = await stat(partial).then((s) => s.size, () => 0);
      const offset = held > 0 && held < desc.size ? held : 0;
      const prefixHash = crypto().createHash(algorithmOf(desc.digest));
      if (offset > 0) {
        for await (const chunk of createReadStream(partial, { end: offset - 1 })) prefixHash.update(chunk as Buffer);
      }
      let sink: Writable | undefined;
      try {
        const source = await open(offset > 0 ? { offset, prefixHash } : undefined);
        // A wide write buffer lets chunks that arrive during a write go out together (writev), not one syscall each.
        const writeOptions = { highWaterMark: WRITE_BUFFER_BYTES, ...(offset > 0 ? { flags: "r+", start: offset } : { mode: 0o644 }) };
        sink = createWriteStream(partial, writeOptions);
        await pipeline(source, sink);
        await writingTo(this.dir, () => rename(partial, target));
      } catch (err) {
        // Bytes that failed verification are useless, and on a full disk the partial file only holds the space.
        const io = localFileError(sink?.errored, this.dir);
        if (io || (err instanceof RegcliError && (err.kind === "integrity" || err.kind === "io"))) await rm(partial, { force: true }).catch(() => undefined);
        throw io ?? err;
      }
      return "uploaded";
    }, 24 * 3600_000);
  }

  async writeBlobBytes(bytes: Buffer, digest: string): Promise<void> {
    if (await this.hasBlob(digest, bytes.length)) return;
    verifyBytes(bytes, digest, "manifest");
    await this.init();
    await writingTo(this.dir, () => atomicWrite(this.blobPath(digest), bytes));
  }

  async manifestDigest(reference: string): Promise<string | undefined> {
    try {
      return (await this.find(reference))?.digest;
    } catch (err) {
      if (err instanceof RegcliError && err.kind === "not-found") return undefined;
      throw err;
    }
  }

  /**
   * Store the manifest bytes; a name (not a digest) also gets an index.json entry, replacing that name. A manifest
   * with a subject is also added to its subject's referrers record.
   */
  async putManifest(manifest: ManifestData, reference: string, extraAnnotations: Record<string, string> = {}): Promise<void> {
    await this.writeBlobBytes(manifest.bytes, manifest.digest);
    const subject = subjectOf(manifest);
    if (subject) await this.recordReferrers(subject.digest, [referrerDescriptor(manifest)]);
    if (isDigest(reference)) return;
    const descriptor: Descriptor = {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.bytes.length,
      annotations: { ...extraAnnotations, [REF_NAME]: reference },
    };
    if (manifest.parsed.kind === "image") {
      // Platform helps tools that list a layout; read from the config is not needed for correctness.
      const annotations = manifest.parsed.manifest.annotations;
      if (annotations?.["org.opencontainers.image.created"]) descriptor.annotations!["org.opencontainers.image.created"] = annotations["org.opencontainers.image.created"];
    }
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== reference);
      index.manifests.push(descriptor);
    });
  }

  /** Remove names from index.json; returns the names that were present. */
  async removeNames(names: string[]): Promise<string[]> {
    const removed: string[] = [];
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((d) => {
        const name = d.annotations?.[REF_NAME];
        if (name && names.includes(name)) {
          removed.push(name);
          return false;
        }
        return true;
      });
    });
    return removed;
  }

  /**
   * Every blob digest reachable from index.json (manifests, their configs, layers and children). With
   * `dropOrphans`, a referrers record whose subject manifest is held but reachable neither from a name nor from a
   * kept record (signatures of signatures) is an orphan: its image was removed. Orphans are returned, not
   * counted, unless newer than `protectNewerThan` (a running pull may not have named its image yet). A record
   * whose subject was never held is kept: e.g. the signature of a multi-platform index of which one platform was
   * pulled (the store keeps that platform's manifest, not the index).
   */
  async reachableBlobs(dropOrphans = false, protectNewerThan?: number): Promise<{ blobs: Set<string>; orphans: Descriptor[] }> {
    const index = await this.readIndex();
    const seen = new Set<string>();
    const visit = async (desc: Descriptor, depth: number): Promise<void> => {
      if (seen.has(desc.digest)) return;
      seen.add(desc.digest);
      if (depth > 8 || !(await this.hasBlob(desc.digest))) return;
      if (desc.size > 4 * 1024 * 1024) return;
      let data: ManifestData;
      try {
        data = parseManifest(await readFile(this.blobPath(desc.digest)), desc.mediaType, this.description);
      } catch {
        return; // not a manifest: a plain blob
      }
      if (data.parsed.kind === "index") for (const child of data.parsed.index.manifests) await visit(child, depth + 1);
      else for (const blob of [data.parsed.manifest.config, ...data.parsed.manifest.layers]) seen.add(blob.digest);
    };
    let pending = index.manifests.filter((d) => isReferrersTag(d.annotations?.[REF_NAME]));
    for (const desc of index.manifests) if (!pending.includes(desc)) await visit(desc, 0);
    for (let progress = true; progress && pending.length; ) {
      progress = false;
      const subjects = new Set([...seen].map(referrersTag));
      for (const record of pending) {
        if (dropOrphans && !subjects.has(record.annotations![REF_NAME]!)) {
          const subject = await this.recordSubject(record);
          if (subject && (await this.hasBlob(subject))) continue; // held, not reachable (yet: a later pass may reach it)
        }
        await visit(record, 0);
        progress = true;
      }
      pending = pending.filter((r) => !seen.has(r.digest));
    }
    const orphans: Descriptor[] = [];
    for (const record of pending) {
      const mtime = (await stat(this.blobPath(record.digest)).catch(() => undefined))?.mtimeMs ?? 0;
      if (protectNewerThan !== undefined && mtime >= protectNewerThan) await visit(record, 0);
      else orphans.push(record);
    }
    return { blobs: seen, orphans };
  }

  /**
   * Delete blobs nothing in index.json references (and stale partial files). Returns bytes freed. With
   * `dropOrphanReferrers` (the store), referrers records whose subject is gone are removed from index.json first.
   */
  async garbageCollect(protectNewerThan?: number, dropOrphanReferrers = false): Promise<{ removed: number; bytes: number }> {
    let removed = 0;
    let bytes = 0;
    await withFileLock(`${this.indexPath}.lock`, async () => {
      const { blobs: keep, orphans } = await this.reachableBlobs(dropOrphanReferrers, protectNewerThan);
      if (orphans.length) {
        const index = await this.readIndex();
        index.manifests = index.manifests.filter((d) => !orphans.some((o) => o.digest === d.digest && o.annotations?.[REF_NAME] === d.annotations?.[REF_NAME]));
        await writingTo(this.dir, () => atomicWrite(this.indexPath, JSON.stringify(index)));
      }
      for (const alg of await readdir(join(this.dir, "blobs")).catch(() => [] as string[])) {
        for (const name of await readdir(join(this.dir, "blobs", alg))) {
          if (name.endsWith(".lock")) continue; // a download in progress (or one whose owner died: harmless)
          const path = join(this.dir, "blobs", alg, name);
          const s = await stat(path).catch(() => undefined);
          if (!s) continue;
          if (protectNewerThan !== undefined && s.mtimeMs >= protectNewerThan) continue;
          const partial = name.endsWith(".partial");
          if (partial ? Date.now() - s.mtimeMs > 24 * 3600_000 : !keep.has(`${alg}:${name}`)) {
            await rm(path, { force: true });
            removed++;
            bytes += s.size;
          }
        }
      }
    });
    return { removed, bytes };
  }
}

export function emptyIndex(): LayoutIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Write a file so that readers see either the old content or the new, never a part. */
export async function atomicWrite(path: string, data: string | Buffer): Promise<void> {
  const temp = `${path}.${process.pid}-${crypto().randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, data, { mode: 0o644 });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}
