// Synthetic images built in memory: real gzip tar layers, real configs, Docker and OCI manifests and indexes.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { request } from "undici";
import type { TestRegistry } from "./registry.js";

export interface Blob {
  digest: string;
  size: number;
  data: Buffer;
  mediaType: string;
}
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}
export interface TestImage {
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: Blob;
  layers: Blob[];
  platform?: Platform;
}
export interface TestIndex {
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  images: TestImage[];
}

export const sha256 = (data: Buffer | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Deterministic pseudo-random bytes (sha256 in counter mode), so a seed always gives the same image. */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, i = 0; offset < size; i++) {
    const block = createHash("sha256").update(`${seed}:${i}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

/** An uncompressed tar archive of these files. */
export async function makeTar(files: Array<{ name: string; data?: Buffer | string; type?: "file" | "directory" | "symlink" | "link"; linkname?: string; mode?: number }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const f of files) {
    const header = { name: f.name, mode: f.mode ?? (f.type === "directory" ? 0o755 : 0o644), mtime: new Date(0), type: f.type ?? "file", linkname: f.linkname };
    if ((f.type ?? "file") === "file") pack.entry(header, typeof f.data === "string" ? Buffer.from(f.data) : (f.data ?? Buffer.alloc(0)));
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const DOCKER = {
  manifest: "application/vnd.docker.distribution.manifest.v2+json",
  config: "application/vnd.docker.container.image.v1+json",
  layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  index: "application/vnd.docker.distribution.manifest.list.v2+json",
};
const OCI = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
  index: "application/vnd.oci.image.index.v1+json",
};

function blob(data: Buffer, mediaType: string): Blob {
  return { digest: sha256(data), size: data.length, data, mediaType };
}

export async function makeImage(
  opts: {
    layers?: number;
    layerSize?: number;
    format?: "oci" | "docker";
    platform?: Platform;
    seed?: string;
    labels?: Record<string, string>;
    sharedBase?: Blob;
    /** Layer files of repeated text (gzip shrinks them) instead of random bytes. */
    compressible?: boolean;
    /** The config's created time (ISO 8601); null leaves it out. */
    created?: string | null;
  } = {},
): Promise<TestImage> {
  const types = opts.format === "docker" ? DOCKER : OCI;
  const seed = opts.seed ?? Math.random().toString(36).slice(2);
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const tars: Buffer[] = [];
  const layers: Blob[] = [];
  if (opts.sharedBase) layers.push({ ...opts.sharedBase, mediaType: types.layer });
  for (let i = 0; i < (opts.layers ?? 2); i++) {
    const t = await makeTar([{ name: `layer${i}/`, type: "directory" }, { name: `layer${i}/data.bin`, data: opts.compressible ? Buffer.alloc(opts.layerSize ?? 4096, `${seed} layer ${i}\n`) : seededBytes(`${seed}:${i}`, opts.layerSize ?? 4096) }]);
    tars.push(t);
    layers.push(blob(gzipSync(t, { level: 1 }), types.layer));
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      ...(opts.created === null ? {} : { created: opts.created ?? "2026-01-02T03:04:05Z" }),
      config: { Entrypoint: ["/bin/app"], Cmd: ["--serve"], Env: ["PATH=/usr/bin"], Labels: opts.labels ?? {} },
      rootfs: { type: "layers", diff_ids: tars.map(sha256) },
      history: tars.map((_, i) => ({ created_by: `test layer ${i} (${seed})` })),
    }),
  );
  const configBlob = blob(config, types.config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), mediaType: types.manifest, config: configBlob, layers, platform };
}

export function makeIndex(images: TestImage[], format: "oci" | "docker" = "oci"): TestIndex {
  const types = format === "docker" ? DOCKER : OCI;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: images.map((img) => ({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, platform: img.platform })),
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), mediaType: types.index, images };
}

async function send(reg: TestRegistry, method: "GET" | "HEAD" | "PUT" | "POST", url: string, scope: string, headers: Record<string, string> = {}, body?: Buffer) {
  const auth = await reg.authHeader(scope);
  const res = await request(url, { method, headers: { ...headers, ...(auth ? { authorization: auth } : {}) }, body, dispatcher: reg.dispatcher });
  return res;
}

async function expectStatus(res: Awaited<ReturnType<typeof request>>, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.statusCode)) throw new Error(`${what}: HTTP ${res.statusCode} ${await res.body.text()}`);
  await res.body.dump();
}

export async function pushBlob(reg: TestRegistry, repo: string, b: Pick<Blob, "digest" | "data">): Promise<void> {
  const scope = `repository:${repo}:pull,push`;
  const head = await send(reg, "HEAD", `${reg.url}/v2/${repo}/blobs/${b.digest}`, scope);
  await head.body.dump();
  if (head.statusCode === 200) return;
  const start = await send(reg, "POST", `${reg.url}/v2/${repo}/blobs/uploads/`, scope);
  await expectStatus(start, [202], `start upload ${repo}`);
  const location = new URL(String(start.headers.location), reg.url);
  location.searchParams.set("digest", b.digest);
  const put = await send(reg, "PUT", location.toString(), scope, { "content-type": "application/octet-stream" }, b.data);
  await expectStatus(put, [201], `upload ${b.digest} to ${repo}`);
}

export async function pushManifest(reg: TestRegistry, repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<void> {
  const res = await send(reg, "PUT", `${reg.url}/v2/${repo}/manifests/${ref}`, `repository:${repo}:pull,push`, { "content-type": mediaType }, bytes);
  await expectStatus(res, [201], `put manifest ${repo}:${ref}`);
}

export async function pushImage(reg: TestRegistry, repo: string, tag: string | undefined, image: TestImage): Promise<void> {
  for (const b of [image.config, ...image.layers]) await pushBlob(reg, repo, b);
  await pushManifest(reg, repo, tag ?? image.manifestDigest, image.manifest, image.mediaType);
}

export async function pushIndex(reg: TestRegistry, repo: string, tag: string, index: TestIndex): Promise<void> {
  for (const img of index.images) await pushImage(reg, repo, undefined, img);
  await pushManifest(reg, repo, tag, index.manifest, index.mediaType);
}

export async function fetchManifest(
  reg: TestRegistry,
  repo: string,
  ref: string,
  accept = [OCI.index, DOCKER.index, OCI.manifest, DOCKER.manifest].join(", "),
): Promise<{ status: number; body: Buffer; contentType?: string; digest?: string }> {
  const res = await send(reg, "GET", `${reg.url}/v2/${repo}/manifests/${ref}`, `repository:${repo}:pull`, { accept });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, body, contentType: h("content-type"), digest: h("docker-content-digest") };
}

/**
 * An OCI 1.1 artifact manifest referring to `subject` (a signature, an SBOM): the empty config, one layer of
 * `payload`, `artifactType` and annotations; push it with pushImage (by digest). The referrers tag schema index
 * entry for it is `descriptor`.
 */
export function makeReferrer(
  subject: { digest: string; size: number; mediaType: string },
  opts: { artifactType: string; payload?: string; annotations?: Record<string, string> },
): TestImage & { descriptor: Record<string, unknown> } {
  const config = blob(Buffer.from("{}"), "application/vnd.oci.empty.v1+json");
  const layer = blob(Buffer.from(opts.payload ?? `${opts.artifactType} of ${subject.digest}`), "application/octet-stream");
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI.manifest,
      artifactType: opts.artifactType,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      ...(opts.annotations && { annotations: opts.annotations }),
    }),
  );
  const digest = sha256(manifest);
  return {
    manifest,
    manifestDigest: digest,
    mediaType: OCI.manifest,
    config,
    layers: [layer],
    descriptor: { mediaType: OCI.manifest, digest, size: manifest.length, artifactType: opts.artifactType, ...(opts.annotations && { annotations: opts.annotations }) },
  };
}

/** The subject side of makeReferrer for an image or index. */
export const subjectOf = (m: { manifestDigest: string; manifest: Buffer; mediaType: string }) => ({ digest: m.manifestDigest, size: m.manifest.length, mediaType: m.mediaType });
