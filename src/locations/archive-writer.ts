import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Readable, Writable } from "node:stream";
import { randomBytes } from "node:crypto";
import tar from "tar-stream";
import { outputFileError, RegcliError } from "../errors.js";
import { digestOf, hostPlatform, isDigest, MediaType, platformMatches, type Descriptor, type ManifestData } from "../oci/index.js";
import { limiter } from "../util/limit.js";
import { annotationsFor, familiarName, isBareTag } from "./image-names.js";
import { referrerDescriptor, referrersIndexBytes, referrersTag, subjectOf } from "../oci/referrers.js";
import { REF_NAME } from "./oci-layout.js";
import type { BlobOutcome, ImageDestination } from "./types.js";

export type ArchiveFlavour = "docker-archive" | "oci-archive";

function blobName(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

/**
 * Writes images into one tar as they arrive from the copy engine: an OCI layout (oci-layout, index.json,
 * blobs/ALG/HEX) and, for docker-archive, the `docker save` manifest.json and repositories pointing at the
 * same blobs (as Docker 25 writes it). Streams each blob straight into the tar; the file appears under its
 * name only after finish(). An image is named by a full name (docker.io/library/busybox:latest: index.json gets
 * io.containerd.image.name and the tag in ref.name, RepoTags the familiar busybox:latest) or by a bare tag
 * (ref.name only, no RepoTags: a tag alone is no name for docker).
 */
export class ArchiveWriter implements ImageDestination {
  readonly description: string;
  private readonly pack = tar.pack();
  private readonly temp: string | undefined;
  private readonly done: Promise<void>;
  /** Rejects as soon as the file cannot be written (disk full, read-only): the pack is then destroyed, and an
   * entry waiting on it would never end (and an empty event loop would exit 0). */
  private readonly failed: Promise<never>;
  private readonly serial = limiter(1);
  private readonly written = new Set<string>();
  private readonly manifests = new Map<string, ManifestData>();
  private readonly named: Array<{ entry: string; desc: Descriptor }> = [];
  /** oci-archive: the referrers given, by subject digest, recorded at finish() as a layout records them. */
  private readonly referrers = new Map<string, Descriptor[]>();

  /** `file` a path, or a stream (stdout) that gets the tar as it is made and is not ended. */
  constructor(
    readonly file: string | Writable,
    readonly flavour: ArchiveFlavour,
  ) {
    this.description = `${flavour}:${typeof file === "string" ? file : "-"}`;
    this.temp = typeof file === "string" ? `${file}.${process.pid}-${randomBytes(4).toString("hex")}.partial` : undefined;
    this.done = this.temp ? pipeline(this.pack, createWriteStream(this.temp, { mode: 0o644 })) : pipeline(this.pack, file as Writable, { end: false });
    this.failed = this.done.then(() => new Promise<never>(() => undefined));
    this.failed.catch(() => undefined);
  }

  /** The error to report: the file's own failure (named after the archive) wins over what it caused. */
  private async reporting<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      // A file that failed destroys the pack, and the pipeline then settles with the file's error.
      const where = typeof this.file === "string" ? this.file : "the standard output";
      const fileError = this.pack.destroyed ? await this.done.then(() => undefined, (e: unknown) => e) : undefined;
      throw outputFileError(fileError, where) ?? outputFileError(err, where) ?? err;
    }
  }

  private entry(name: string, size: number, body: Readable | Buffer): Promise<void> {
    const written = this.pack.destroyed ? this.failed : new Promise<void>((resolve, reject) => {
      if (Buffer.isBuffer(body)) {
        this.pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, body, (err) => (err ? reject(err) : resolve()));
        return;
      }
      const sink = this.pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (err) => (err ? reject(err) : resolve()));
      pipeline(body, sink).catch(reject);
    });
    return Promise.race([written, this.failed]).catch((err: unknown) => {
      if (!Buffer.isBuffer(body)) body.destroy(); // a response nobody reads would hold its connection open
      throw err;
    });
  }

  async putBlob(desc: Descriptor, open: () => Promise<Readable>): Promise<BlobOutcome> {
    return this.reporting(() =>
      this.serial(async () => {
        if (this.written.has(desc.digest)) return "exists";
        await this.entry(blobName(desc.digest), desc.size, await open());
        this.written.add(desc.digest);
        return "uploaded";
      }),
    );
  }

  async manifestDigest(reference: string): Promise<string | undefined> {
    return this.named.find((n) => n.entry === reference)?.desc.digest;
  }

  async putManifest(manifest: ManifestData, reference: string): Promise<void> {
    await this.reporting(() =>
      this.serial(async () => {
        if (!this.written.has(manifest.digest)) {
          await this.entry(blobName(manifest.digest), manifest.bytes.length, manifest.bytes);
          this.written.add(manifest.digest);
        }
      }),
    );
    this.manifests.set(manifest.digest, manifest);
    // A docker-archive has no place for referrers (docker load would take the record for an image).
    const subject = this.flavour === "oci-archive" ? subjectOf(manifest)?.digest : undefined;
    if (subject) {
      const list = this.referrers.get(subject) ?? [];
      if (!list.some((d) => d.digest === manifest.digest)) list.push(referrerDescriptor(manifest));
      this.referrers.set(subject, list);
    }
    if (isDigest(reference)) return; // a child or a referrer, stored by digest
    this.named.push({ entry: reference, desc: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length, annotations: annotationsFor(reference) } });
  }

  /** The image manifest docker's manifest.json describes for a name: an index contributes this machine's image. */
  private imageFor(digest: string): ManifestData | undefined {
    const m = this.manifests.get(digest);
    if (!m) return undefined;
    if (m.parsed.kind === "image") return m;
    const host = hostPlatform();
    const children = m.parsed.index.manifests;
    const child = children.find((d) => platformMatches(d.platform, host)) ?? children[0];
    return child ? this.imageFor(child.digest) : undefined;
  }

  finish(): Promise<void> {
    return this.reporting(() => this.finishWriting());
  }

  private async finishWriting(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: this.named.map((n) => n.desc) };
    await this.serial(async () => {
      for (const [subject, list] of this.referrers) {
        const bytes = referrersIndexBytes(list);
        const desc: Descriptor = { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.length, annotations: { [REF_NAME]: referrersTag(subject) } };
        if (!this.written.has(desc.digest)) await this.entry(blobName(desc.digest), bytes.length, bytes);
        this.written.add(desc.digest);
        index.manifests.push(desc);
      }
      const layoutMarker = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      await this.entry("oci-layout", layoutMarker.length, layoutMarker);
      const indexBytes = Buffer.from(JSON.stringify(index));
      await this.entry("index.json", indexBytes.length, indexBytes);
      if (this.flavour === "docker-archive") {
        const entries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
        const repositories: Record<string, Record<string, string>> = {};
        for (const { entry, desc } of this.named) {
          const image = this.imageFor(desc.digest);
          if (!image || image.parsed.kind !== "image") continue;
          const config = blobName(image.parsed.manifest.config.digest);
          let item = entries.find((e) => e.Config === config);
          if (!item) entries.push((item = { Config: config, RepoTags: [], Layers: image.parsed.manifest.layers.map((l) => blobName(l.digest)) }));
          const name = isBareTag(entry) ? undefined : familiarName(entry);
          const colon = name?.lastIndexOf(":") ?? -1;
          if (name && colon > name.lastIndexOf("/") && !name.includes("@")) {
            if (!item.RepoTags.includes(name)) item.RepoTags.push(name);
            const last = image.parsed.manifest.layers.at(-1)?.digest.split(":")[1] ?? "";
            (repositories[name.slice(0, colon)] ??= {})[name.slice(colon + 1)] = last;
          }
        }
        const manifestJson = Buffer.from(JSON.stringify(entries));
        await this.entry("manifest.json", manifestJson.length, manifestJson);
        const repos = Buffer.from(JSON.stringify(repositories));
        await this.entry("repositories", repos.length, repos);
      }
    });
    this.pack.finalize();
    await this.done;
    if (this.temp) await rename(this.temp, this.file as string);
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    if (this.temp) await rm(this.temp, { force: true }).catch(() => undefined); // never hides why the write failed
  }
}

export function assertArchiveFlavour(value: string): ArchiveFlavour {
  if (value === "docker-archive" || value === "oci-archive") return value;
  throw new RegcliError("usage", `unknown archive format "${value}": use docker-archive or oci-archive`);
}
