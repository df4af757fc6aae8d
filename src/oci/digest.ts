import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { RegcliError } from "../errors.js";

const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

export function algorithmOf(digest: string): "sha256" | "sha512" {
  const alg = digest.slice(0, digest.indexOf(":"));
  if (alg !== "sha256" && alg !== "sha512") {
    throw new RegcliError("integrity", `unsupported digest algorithm "${alg}"`);
  }
  return alg;
}

export function digestOf(data: Uint8Array | string, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

/**
 * Passes bytes through while hashing and counting them; fails the stream at its end if the digest or the
 * size disagree with what was expected, so a consumer that pipes it into a file or an upload never
 * completes with bad bytes. `where` names the source for the error message.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash | undefined;
  private received: number;

  /**
   * `start` resumes mid-blob: `offset` bytes came before this stream, and `prefixHash` (when given) has already
   * hashed them, so the whole blob is still verified. Without a prefix hash only the size is checked, and the
   * destination (a registry hashes every upload) must verify the digest.
   */
  constructor(
    private readonly expectedDigest: string,
    private readonly expectedSize: number | undefined,
    private readonly where: string,
    start?: { offset: number; prefixHash?: Hash },
  ) {
    super();
    algorithmOf(expectedDigest);
    this.received = start?.offset ?? 0;
    this.hash = start && start.offset > 0 ? start.prefixHash : createHash(algorithmOf(expectedDigest));
  }

  get bytes(): number {
    return this.received;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      callback(
        new RegcliError(
          "integrity",
          `blob ${this.expectedDigest} from ${this.where} is larger than its declared size ${this.expectedSize}`,
        ),
      );
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      callback(
        new RegcliError(
          "integrity",
          `blob ${this.expectedDigest} from ${this.where} was truncated: got ${this.received} of ${this.expectedSize} bytes`,
        ),
      );
      return;
    }
    if (!this.hash) {
      callback();
      return;
    }
    const actual = `${algorithmOf(this.expectedDigest)}:${this.hash.digest("hex")}`;
    if (actual !== this.expectedDigest) {
      callback(
        new RegcliError("integrity", `digest mismatch from ${this.where}: expected ${this.expectedDigest}, got ${actual}`),
      );
      return;
    }
    callback();
  }
}

/** Verify bytes already in memory (manifests). */
export function verifyBytes(data: Uint8Array, expectedDigest: string, where: string): void {
  const actual = digestOf(data, algorithmOf(expectedDigest));
  if (actual !== expectedDigest) {
    throw new RegcliError("integrity", `digest mismatch from ${where}: expected ${expectedDigest}, got ${actual}`);
  }
}
