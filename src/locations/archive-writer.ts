import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import tar from "tar-stream";
import { localFileError, RegcliError } from "../errors.js";
import { hostPlatform, MediaType, platformMatches, type Descriptor, type ManifestData } from "../oci/index.js";
import { limiter } from "../util/limit.js";
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
 * name only after finish().
 */
export class ArchiveWriter implements ImageDestination {
  readonly description: string;
  private readonly pack = tar.pack();
  private readonly temp: string;
  private readonly done: Promise<void>;
  /** Rejects as soon as the file cannot be written (disk full, read-only): the pack is then destroyed, and an
   * entry waiting on it would never end (and an empty event loop would exit 0). */
  private readonly failed: Promise<never>;
  private readonly serial = limiter(1);
  private readonly written = new Set<string>();
  private readonly manifests = new Map<string, ManifestData>();
  private readonly named: Descriptor[] = [];

  constructor(
    readonly file: string,
    readonly flavour: ArchiveFlavour,
  ) {
    this.description = `${flavour}:${file}`;
    this.temp = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.partial`;
    this.done = pipeline(this.pack, createWriteStream(this.temp, { mode: 0o644 }));
    this.failed = this.done.then(() => new Promise<never>(() => undefined));
    this.failed.catch(() => undefined);
  }

  /** The error to report: the file's own failure (named after the archive) wins over what it caused. */
  private async reporting<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      // A file that failed destroys the pack, and the pipeline then settles with the file's error.
      const fileError = this.pack.destroyed ? await this.done.then(() => undefined, (e: unknown) => e) : undefined;
      throw localFileError(fileError, this.file) ?? localFileError(err, this.file) ?? err;
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
    return this.named.find((d) => d.annotations?.[REF_NAME] === reference)?.digest;
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
    if (reference.includes(":") && /^[a-z0-9]+:[a-f0-9]+$/.test(reference)) return; // a child, stored by digest
    this.named.push({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length, annotations: { [REF_NAME]: reference } });
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
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: this.named };
    await this.serial(async () => {
      const layoutMarker = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      await this.entry("oci-layout", layoutMarker.length, layoutMarker);
      const indexBytes = Buffer.from(JSON.stringify(index));
      await this.entry("index.json", indexBytes.length, indexBytes);
      if (this.flavour === "docker-archive") {
        const entries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
        const repositories: Record<string, Record<string, string>> = {};
        for (const desc of this.named) {
          const image = this.imageFor(desc.digest);
          if (!image || image.parsed.kind !== "image") continue;
          const name = desc.annotations![REF_NAME]!;
          const existing = entries.find((e) => e.Config === blobName(image.parsed.kind === "image" ? image.parsed.manifest.config.digest : ""));
          const layers = image.parsed.manifest.layers.map((l) => blobName(l.digest));
          if (existing) existing.RepoTags.push(name);
          else entries.push({ Config: blobName(image.parsed.manifest.config.digest), RepoTags: [name], Layers: layers });
          const colon = name.lastIndexOf(":");
          if (colon > name.lastIndexOf("/")) {
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
    await rename(this.temp, this.file);
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await rm(this.temp, { force: true }).catch(() => undefined); // never hides why the write failed
  }
}

export function assertArchiveFlavour(value: string): ArchiveFlavour {
  if (value === "docker-archive" || value === "oci-archive") return value;
  throw new RegcliError("usage", `unknown archive format "${value}": use docker-archive or oci-archive`);
}
