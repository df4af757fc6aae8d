import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { outputFileError } from "../errors.js";
import type { LocationSpec } from "../locations/parse.js";
import type { OpenBlob } from "../locations/types.js";
import { exportToTar, type LayerInput } from "../oci/flatten.js";
import { HashingStream, type Descriptor, type LayerCompression, type Platform } from "../oci/index.js";
import { compressor } from "../oci/compress.js";
import { familyLayerType, type ConfigDocument, type Family } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";
import { GZIP_LEVEL, openLayer } from "./append.js";
import { rewriteImage, type RewriteOptions, type RewriteResult } from "./rewrite.js";

export interface FlattenImageOptions extends Pick<RewriteOptions, "jobs" | "onEvent" | "byteProgress"> {
  /** How the one layer is compressed (default gzip; zstd: OCI images only). */
  compression?: LayerCompression;
  platforms?: Platform[];
  annotations?: Record<string, string>;
}

/**
 * The flattened filesystem of `layers` (whiteouts applied, as `export` writes it) as one layer in `file`: the tar
 * and its compressed form hashed in the same pass (as append writes its layers), nothing held in memory.
 */
async function writeFlatLayer(layers: LayerInput[], file: string, family: Family, compression: LayerCompression): Promise<{ descriptor: Descriptor; diffId: string; open: OpenBlob }> {
  const mediaType = familyLayerType(family, compression); // refused (a Docker image has no zstd layer) before any work
  const tar = new HashingStream();
  const stored = new HashingStream();
  const written = pipeline([tar, await compressor(compression, compression === "gzip" ? GZIP_LEVEL : undefined), stored, createWriteStream(file, { flags: "wx", mode: 0o600, highWaterMark: 256 * 1024 })]);
  written.catch(() => undefined);
  try {
    await Promise.all([exportToTar(layers, tar, { preservePermissions: true, devices: true }), written]);
  } catch (err) {
    throw outputFileError(err, file) ?? err;
  }
  const descriptor: Descriptor = { mediaType, digest: stored.digest(), size: stored.bytes };
  return { descriptor, diffId: tar.digest(), open: openLayer({ input: "the flattened layer", file, digest: descriptor.digest, size: descriptor.size }) };
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
