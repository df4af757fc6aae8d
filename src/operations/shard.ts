import { createHash } from "node:crypto";
import { RegcliError } from "../errors.js";

/** One worker's share of a sync: INDEX of COUNT (0-based, as a Kubernetes Indexed Job numbers its pods). */
export interface Shard {
  index: number;
  count: number;
}

/** A repository with more tags than this is shared out tag by tag, so one big repository spreads over the workers. */
export const TAG_SHARD_THRESHOLD = 50;

const MASK64 = (1n << 64n) - 1n;

/**
 * The bucket (0..count-1) of a key: the first 8 bytes of its sha256 as an integer, through jump consistent hashing
 * (Lamping & Veach) rather than a plain modulo, so going from N to N+1 workers moves only 1/(N+1) of the work.
 * The same on every machine and every run.
 */
export function bucketOf(key: string, count: number): number {
  let k = createHash("sha256").update(key).digest().readBigUInt64BE(0);
  let b = -1;
  let j = 0;
  while (j < count) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK64;
    j = Math.floor((b + 1) * (2 ** 31 / (Number(k >> 33n) + 1)));
  }
  return b;
}

/**
 * Which images of a repository are this shard's, given how many tags its source lists: the whole repository by the
 * hash of its name, or, with more than `threshold` tags, each tag by the hash of repository and tag. The returned
 * test answers for the repository (no tag: could any of its images be ours?) and for each tag.
 */
export function shareOf(shard: Shard | undefined, repository: string, listedTags: number, threshold = TAG_SHARD_THRESHOLD): (tag?: string) => boolean {
  if (!shard) return () => true;
  if (listedTags > threshold) return (tag) => tag === undefined || bucketOf(`${repository}:${tag}`, shard.count) === shard.index;
  const mine = bucketOf(repository, shard.count) === shard.index;
  return () => mine;
}

const COUNT = /^[1-9][0-9]{0,5}$/;
const INDEX = /^(0|[1-9][0-9]{0,5})$/;

/**
 * The shard from `--shard INDEX/COUNT`, or from `--shards COUNT` with the index in JOB_COMPLETION_INDEX (set in each
 * pod of a Kubernetes Indexed Job); undefined: the whole job.
 */
export function parseShard(flags: { shard?: string; shards?: string }, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (flags.shard !== undefined && flags.shards !== undefined) {
    throw new RegcliError("usage", "give either --shard INDEX/COUNT or --shards COUNT (index from JOB_COMPLETION_INDEX), not both");
  }
  if (flags.shard !== undefined) {
    const [index, count, ...rest] = flags.shard.split("/");
    if (rest.length === 0 && index !== undefined && count !== undefined && INDEX.test(index) && COUNT.test(count) && Number(index) < Number(count)) {
      return { index: Number(index), count: Number(count) };
    }
    throw new RegcliError("usage", `--shard must be INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4; got "${flags.shard}"`);
  }
  if (flags.shards === undefined) return undefined;
  if (!COUNT.test(flags.shards)) throw new RegcliError("usage", `--shards must be a positive integer, got "${flags.shards}"`);
  const count = Number(flags.shards);
  const from = env.JOB_COMPLETION_INDEX;
  if (from === undefined || from === "") {
    throw new RegcliError("usage", "--shards needs JOB_COMPLETION_INDEX in the environment (a Kubernetes Indexed Job sets it)", { hint: "elsewhere give --shard INDEX/COUNT" });
  }
  if (!INDEX.test(from) || Number(from) >= count) {
    throw new RegcliError("usage", `JOB_COMPLETION_INDEX must be an integer from 0 to ${count - 1} for --shards ${count}, got "${from}"`);
  }
  return { index: Number(from), count };
}
