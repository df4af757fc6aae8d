// Layer compression: streaming gzip, zstd and none, recognised by magic bytes, named by media types.
//
// zstd: Node 20's zlib has none. zstd-codec is libzstd built to WebAssembly with the module inlined in one JS file,
// so it lives inside dist/regcli.cjs and the SEA binary and installs without a compiler or a download; it loads
// only when a zstd stream is made. Why this library and not a native one: docs/compression.md (measured).
import { PassThrough, Transform, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { zlib } from "../util/builtins.js";
import { MediaType, type LayerCompression } from "./media-types.js";

export type { LayerCompression } from "./media-types.js";

export const COMPRESSIONS: readonly LayerCompression[] = ["gzip", "zstd", "none"];
const DEFAULT_LEVEL: Record<LayerCompression, number> = { gzip: 6, zstd: 3, none: 0 };

/** `--compress gzip|zstd|none` as given on a command line. */
export function parseCompression(text: string): LayerCompression {
  if ((COMPRESSIONS as readonly string[]).includes(text)) return text as LayerCompression;
  throw new RegcliError("usage", `unknown compression "${text}": use gzip, zstd or none`);
}

/** What the first bytes of a layer are: gzip (1f 8b), zstd (28 b5 2f fd), else a plain tar. */
export function detectCompression(head: Uint8Array): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/**
 * The media type of a filesystem layer with this compression. Docker's schema 2 names only gzip layers (and
 * plain tars): a zstd layer exists only under OCI media types, so an image with one is an OCI image.
 */
export function layerMediaType(compression: LayerCompression, docker = false): string {
  if (docker && compression === "gzip") return MediaType.DockerLayerGzip;
  return compression === "gzip" ? MediaType.OciLayerGzip : compression === "zstd" ? MediaType.OciLayerZstd : MediaType.OciLayer;
}

/** A stream that compresses what is written to it (level: gzip 1-9, default 6; zstd 1-19, default 3). */
export async function compressor(kind: LayerCompression, level = DEFAULT_LEVEL[kind]): Promise<Transform> {
  if (kind === "none") return new PassThrough();
  if (kind === "gzip") return zlib().createGzip({ level });
  const { ZstdCompressStreamBinding } = (await zstdInstance()).module;
  return zstdCodecStream(new ZstdCompressStreamBinding(), level);
}

/** A stream that decompresses what is written to it; corrupt input fails it with code Z_DATA_ERROR. */
export async function decompressor(kind: LayerCompression): Promise<Transform> {
  if (kind === "none") return new PassThrough();
  if (kind === "gzip") return zlib().createGunzip();
  const { ZstdDecompressStreamBinding } = (await zstdInstance()).module;
  return zstdCodecStream(new ZstdDecompressStreamBinding());
}

/**
 * The uncompressed bytes of a layer stream, whatever its media type claims: the first bytes say gzip, zstd or
 * plain. Errors of `raw` reach the returned stream.
 */
export async function decompressed(raw: Readable): Promise<{ stream: Readable; compression: LayerCompression }> {
  const head = await firstChunk(raw);
  const compression = detectCompression(head);
  const out = await decompressor(compression);
  raw.on("error", (err) => out.destroy(err));
  out.write(head);
  raw.pipe(out);
  return { stream: out, compression };
}

/** The first chunk of a stream (empty at its end), read without losing it: the caller writes it on. */
function firstChunk(raw: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = raw.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      raw.off("readable", onReadable);
      raw.off("end", onEnd);
      raw.off("error", onError);
    };
    raw.on("readable", onReadable);
    raw.on("end", onEnd);
    raw.on("error", onError);
  });
}

interface ZstdBinding {
  begin(level?: number): boolean;
  transform(chunk: Uint8Array, out: (bytes: Uint8Array) => void): boolean;
  end(out: (bytes: Uint8Array) => void): boolean;
  delete(): void;
}
interface ZstdCodec {
  ZstdCompressStreamBinding: new () => ZstdBinding;
  ZstdDecompressStreamBinding: new () => ZstdBinding;
}

/**
 * A new instance of libzstd for each stream: zstd-codec's WebAssembly heap is fixed at 16 MiB (declared in the
 * module), room for one context, not for several layers at once. An instance costs ~3 ms; its heap goes with it.
 * The Emscripten module is a thenable: a promise resolved with it would wait on it forever, so it stays wrapped.
 */
async function zstdInstance(): Promise<{ module: ZstdCodec }> {
  const { default: instantiate } = await import("zstd-codec/lib/zstd-codec-binding-wasm.js");
  return new Promise((resolve) => {
    // Its own messages ("OOM") would land on stderr, which carries only regcli's (JSON lines with --progress json).
    const module: Record<string, unknown> = { print: () => undefined, printErr: () => undefined };
    module.onRuntimeInitialized = () => resolve({ module: module as unknown as ZstdCodec });
    instantiate(module);
  });
}

/** One zstd stream (its own libzstd context, freed at the end or on destroy), compressing when `level` is given. */
function zstdCodecStream(binding: ZstdBinding, level?: number): Transform {
  let freed = false;
  const free = () => {
    if (!freed) {
      freed = true;
      try {
        binding.delete();
      } catch {
        // an aborted instance: its heap goes with it
      }
    }
  };
  const corrupt = () => Object.assign(new Error("zstd: invalid or corrupt data"), { code: "Z_DATA_ERROR" });
  // libzstd aborts when its heap is full (compression above level 5, a frame whose window is over ~8 MiB as
  // `zstd --long` makes): the instance is dead, the stream fails.
  const tooBig = () => new RegcliError("unsupported", `zstd ${level === undefined ? "data whose window needs" : `level ${level} needs`} more memory than regcli's zstd has (16 MiB)`, { hint: level === undefined ? undefined : "use a level from 1 to 5" });
  const call = (step: () => boolean, callback: (err?: Error | null) => void) => {
    let ok: boolean;
    try {
      ok = step();
    } catch {
      free();
      callback(tooBig());
      return;
    }
    callback(ok ? null : corrupt());
  };
  let started = false;
  try {
    started = level === undefined ? binding.begin() : binding.begin(level);
  } catch {
    // below
  }
  if (!started) {
    free();
    throw tooBig();
  }
  const stream: Transform = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      call(() => binding.transform(chunk, push), callback);
    },
    flush(callback) {
      call(() => {
        const ok = binding.end(push);
        free();
        return ok;
      }, callback);
    },
    destroy(err, callback) {
      free();
      callback(err);
    },
  });
  // libzstd's output lives in the WebAssembly heap until the next call: copied out at once.
  const push = (bytes: Uint8Array) => {
    stream.push(Buffer.from(bytes));
  };
  return stream;
}
