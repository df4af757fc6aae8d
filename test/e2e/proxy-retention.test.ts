// Retention of `regcli serve --proxy`: --proxy-max-size evicts the least recently used cached blobs that no
// manifest within its TTL needs (never one being served), and `serve gc` treats cached manifests past the TTL as
// expired. Real upstream (docker-registry), real content sizes (layers of a few MiB), clients are regcli and HTTP.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir } from "../helpers/cli.js";
import { makeImage, pushImage, sha256, type TestImage } from "../helpers/images.js";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.js";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cache {
  host: string;
  root: string;
  log(): string;
  stop(): Promise<void>;
}

/** `regcli serve` with these flags on a fresh root. */
async function startCache(flags: string[]): Promise<Cache> {
  const root = join(await tempDir("regcli-cache-"), "data");
  const host = `127.0.0.1:${await freePort()}`;
  const child: ChildProcess = spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "serve", "--addr", host, "--root", root, ...flags], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  for (let i = 0; ; i++) {
    const up = await request(`http://${host}/v2/`).then((r) => (r.body.dump(), r.statusCode === 200), () => false);
    if (up) break;
    if (i > 200 || child.exitCode !== null) throw new Error(`regcli serve did not start: ${log}`);
    await sleep(50);
  }
  return {
    host,
    root,
    log: () => log,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
    },
  };
}

