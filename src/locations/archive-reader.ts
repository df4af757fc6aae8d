import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open as openFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { RegcliError } from "../errors.js";
import { digestOf, MediaType, type Descriptor } from "../oci/index.js";
import { parseReference } from "../reference/index.js";
import { OciLayout, REF_NAME, atomicWrite, emptyIndex } from "./oci-layout.js";

const MAX_METADATA_BYTES = 4 * 1024 * 1024;
const CONTAINERD_NAME = "io.containerd.image.name";

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
  /** Image names found in the archive, in the form the archive gives them. */
  names: string[];
}

/**
 * Unpack a docker-archive or oci-archive (gzipped or not) into `dir` as an OCI layout: every blob verified
 * by its digest (blobs/ALG/HEX) or hashed into one (docker save's own paths). A docker save archive without
 * an index gets manifests synthesized from manifest.json, named by its RepoTags.
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
      const hash = createHash("sha256");
      let size = 0;
      const hasher = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(stream as unknown as Readable, hasher, createWriteStream(temp));
      const digest = `sha256:${hash.digest("hex")}`;
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

  const names: string[] = [];
  const index = metadata.has("index.json") ? (JSON.parse(metadata.get("index.json")!.toString("utf8")) as { manifests?: Descriptor[] }) : undefined;
  const manifestJson = metadata.has("manifest.json") ? (JSON.parse(metadata.get("manifest.json")!.toString("utf8")) as DockerSaveEntry[]) : undefined;
  const outIndex = emptyIndex();

  if (index?.manifests?.length) {
    for (const d of index.manifests) {
      const name = d.annotations?.[CONTAINERD_NAME] ?? d.annotations?.[REF_NAME];
      outIndex.manifests.push(name ? { ...d, annotations: { ...d.annotations, [REF_NAME]: name } } : d);
      if (name) names.push(name);
    }
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
      const tags = entry.RepoTags?.length ? entry.RepoTags : [undefined];
      for (const tag of tags) {
        outIndex.manifests.push({ mediaType: manifest.mediaType, digest, size: bytes.length, ...(tag ? { annotations: { [REF_NAME]: tag } } : {}) });
        if (tag) names.push(tag);
      }
    }
  } else {
    throw new RegcliError("usage", `${file} is neither a docker-archive nor an oci-archive (no index.json or manifest.json)`);
  }
  await atomicWrite(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await atomicWrite(join(dir, "index.json"), JSON.stringify(outIndex));
  return { layout, names };
}

/** Match a wanted image name against the names in an archive, Docker-style (busybox == docker.io/library/busybox:latest). */
export function matchArchiveName(names: string[], wanted: string): string | undefined {
  if (names.includes(wanted)) return wanted;
  let want: string;
  try {
    want = parseReference(wanted).full;
  } catch {
    return undefined;
  }
  return names.find((n) => {
    try {
      return parseReference(n).full === want;
    } catch {
      return false;
    }
  });
}
