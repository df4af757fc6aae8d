import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { localFileError, RegcliError } from "../errors.js";
import type { LocationSpec } from "../locations/parse.js";
import type { OpenBlob } from "../locations/types.js";
import { compressor, decompressor, detectCompression } from "../oci/compress.js";
import { HashingStream, type Descriptor, type LayerCompression } from "../oci/index.js";
import { appendToConfig, familyLayerType } from "../oci/mutate.js";
import { packDirectory, type PackOptions } from "../oci/pack.js";
import { fileBlob } from "./blob-readers.js";
import type { RegistryContext } from "../registry/context.js";
import { limiter } from "../util/limit.js";
import { rewriteImage, type RewriteOptions, type RewriteResult } from "./rewrite.js";

/**
 * gzip level of new layers. Measured on a 256 MiB tree (docs/benchmarks.md, build): level 1 packs, hashes and
 * compresses faster than `tar | gzip` (level 6) with layers a little larger.
 */
export const GZIP_LEVEL = 1;

/** A layer made ready to upload: its blob file (the input itself, or a temp file), digests and compression. */
export interface PreparedLayer {
  input: string;
  kind: "directory" | "tar";
  file: string;
  digest: string;
  size: number;
  diffId: string;
  compression: LayerCompression;
}

/** What a file starts with: gzip, zstd, or (anything else) a plain tar. */
async function sniff(path: string): Promise<LayerCompression> {
  const handle = await open(path, "r");
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return detectCompression(buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/**
 * One --layer: a directory is packed (see packDirectory), a tar or tar.gz read as it is. The uncompressed digest
 * (diff_id) and the blob's digest are computed in the same single pass that compresses; a file already compressed
 * as asked is uploaded as it is, anything else is written once to a temp file in `temp`.
 */
export async function prepareLayer(input: string, temp: string, compression: LayerCompression, pack: PackOptions): Promise<PreparedLayer> {
  const info = await stat(input).catch((err) => {
    throw localFileError(err, input, "read") ?? err;
  });
  if (!info.isDirectory() && !info.isFile()) throw new RegcliError("usage", `--layer ${input}: give a directory, a tar or a tar.gz`);
  const kind = info.isDirectory() ? "directory" : "tar";
  const given = kind === "tar" ? await sniff(input) : "none";
  const uncompressed = new HashingStream();
  const compressed = new HashingStream();
  try {
    if (kind === "tar" && given === compression) {
      // The file is the blob: hash it, and its decompressed bytes, in one read.
      const raw = createReadStream(input, { highWaterMark: 256 * 1024 });
      await pipeline([raw, compressed, await decompressor(given), uncompressed, new Writable({ write: (_chunk, _enc, done) => done() })]);
      return { input, kind, file: input, digest: compressed.digest(), size: compressed.bytes, diffId: uncompressed.digest(), compression };
    }
    const file = join(temp, `layer-${Math.random().toString(36).slice(2)}`);
    const source: Readable = kind === "directory" ? packDirectory(input, pack) : createReadStream(input, { highWaterMark: 256 * 1024 });
    const level = compression === "gzip" ? GZIP_LEVEL : undefined;
    await pipeline([source, await decompressor(given), uncompressed, await compressor(compression, level), compressed, createWriteStream(file, { flags: "wx", highWaterMark: 256 * 1024 })]);
    return { input, kind, file, digest: compressed.digest(), size: compressed.bytes, diffId: uncompressed.digest(), compression };
  } catch (err) {
    if (err instanceof RegcliError) throw err;
    if ((err as { code?: string }).code === "Z_DATA_ERROR") throw new RegcliError("usage", `--layer ${input}: not a valid ${given} stream`);
    throw localFileError(err, (err as { path?: string }).path ?? input, "read") ?? err;
  }
}

/** A prepared layer's blob, verified as it is read (a file changed since it was hashed fails), from `offset` when resumed. */
export function openLayer(layer: Pick<PreparedLayer, "input" | "file" | "digest" | "size">): OpenBlob {
  return fileBlob(layer.file, layer, layer.input);
}

export interface AppendOptions extends Pick<RewriteOptions, "jobs" | "onEvent" | "byteProgress" | "platforms"> {
  /** Directories, tars or tar.gz files, in order: each becomes one layer. */
  layers: string[];
  compress?: LayerCompression;
  pack?: PackOptions;
  /** The new configs' created time (RFC 3339). */
  created: string;
}

export interface AppendResult extends RewriteResult {
  layers: Array<{ input: string; digest: string; size: number; diffId: string }>;
}

/**
 * Append layers to an image (each selected platform of an index gets the same layers, uploaded once): each
 * layer's diff_id and one history entry are added to the config, the media types follow the base's family.
 */
export async function appendLayers(ctx: RegistryContext, source: LocationSpec, target: LocationSpec, options: AppendOptions): Promise<AppendResult> {
  if (!options.layers.length) throw new RegcliError("usage", "append needs at least one --layer");
  const temp = await mkdtemp(join(tmpdir(), "regcli-append-"));
  try {
    const limit = limiter(2);
    // Packed once the base is found (a mistyped base fails at once, not after packing), once for every image.
    let packing: Promise<PreparedLayer[]> | undefined;
    const pack = () => (packing ??= Promise.all(options.layers.map((input) => limit(() => prepareLayer(input, temp, options.compress ?? "gzip", options.pack ?? {})))));
    const result = await rewriteImage(ctx, source, target, {
      ...options,
      edit: async (image) => {
        if (image.manifest.parsed.kind !== "image") throw new RegcliError("general", "not an image manifest");
        const prepared = await pack();
        const added: Descriptor[] = prepared.map((l) => ({ mediaType: familyLayerType(image.family, l.compression), digest: l.digest, size: l.size }));
        return {
          config: appendToConfig(image.config, prepared.map((l) => ({ diffId: l.diffId, createdBy: "regcli append", comment: `layer from a ${l.kind}` })), options.created),
          layers: [...image.manifest.parsed.manifest.layers, ...added],
          blobs: added.map((descriptor, i) => ({ descriptor, open: openLayer(prepared[i]!) })),
        };
      },
    });
    const prepared = await pack();
    return { ...result, layers: prepared.map((l) => ({ input: l.input, digest: l.digest, size: l.size, diffId: l.diffId })) };
  } finally {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
  }
}
