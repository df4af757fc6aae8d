// Layer compression: streaming gzip, zstd and none, recognised by magic bytes, named by media types.
//
// zstd: Node 20's zlib has none. Compression: zstd-codec, libzstd built to WebAssembly with the module inlined in
// one JS file. Decompression: fzstd, in plain JavaScript, which has no heap limit (zstd-codec's 16 MiB cannot hold
// the 32 MiB window of podman's zstd:chunked layers) and reports a stream cut short. Both live inside
// dist/regcli.cjs and the SEA binary, install without a compiler or a download, and load only when a zstd stream is
// made. Why these and not a native binding: docs/compression.md (measured).
import { PassThrough, Transform, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { zlib } from "../util/builtins.js";
import { MediaType, type LayerCompression } from "./media-types.js";

export type { LayerCompression } from "./media-types.js";

const DEFAULT_LEVEL: Record<LayerCompression, number> = { gzip: 6, zstd: 3, none: 0 };

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

/** A stream that compresses what is written to it (level: gzip 1-9, default 6; zstd 1-5, default 3). */
export async function compressor(kind: LayerCompression, level = DEFAULT_LEVEL[kind]): Promise<Transform> {
  if (kind === "none") return new PassThrough();
  if (kind === "gzip") return zlib().createGzip({ level });
  const { ZstdCompressStreamBinding } = (await zstdInstance()).module;
  return zstdCodecStream(new ZstdCompressStreamBinding(), level);
}

/** A stream that decompresses what is written to it; corrupt or cut-short input fails it with code Z_DATA_ERROR. */
export async function decompressor(kind: LayerCompression): Promise<Transform> {
  if (kind === "none") return new PassThrough();
  if (kind === "gzip") return zlib().createGunzip();
  const { Decompress } = await import("fzstd");
  const corrupt = (err: unknown) => Object.assign(new Error(`zstd: ${(err as Error).message}`), { code: "Z_DATA_ERROR" });
  const stream: Transform = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      try {
        zstd.push(chunk);
        callback();
      } catch (err) {
        callback(corrupt(err));
      }
    },
    flush(callback) {
      try {
        zstd.push(new Uint8Array(0), true);
        callback();
      } catch (err) {
        callback(corrupt(err));
      }
    },
  });
  // Its output may be a view of the window it keeps decoding into: copied out at once.
  const zstd = new Decompress((bytes) => stream.push(Buffer.from(bytes)));
  return stream;
}

/**
 * The uncompressed bytes of a layer stream, whatever its media type claims: the first bytes say gzip, zstd or
 * plain. Errors of `raw` reach the returned stream, and destroying it destroys `raw`.
 */
export async function decompressed(raw: Readable): Promise<{ stream: Readable; compression: LayerCompression }> {
  const head = await firstChunk(raw);
  const compression = detectCompression(head);
  const out = await decompressor(compression);
  raw.on("error", (err) => out.destroy(err));
  // The other way too: a reader that stops (a failed tar, a full disk) ends the download or the file read.
  out.once("close", () => raw.destroy());
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
}

/**
 * A new instance of libzstd for each stream: zstd-codec's WebAssembly heap is fixed at 16 MiB (declared in the
 * module), room for one level-3 context, not for several layers at once. An instance costs ~3 ms; its heap goes with it.
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

/** One zstd compression stream at `level`, its own libzstd context freed at the end or on destroy. */
function zstdCodecStream(binding: ZstdBinding, level: number): Transform {
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
  // libzstd aborts (throws) when its 16 MiB heap is full, as from level 6 on: the instance is dead.
  const tooBig = () => new RegcliError("unsupported", `zstd level ${level} needs more memory than regcli's zstd compressor has (16 MiB)`, { hint: "use a level from 1 to 5" });
  const call = (step: () => boolean, callback: (err?: Error | null) => void) => {
    let ok: boolean;
    try {
      ok = step();
    } catch {
      free();
      callback(tooBig());
      return;
    }
    callback(ok ? null : new Error("zstd: compression failed"));
  };
  let started = false;
  try {
    started = binding.begin(level);
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
