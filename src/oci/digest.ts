import type { Hash } from "node:crypto";
import { crypto } from "../util/builtins.js";
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

/** A pass-through that hashes (sha256) and counts what goes by: a blob's digest and size in the pass that moves it. */
export class HashingStream extends Transform {
  readonly hash: Hash = crypto().createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${crypto().createHash(algorithm).update(data).digest("hex")}`;
}

/**
 * The running check of one blob's bytes: its size never above the expected one, and at the end its size and digest
 * exactly the expected ones. `start` resumes mid-blob: `offset` bytes came before, and `prefixHash` (when given) has
 * already hashed them, so the whole blob is still verified. Without a prefix hash only the size is checked, and the
 * destination (a registry hashes every upload) must verify the digest. `where` names the source for the error message.
 */
export class BlobCheck {
  private readonly hash: Hash | undefined;
  private received: number;

  constructor(
    private readonly expectedDigest: string,
    private readonly expectedSize: number | undefined,
    private readonly where: string,
    start?: { offset: number; prefixHash?: Hash },
  ) {
    algorithmOf(expectedDigest);
    this.received = start?.offset ?? 0;
    this.hash = start && start.offset > 0 ? start.prefixHash : crypto().createHash(algorithmOf(expectedDigest));
  }

  get bytes(): number {
    return this.received;
  }

  /** Take the next chunk; an error when the blob has grown past its declared size. */
  update(chunk: Buffer): RegcliError | undefined {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      return new RegcliError("integrity", `blob ${this.expectedDigest} from ${this.where} is larger than its declared size ${this.expectedSize}`);
    }
    this.hash?.update(chunk);
    return undefined;
  }

  /** After the last chunk: an error when the size or the digest is not the expected one. */
  finish(): RegcliError | undefined {
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      return new RegcliError("integrity", `blob ${this.expectedDigest} from ${this.where} was truncated: got ${this.received} of ${this.expectedSize} bytes`);
    }
    if (!this.hash) return undefined;
    const actual = `${algorithmOf(this.expectedDigest)}:${this.hash.digest("hex")}`;
    if (actual !== this.expectedDigest) {
      return new RegcliError("integrity", `digest mismatch from ${this.where}: expected ${this.expectedDigest}, got ${actual}`);
    }
    return undefined;
  }
}

/**
 * A pass-through stream that applies a BlobCheck: it fails instead of ending when the bytes' size or digest disagree
 * with what was expected, so a consumer that pipes it into a file or an upload never completes with bad bytes.
 */
export class VerifyingStream extends Transform {
  private readonly check: BlobCheck;

  constructor(expectedDigest: string, expectedSize: number | undefined, where: string, start?: { offset: number; prefixHash?: Hash }) {
    super();
    this.check = new BlobCheck(expectedDigest, expectedSize, where, start);
  }

  get bytes(): number {
    return this.check.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const failure = this.check.update(chunk);
    if (failure) callback(failure);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.check.finish());
  }
}

/** Verify bytes already in memory (manifests). */
export function verifyBytes(data: Uint8Array, expectedDigest: string, where: string): void {
  const actual = digestOf(data, algorithmOf(expectedDigest));
  if (actual !== expectedDigest) {
    throw new RegcliError("integrity", `digest mismatch from ${where}: expected ${expectedDigest}, got ${actual}`);
  }
}
