import { describe, expect, it } from "vitest";
import { RegcliError } from "../../src/errors.js";
import { bucketOf, parseShard, shareOf, TAG_SHARD_THRESHOLD } from "../../src/operations/shard.js";

/** Repositories with their tags: most small, a few above the threshold. */
const job: Array<{ repository: string; tags: string[] }> = Array.from({ length: 60 }, (_, r) => ({
  repository: `registry.example:5000/team-${r % 7}/app-${r}`,
  tags: Array.from({ length: r % 15 === 0 ? TAG_SHARD_THRESHOLD + 1 + r : (r % 5) + 1 }, (_, t) => `1.${t}`),
}));

/** The images (repository:tag) each of `count` shards takes. */
function shares(count: number): string[][] {
  return Array.from({ length: count }, (_, index) =>
    job.flatMap(({ repository, tags }) => {
      const mine = shareOf({ index, count }, repository, tags.length);
      return mine() ? tags.filter((t) => mine(t)).map((t) => `${repository}:${t}`) : [];
    }),
  );
}

describe("sharding a sync", () => {
  it("every image lands in exactly one shard, for 1 to 8 shards", () => {
    const all = job.flatMap(({ repository, tags }) => tags.map((t) => `${repository}:${t}`)).sort();
    for (let count = 1; count <= 8; count++) {
      const taken = shares(count).flat().sort();
      expect(taken, `${count} shards`).toEqual(all);
    }
  });

  it("a repository above the threshold is spread over the shards by tag; one at or below it stays whole", () => {
    const big = job.find((r) => r.tags.length > TAG_SHARD_THRESHOLD)!;
    const owners = new Set(big.tags.map((t) => shares(4).findIndex((s) => s.includes(`${big.repository}:${t}`))));
    expect(owners.size).toBe(4);
    for (const small of job.filter((r) => r.tags.length <= TAG_SHARD_THRESHOLD)) {
      const holders = shares(4).filter((s) => s.some((i) => i.startsWith(`${small.repository}:`)));
      expect(holders).toHaveLength(1);
    }
    // The threshold itself: exactly 50 tags is one shard's.
    const at = Array.from({ length: TAG_SHARD_THRESHOLD }, (_, t) => `t${t}`);
    const holders = [0, 1, 2].filter((index) => at.some((t) => shareOf({ index, count: 3 }, "r/at", at.length)(t)) && shareOf({ index, count: 3 }, "r/at", at.length)());
    expect(holders).toHaveLength(1);
  });

  it("is roughly even", () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `docker.io/library/image-${i}`);
    for (let count = 2; count <= 8; count++) {
      const sizes = new Array<number>(count).fill(0);
      for (const key of keys) sizes[bucketOf(key, count)]!++;
      const mean = keys.length / count;
      for (const size of sizes) expect(Math.abs(size - mean) / mean, `${count} shards: ${sizes.join(" ")}`).toBeLessThan(0.15);
    }
  });

  it("is stable across runs and machines (sha256, not a process-seeded hash): these buckets must never change", () => {
    // Computed independently (Python: int.from_bytes(sha256(key)[:8], "big") through jump consistent hashing).
    const golden: Record<string, number[]> = {
      "docker.io/library/alpine": [0, 1, 1, 1, 1, 1, 43],
      "docker.io/library/busybox": [0, 0, 0, 0, 0, 0, 97],
      "quay.io/prometheus/node-exporter": [0, 0, 0, 0, 0, 0, 47],
      "localhost:5000/team/a:1.0": [0, 1, 1, 1, 1, 1, 54],
    };
    for (const [key, buckets] of Object.entries(golden)) expect([1, 2, 3, 4, 5, 8, 100].map((n) => bucketOf(key, n)), key).toEqual(buckets);
  });

  it("adding a worker moves only about 1/(N+1) of the repositories", () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `quay.io/org/repo-${i}`);
    const moved = keys.filter((k) => bucketOf(k, 4) !== bucketOf(k, 5)).length / keys.length;
    expect(moved).toBeGreaterThan(0.15);
    expect(moved).toBeLessThan(0.25);
    // And what moves goes to the new worker only.
    expect(keys.every((k) => bucketOf(k, 4) === bucketOf(k, 5) || bucketOf(k, 5) === 4)).toBe(true);
  });
});

describe("--shard and --shards", () => {
  it("--shard INDEX/COUNT; --shards COUNT with JOB_COMPLETION_INDEX; neither: the whole job", () => {
    expect(parseShard({ shard: "0/1" }, {})).toEqual({ index: 0, count: 1 });
    expect(parseShard({ shard: "2/3" }, { JOB_COMPLETION_INDEX: "0" })).toEqual({ index: 2, count: 3 });
    expect(parseShard({ shards: "3" }, { JOB_COMPLETION_INDEX: "1" })).toEqual({ index: 1, count: 3 });
    expect(parseShard({}, { JOB_COMPLETION_INDEX: "1" })).toBeUndefined();
  });

  it.each([
    [{ shard: "3/2" }, {}, /--shard must be INDEX\/COUNT .* got "3\/2"/],
    [{ shard: "2/2" }, {}, /got "2\/2"/],
    [{ shard: "0/0" }, {}, /got "0\/0"/],
    [{ shard: "-1/2" }, {}, /got "-1\/2"/],
    [{ shard: "x" }, {}, /got "x"/],
    [{ shard: "1/2/3" }, {}, /got "1\/2\/3"/],
    [{ shard: "1.5/3" }, {}, /got "1.5\/3"/],
    [{ shard: " 1/3" }, {}, /got " 1\/3"/],
    [{ shard: "" }, {}, /got ""/],
    [{ shards: "0" }, { JOB_COMPLETION_INDEX: "0" }, /--shards must be a positive integer, got "0"/],
    [{ shards: "x" }, { JOB_COMPLETION_INDEX: "0" }, /got "x"/],
    [{ shards: "3" }, {}, /--shards needs JOB_COMPLETION_INDEX/],
    [{ shards: "3" }, { JOB_COMPLETION_INDEX: "3" }, /JOB_COMPLETION_INDEX must be an integer from 0 to 2 for --shards 3, got "3"/],
    [{ shards: "3" }, { JOB_COMPLETION_INDEX: "-1" }, /got "-1"/],
    [{ shard: "0/3", shards: "3" }, { JOB_COMPLETION_INDEX: "0" }, /either --shard INDEX\/COUNT or --shards COUNT/],
  ] as Array<[{ shard?: string; shards?: string }, NodeJS.ProcessEnv, RegExp]>)("%j with %j: a usage error (exit 2)", (flags, env, message) => {
    let error: unknown;
    try {
      parseShard(flags, env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RegcliError);
    expect((error as RegcliError).exitCode).toBe(2);
    expect((error as RegcliError).toLine()).toMatch(message);
  });
});
