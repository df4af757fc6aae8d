import { createReadStream } from "node:fs";
import { pipeline, Readable } from "node:stream";
import type { OpenBlob } from "../locations/types.js";
import { VerifyingStream, type Descriptor } from "../oci/index.js";

/**
 * A file's bytes as the source of one blob transfer: from the offset a destination resumes at (its bytes before it
 * are verified through `prefixHash` when given), checked against `desc`'s digest and size to the end, so a file
 * changed since it was hashed fails rather than landing under the old digest.
 */
export function fileBlob(path: string, desc: Pick<Descriptor, "digest" | "size">, where = path): OpenBlob {
  return async (options) => {
    const offset = options?.offset ?? 0;
    const stream = createReadStream(path, { start: offset, highWaterMark: 1024 * 1024 });
    return pipeline(stream, new VerifyingStream(desc.digest, desc.size, where, { offset, prefixHash: options?.prefixHash }), () => undefined) as Readable;
  };
}

/** Bytes in memory (a config, an empty blob) as the source of one blob transfer, resumable and verified likewise. */
export function bytesBlob(bytes: Buffer, desc: Pick<Descriptor, "digest" | "size">, where: string): OpenBlob {
  return async (options) => {
    const offset = options?.offset ?? 0;
    return pipeline(Readable.from([bytes.subarray(offset)]), new VerifyingStream(desc.digest, desc.size, where, { offset, prefixHash: options?.prefixHash }), () => undefined) as Readable;
  };
}