/** The blobs in a serve root, digest -> size. */
function stored(root: string): Map<string, number> {
  const dir = join(root, "blobs", "sha256");
  return new Map(readdirSync(dir).filter((h) => !h.endsWith(".tmp")).map((h) => [`sha256:${h}`, statSync(join(dir, h)).size]));
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Move the times of every file under `path` back by `ms`: what the cache stored then was used and checked that long ago. */
function age(path: string, ms: number): void {
  const s = statSync(path);
  if (s.isDirectory()) for (const entry of readdirSync(path)) age(join(path, entry), ms);
  else utimesSync(path, new Date(s.atimeMs - ms), new Date(s.mtimeMs - ms));
}

async function pull(host: string, ref: string): Promise<void> {
  const out = await tempDir("regcli-pulled-");
  const r = await regcli(["copy", `${host}/${ref}`, `oci:${out}:x`]);
  expect(r.code, r.stderr).toBe(0);
}

describe("regcli serve --proxy-max-size", () => {
  let upstream: TestRegistry;
  const images: Record<string, TestImage> = {};
  beforeAll(async () => {
    upstream = await startRegistry("open");
    for (const name of ["a", "b", "c"]) {
      images[name] = await makeImage({ seed: `retention-${name}`, layers: 2, layerSize: 12 * MiB });
      await pushImage(upstream, `library/${name}`, "1", images[name]!);
    }
  });
  afterAll(async () => upstream?.stop());

  it("keeps the storage under the size by removing the least recently used blobs of expired manifests, never one being served", async () => {
    // Three images of 2 x 12 MiB: a third one does not fit beside two under 64 MiB.
    const cache = await startCache(["--proxy", upstream.url, "--proxy-ttl", "1m", "--proxy-max-size", "64MiB"]);
    try {
      const layers = (n: string) => images[n]!.layers.map((l) => l.digest);
      const blobFile = (d: string) => join(cache.root, "blobs", "sha256", d.slice(7));
      await pull(cache.host, "library/a:1");
      await pull(cache.host, "library/b:1");
      age(cache.root, 10 * 60_000); // a and b were pulled 10 minutes ago: past the TTL
      age(blobFile(layers("b")[0]!), 10 * 60_000); // and b's first layer was used before anything else
      // a's layers are used again now (straight from a client that knows their digests)...
      for (const d of layers("a")) await request(`http://${cache.host}/v2/library/a/blobs/${d}`).then((r) => r.body.dump());
      // ...and a client starts reading b's first layer and stalls: that blob is being served.
      const slow = await request(`http://${cache.host}/v2/library/b/blobs/${layers("b")[0]}`, { highWaterMark: 16 * 1024 });
      expect(slow.statusCode).toBe(200);
      const chunks: Buffer[] = [];
      for await (const chunk of slow.body) {
        chunks.push(chunk as Buffer);
        break;
      }
      await pull(cache.host, "library/c:1"); // 72 MiB now: something must go
      for (let i = 0; i < 200 && !/removed \d+ least recently used blobs/.test(cache.log()); i++) await sleep(50);
      const after = stored(cache.root);
      expect(total(after)).toBeLessThanOrEqual(64 * MiB);
      for (const d of [...layers("a"), ...layers("c")]) expect(after.has(d), `${d}: recently used or within the TTL`).toBe(true);
      expect(after.has(layers("b")[1]!), "b's second layer: the least recently used not being served").toBe(false);
      expect(after.has(layers("b")[0]!), "b's first layer: being served").toBe(true);
      // The stalled client still gets every byte of it.
      for await (const chunk of slow.body) chunks.push(chunk as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(layers("b")[0]);
      // Manifests stay; b pulls again, what went fetched from upstream anew.
      await pull(cache.host, "library/b:1");
    } finally {
      await cache.stop();
    }
  }, 120_000);
});

describe("regcli serve gc on a cache", () => {
  let upstream: TestRegistry;
  let a: TestImage;
  let b: TestImage;
  let own: TestImage;
  beforeAll(async () => {
    upstream = await startRegistry("open");
    [a, b, own] = await Promise.all(["gc-a", "gc-b", "gc-own"].map((seed) => makeImage({ seed, layers: 2, layerSize: 2 * MiB })));
    await pushImage(upstream, "library/a", "1", a);
    await pushImage(upstream, "library/b", "1", b);
    await pushImage(upstream, "team/own", "1", own);
  });
  afterAll(async () => upstream?.stop());

  it("counts cached manifests only within the TTL: expired ones go with the blobs only they need; the server's own images stay", async () => {
    const cache = await startCache(["--proxy-namespace", `hub=${upstream.url}`, "--proxy-ttl", "1m"]);
    try {
      const pushed = await regcli(["copy", `${upstream.host}/team/own:1`, `${cache.host}/own/app:1`]);
      expect(pushed.code, pushed.stderr).toBe(0);
      await pull(cache.host, "hub/library/a:1");
      await pull(cache.host, "hub/library/b:1");
      age(cache.root, 10 * 60_000); // all of it stored 10 minutes ago
      await pull(cache.host, "hub/library/a:1"); // revalidated with upstream: a's tag is within the TTL again

      const dry = await regcli(["serve", "gc", "--root", cache.root, "--dry-run"]);
      expect(dry.code, dry.stderr).toBe(0);
      const digests = (img: TestImage) => [img.manifestDigest, img.config.digest, ...img.layers.map((l) => l.digest)];
      expect(dry.stdout.trim().split("\n").sort()).toEqual([`hub/library/b@${b.manifestDigest}`, ...digests(b)].sort());
      expect(dry.stderr).toContain("1 expired cached manifests");
      for (const d of digests(b)) expect(existsSync(join(cache.root, "blobs", "sha256", d.slice(7))), "a dry run removes nothing").toBe(true);

      const gc = await regcli(["serve", "gc", "--root", cache.root]);
      expect(gc.code, gc.stderr).toBe(0);
      const left = stored(cache.root);
      for (const d of digests(b)) expect(left.has(d)).toBe(false);
      for (const d of [...digests(a), ...digests(own)]) expect(left.has(d)).toBe(true);
      const again = await regcli(["serve", "gc", "--root", cache.root, "--dry-run"]);
      expect(again.stdout).toBe("");
      // The server's own image is whole; b is fetched from upstream again.
      const ownManifest = await regcli(["manifest", `${cache.host}/own/app:1`]);
      expect(ownManifest.stdoutBuffer.equals(own.manifest)).toBe(true);
      await pull(cache.host, "hub/library/b:1");
    } finally {
      await cache.stop();
    }
  }, 120_000);
});
