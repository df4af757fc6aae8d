import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open as openFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import tar from "tar-stream";
import { RegcliError } from "../errors.js";
import { digestOf, HashingStream, MediaType, type Descriptor } from "../oci/index.js";
import { annotationsFor, normalizeName } from "./image-names.js";
import { OciLayout, REF_NAME, atomicWrite, emptyIndex } from "./oci-layout.js";

const MAX_METADATA_BYTES = 4 * 1024 * 1024;

async function isGzipFile(path: string): Promise<boolean> {
  const handle = await openFile(path, "r");
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

function normalize(name: string): string {
  const clean = name.replace(/^(\.\/)+/, "").replace(/^\/+/, "");
  if (clean.split("/").includes("..")) throw new RegcliError("integrity", `archive entry "${name}" escapes the archive`);
  return clean;
}

/** Stream into a new file, hashing on the way: the sha256 digest and size of what was written. */
async function hashInto(stream: Readable, file: string, via?: Transform): Promise<{ digest: string; size: number }> {
  const hasher = new HashingStream();
  await (via ? pipeline(stream, via, hasher, createWriteStream(file)) : pipeline(stream, hasher, createWriteStream(file)));
  return { digest: hasher.digest(), size: hasher.bytes };
}

async function collect(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new RegcliError("integrity", `${what} is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export interface UnpackedArchive {
  layout: OciLayout;
  /** Digests of the manifests made up from a legacy docker save manifest.json (no registry ever saw them). */
  synthesized: Set<string>;
}

/**
 * Unpack a docker-archive or oci-archive (gzipped or not) into `dir` as an OCI layout: every blob verified
 * by its digest (blobs/ALG/HEX) or hashed into one (docker save's own paths). A docker save archive without
 * an index gets manifests synthesized from manifest.json, named by its RepoTags in full (busybox:latest is
 * docker.io/library/busybox:latest). An index's names are kept as the archive gives them (see image-names.ts).
 */
export async function unpackArchive(file: string, dir: string): Promise<UnpackedArchive> {
  try {
    if (!(await stat(file)).isFile()) throw new RegcliError("usage", `${file} is not an archive file`);
  } catch (err) {
    if (err instanceof RegcliError) throw err;
    throw new RegcliError("usage", `cannot read archive ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  const layout = new OciLayout(dir, file);
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  const metadata = new Map<string, Buffer>();
  const byPath = new Map<string, { digest: string; size: number }>();
  const extract = tar.extract();
  const input = createReadStream(file);
  const source = (await isGzipFile(file)) ? input.pipe(createGunzip()) : input.pipe(new PassThrough());
  input.on("error", (err) => source.destroy(err));

  extract.on("entry", (header, stream, next) => {
    const run = async () => {
      if (header.type !== "file") {
        stream.resume();
        return;
      }
      const name = normalize(header.name);
      if (name === "manifest.json" || name === "index.json" || name === "repositories" || name === "oci-layout") {
        metadata.set(name, await collect(stream as unknown as Readable, MAX_METADATA_BYTES, `${name} in ${file}`));
        return;
      }
      const temp = join(dir, `.entry-${randomBytes(6).toString("hex")}`);
      const { digest, size } = await hashInto(stream as unknown as Readable, temp);
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      if (m && `sha256:${m[1]}` !== digest) {
        await rm(temp, { force: true });
        throw new RegcliError("integrity", `blob ${name} in ${file} does not match its digest (got ${digest})`);
      }
      await rename(temp, layout.blobPath(digest));
      byPath.set(name, { digest, size });
    };
    run().then(() => next(), (err) => extract.destroy(err));
  });
  try {
    await pipeline(source, extract);
  } catch (err) {
    if (err instanceof RegcliError) throw err;
    throw new RegcliError("usage", `cannot read archive ${file}: ${(err as Error).message}`, { hint: "is it a docker-archive or oci-archive tar?" });
  }

  const synthesized = new Set<string>();
  const index = metadata.has("index.json") ? (JSON.parse(metadata.get("index.json")!.toString("utf8")) as { manifests?: Descriptor[] }) : undefined;
  const manifestJson = metadata.has("manifest.json") ? (JSON.parse(metadata.get("manifest.json")!.toString("utf8")) as DockerSaveEntry[]) : undefined;
  const outIndex = emptyIndex();

  if (index?.manifests?.length) {
    outIndex.manifests.push(...index.manifests);
  } else if (Array.isArray(manifestJson)) {
    for (const entry of manifestJson) {
      const config = byPath.get(normalize(entry.Config));
      if (!config) throw new RegcliError("integrity", `${file}: manifest.json names config ${entry.Config}, which the archive lacks`);
      const layers: Descriptor[] = [];
      let allGzip = true;
      for (const path of entry.Layers) {
        const blob = byPath.get(normalize(path));
        if (!blob) throw new RegcliError("integrity", `${file}: manifest.json names layer ${path}, which the archive lacks`);
        const gz = await isGzipFile(layout.blobPath(blob.digest));
        allGzip &&= gz;
        layers.push({ mediaType: gz ? MediaType.OciLayerGzip : MediaType.OciLayer, digest: blob.digest, size: blob.size });
      }
      // Docker's own types when every layer is gzip (as a registry would serve it), OCI's otherwise.
      const docker = allGzip;
      const manifest = {
        schemaVersion: 2,
        mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
        config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: config.digest, size: config.size },
        layers: layers.map((l) => (docker ? { ...l, mediaType: MediaType.DockerLayerGzip } : l)),
      };
      const bytes = Buffer.from(JSON.stringify(manifest));
      const digest = digestOf(bytes);
      await atomicWrite(layout.blobPath(digest), bytes);
      synthesized.add(digest);
      const tags = entry.RepoTags?.length ? entry.RepoTags : [undefined];
      for (const tag of tags) {
        const name = tag ? normalizeName(tag) : undefined;
        const annotations = name ? annotationsFor(name) : tag ? { [REF_NAME]: tag } : undefined;
        outIndex.manifests.push({ mediaType: manifest.mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) });
      }
    }
  } else {
    throw new RegcliError("usage", `${file} is neither a docker-archive nor an oci-archive (no index.json or manifest.json)`);
  }
  await atomicWrite(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await atomicWrite(join(dir, "index.json"), JSON.stringify(outIndex));
  return { layout, synthesized };
}

/**
 * The manifest `digest` (one made up from a legacy docker save archive) with its uncompressed layers gzipped, as
 * docker push and skopeo send them to a registry: each layer streamed through gzip into the layout, the manifest
 * pointing at the compressed blobs (the config, and so its diff_ids, unchanged). Returns the new manifest's digest.
 */
export async function gzipLayers(layout: OciLayout, digest: string): Promise<string> {
  const manifest = await layout.getManifest(digest);
  if (manifest.parsed.kind !== "image" || manifest.parsed.manifest.layers.every((l) => l.mediaType !== MediaType.OciLayer)) return digest;
  const m = manifest.parsed.manifest;
  const layers: Descriptor[] = [];
  for (const layer of m.layers) {
    if (layer.mediaType !== MediaType.OciLayer) {
      layers.push({ ...layer, mediaType: MediaType.DockerLayerGzip });
      continue;
    }
    const temp = join(layout.dir, `.gzip-${randomBytes(6).toString("hex")}`);
    try {
      const gz = await hashInto(await layout.openBlob(layer), temp, createGzip());
      await rename(temp, layout.blobPath(gz.digest));
      layers.push({ mediaType: MediaType.DockerLayerGzip, ...gz });
    } finally {
      await rm(temp, { force: true });
    }
  }
  const doc = { schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { ...m.config, mediaType: MediaType.DockerConfig }, layers };
  const bytes = Buffer.from(JSON.stringify(doc));
  const out = digestOf(bytes);
  await atomicWrite(layout.blobPath(out), bytes);
  return out;
}
