import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { outputFileError } from "../errors.js";
import type { LocationSpec } from "../locations/parse.js";
import type { OpenBlob } from "../locations/types.js";
import { exportToTar, type LayerInput } from "../oci/flatten.js";
import { VerifyingStream, type Descriptor, type LayerCompression, type Platform } from "../oci/index.js";
import { layerMediaType, type ConfigDocument, type Family } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";
import { rewriteImage, type RewriteOptions, type RewriteResult } from "./rewrite.js";

export interface FlattenImageOptions extends Pick<RewriteOptions, "jobs" | "onEvent" | "byteProgress"> {
  /** How the one layer is compressed (default gzip). */
  compression?: Exclude<LayerCompression, "zstd">;
  platforms?: Platform[];
  annotations?: Record<string, string>;
}

/** A layer written to a file: its descriptor (compressed digest and size) and its diff_id, both hashed as it streamed. */
export interface WrittenLayer {
  descriptor: Descriptor;
  diffId: string;
  open: OpenBlob;
}

/** A pass-through that hashes (sha256) and counts what flows through it. */
function hashing(): Transform & { digest(): string; bytes: number } {
  const hash = createHash("sha256");
  const stream = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      hash.update(chunk);
      stream.bytes += chunk.length;
      callback(null, chunk);
    },
  }) as Transform & { digest(): string; bytes: number };
  stream.bytes = 0;
  stream.digest = () => `sha256:${hash.digest("hex")}`;
  return stream;
}

/**
 * The flattened filesystem of `layers` (whiteouts applied, as `export` writes it) as one layer in `file`: the tar
 * and its compressed form hashed in the same pass, nothing held in memory.
 */
export async function writeFlatLayer(layers: LayerInput[], file: string, family: Family, compression: Exclude<LayerCompression, "zstd">): Promise<WrittenLayer> {
  const tar = hashing();
  const stored = hashing();
  const sink = createWriteStream(file, { mode: 0o600 });
  const written = compression === "gzip" ? pipeline(tar, createGzip(), stored, sink) : pipeline(tar, stored, sink);
  written.catch(() => undefined);
  try {
    await Promise.all([exportToTar(layers, tar, { preservePermissions: true, devices: true }), written]);
  } catch (err) {
    throw outputFileError(err, file) ?? err;
  }
  const descriptor: Descriptor = { mediaType: layerMediaType(family, compression), digest: stored.digest(), size: stored.bytes };
  const open: OpenBlob = async (options) => {
    const offset = options?.offset ?? 0;
    const check = new VerifyingStream(descriptor.digest, descriptor.size, "the flattened layer", { offset, prefixHash: options?.prefixHash });
    const out = new PassThrough();
    pipeline(createReadStream(file, { start: offset }), check, out).catch((err: Error) => out.destroy(err));
    return out;
  };
  return { descriptor, diffId: tar.digest(), open };
}

/** The config of the flattened image: one diff_id, one history entry; the rest (entrypoint, env, created) as it was. */
function flatConfig(config: ConfigDocument, diffId: string, from: string, layerCount: number): ConfigDocument {
  const out = structuredClone(config);
  out.rootfs = { type: "layers", diff_ids: [diffId] };
  out.history = [{ ...(config.created ? { created: config.created } : {}), created_by: `regcli flatten ${from}`, comment: `${layerCount} layer${layerCount === 1 ? "" : "s"} flattened into one` }];
  return out;
}

/**
 * `regcli flatten`: each image (each selected platform's of an index) becomes one with a single layer, its
 * filesystem with whiteouts applied. The same image gives the same digest every time (the tar keeps each entry's
 * owner, mode and time, and the config's created time is kept).
 */
export async function flattenImage(ctx: RegistryContext, source: LocationSpec, target: LocationSpec, options: FlattenImageOptions = {}): Promise<RewriteResult> {
  const dir = await mkdtemp(join(tmpdir(), "regcli-flatten-"));
  let count = 0;
  try {
    return await rewriteImage(ctx, source, target, {
      ...options,
      edit: async (image) => {
        if (image.manifest.parsed.kind !== "image") throw new Error("not an image");
        const layers = image.manifest.parsed.manifest.layers;
        const inputs: LayerInput[] = layers.map((desc) => ({ digest: desc.digest, mediaType: desc.mediaType, open: () => image.source.openBlob(desc) }));
        const layer = await writeFlatLayer(inputs, join(dir, `layer-${count++}`), image.family, options.compression ?? "gzip");
        return { config: flatConfig(image.config, layer.diffId, image.manifest.digest, layers.length), layers: [layer.descriptor], blobs: [{ descriptor: layer.descriptor, open: layer.open }] };
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
