// Retention of `regcli serve --proxy`: --proxy-max-size evicts the least recently used cached blobs that no
// manifest within its TTL needs (never one being served), and `serve gc` treats cached manifests past the TTL as
// expired. Real upstream (docker-registry), real content sizes (layers of a few MiB), clients are regcli and HTTP.
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, tempDir } from "../helpers/cli.js";
import { makeImage, pushBlob, pushImage, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { proxyOptions } from "../../src/operations/serve.js";
import { RegistryContext } from "../../src/registry/context.js";
import { RegistryServer } from "../../src/server/server.js";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Wait until the storage is under `max` bytes (eviction runs after a pull's last blob), or as small as it gets. */
async function settled(root: string, max: number): Promise<Map<string, number>> {
  for (let i = 0, last = -1; i < 100; i++) {
    const now = total(stored(root));
    if (now <= max || now === last) break;
    last = now;
    await sleep(100);
  }
  return stored(root);
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

  const layers = (n: string) => images[n]!.layers.map((l) => l.digest);
  const TTL_MS = 4000;
  const cacheOf = (maxSize: string) => startRegistry("open", { server: "regcli", serveArgs: ["--proxy", upstream.url, "--proxy-ttl", `${TTL_MS / 1000}s`, "--proxy-max-size", maxSize] });
  it("is a usage error without --proxy or with a value that is not a size", async () => {
    const root = join(await tempDir(), "never-made");
    const alone = await regcli(["serve", "--root", root, "--proxy-max-size", "10GiB"]);
    expect([alone.code, alone.stderr.trim()]).toEqual([2, "regcli: error: --proxy-max-size needs --proxy or --proxy-namespace"]);
    const bad = await regcli(["serve", "--root", root, "--proxy", upstream.url, "--proxy-max-size", "lots"]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'regcli: error: --proxy-max-size must be a size such as 16MiB, got "lots"']);
    expect(existsSync(root)).toBe(false);
  });

  it("removes the least recently used blobs of manifests past the TTL until the storage fits", async () => {
    // Images of 2 x 12 MiB: a third does not fit beside two under 64 MiB.
    const cache = await cacheOf("64MiB");
    try {
      await pull(cache.host, "library/a:1");
      await pull(cache.host, "library/b:1");
      await sleep(TTL_MS + 500); // a's and b's tags are past the TTL
      // a's layers are used again (by a client that knows their digests): b's are now the least recently used.
      for (const d of layers("a")) await request(`http://${cache.host}/v2/library/a/blobs/${d}`).then((r) => r.body.dump());
      await pull(cache.host, "library/c:1"); // 72 MiB: something must go
      const after = await settled(cache.root, 64 * MiB);
      expect(total(after)).toBeLessThanOrEqual(64 * MiB);
      for (const d of [...layers("a"), ...layers("c")]) expect(after.has(d), `${d}: recently used`).toBe(true);
      expect(layers("b").filter((d) => !after.has(d)).length, "b's layers removed").toBeGreaterThan(0);
      // Manifests stay; b pulls again, what went fetched from upstream anew.
      await pull(cache.host, "library/b:1");
    } finally {
      await cache.stop();
    }
  }, 120_000);

  it("counts partial downloads, and removes one left over with the blobs in least recently used order until both fit", async () => {
    const cache = await cacheOf("40MiB");
    try {
      // What a fetch that gave up leaves (kept to be resumed), last written before a was pulled.
      const partial = join(cache.root, "proxy", "partial", sha256("never fetched").slice(7));
      mkdirSync(join(cache.root, "proxy", "partial"), { recursive: true });
      writeFileSync(partial, Buffer.alloc(20 * MiB, 1));
      age(partial, 60_000);
      await pull(cache.host, "library/a:1");
      await sleep(TTL_MS + 500); // a is past the TTL
      await pull(cache.host, "library/b:1"); // 48 MiB of blobs + 20 of partial over 40: the partial goes, then a layer of a
      let after = stored(cache.root);
      for (let i = 0; i < 100 && (existsSync(partial) || layers("a").every((d) => after.has(d))); i++) {
        await sleep(100);
        after = stored(cache.root);
      }
      expect(existsSync(partial), "the partial file, least recently written").toBe(false);
      expect(layers("a").filter((d) => !after.has(d)), "a's layers removed").toHaveLength(1);
      for (const d of layers("b")) expect(after.has(d), `${d}: within the TTL`).toBe(true);
      expect(total(after)).toBeLessThanOrEqual(40 * MiB);
    } finally {
      await cache.stop();
    }
  }, 120_000);

  it("never removes a blob while a client is reading it; within the TTL nothing goes, over the size or not", async () => {
    const cache = await cacheOf("30MiB");
    try {
      await pull(cache.host, "library/a:1");
      await sleep(TTL_MS + 500); // a is past the TTL
      // A client starts reading a's first layer and stalls there.
      const slow = await request(`http://${cache.host}/v2/library/a/blobs/${layers("a")[0]}`, { highWaterMark: 16 * 1024 });
      expect(slow.statusCode).toBe(200);
      const reader = slow.body[Symbol.asyncIterator](); // (breaking out of a for await would end the download)
      const chunks: Buffer[] = [(await reader.next()).value as Buffer];
      await pull(cache.host, "library/b:1"); // 48 MiB over 30: only a's blobs may go, and not the one being read
      const after = await settled(cache.root, 30 * MiB);
      expect(after.has(layers("a")[1]!), "a's second layer").toBe(false);
      expect(after.has(layers("a")[0]!), "a's first layer, being read").toBe(true);
      for (const d of layers("b")) expect(after.has(d), `${d}: within the TTL`).toBe(true);
      // The stalled client gets every byte.
      for (let r = await reader.next(); !r.done; r = await reader.next()) chunks.push(r.value as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(layers("a")[0]);
      // Read to the end, it is removed (still over the size), without waiting for another blob to be fetched.
      let left = stored(cache.root);
      for (let i = 0; i < 100 && left.has(layers("a")[0]!); i++) {
        await sleep(100);
        left = stored(cache.root);
      }
      expect(left.has(layers("a")[0]!), "a's first layer, read to the end").toBe(false);
    } finally {
      await cache.stop();
    }
  }, 120_000);
});

describe("regcli serve --proxy-max-size, a request racing an eviction", () => {
  it("a request for a blob being evicted waits for the removal and fetches it anew: it never finds the blob gone mid-way", async () => {
    const upstream = await startRegistry("open");
    const context = new RegistryContext();
    const server = new RegistryServer({ addr: "127.0.0.1:0", root: join(await tempDir(), "root"), proxy: proxyOptions({ context, upstream: upstream.url, namespaces: [], ttlMs: 1000 }), cacheMaxBytes: 6 * MiB });
    try {
      const [a, b] = await Promise.all(["race-a", "race-b"].map((seed) => makeImage({ seed, layers: 2, layerSize: 2 * MiB })));
      await pushImage(upstream, "library/a", "1", a!);
      await pushImage(upstream, "library/b", "1", b!);
      const host = `127.0.0.1:${(await server.start()).port}`;
      await pull(host, "library/a:1");
      await sleep(1500); // a is past the TTL: its blobs may be evicted
      // The in-process server's storage, instrumented to force the window (a real one leaves it to chance): the first
      // eviction waits until a request for that blob has found it there, and is done before that request opens it.
      const storage = server.storage;
      const removeBlob = storage.removeBlob.bind(storage);
      const blobSize = storage.blobSize.bind(storage);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let evicting!: (digest: string) => void;
      const evicted = new Promise<string>((resolve) => (evicting = resolve));
      let removal: Promise<number> | undefined;
      let victim: string | undefined;
      storage.removeBlob = (digest) => {
        if (victim) return removeBlob(digest);
        victim = digest;
        evicting(digest);
        removal = gate.then(() => removeBlob(digest));
        return removal;
      };
      storage.blobSize = async (name, digest) => {
        const size = await blobSize(name, digest);
        if (digest === victim && removal) {
          release();
          await removal;
        }
        return size;
      };
      const pulling = pull(host, "library/b:1"); // over the size: a's blobs go
      const digest = await evicted;
      setTimeout(release, 1000); // a request that waits for the removal (as it should) does not find it held forever
      const res = await request(`http://${host}/v2/library/a/blobs/${digest}`);
      const body = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode).toBe(200);
      expect(sha256(body)).toBe(digest);
      await pulling;
    } finally {
      await server.stop();
      await context.close();
      await upstream.stop();
    }
  }, 120_000);
});

describe("regcli serve --proxy-max-size over the size with nothing to evict", () => {
  it("measures the storage again only when something can have changed (here: the TTL passed), and warns once while it lasts", async () => {
    const upstream = await startRegistry("open");
    const context = new RegistryContext();
    const lines: string[] = [];
    const TTL = 5000;
    const server = new RegistryServer({ addr: "127.0.0.1:0", root: join(await tempDir(), "root"), log: (l) => lines.push(l), proxy: proxyOptions({ context, upstream: upstream.url, namespaces: [], ttlMs: TTL }), cacheMaxBytes: MiB });
    try {
      const imgs = await Promise.all(["stuck-a", "stuck-b", "stuck-c"].map((seed) => makeImage({ seed, layers: 2, layerSize: MiB })));
      for (const [i, img] of imgs.entries()) await pushImage(upstream, `library/s${i}`, "1", img);
      const host = `127.0.0.1:${(await server.start()).port}`;
      // Each pass of the retention measures every blob: count them.
      const storage = server.storage;
      const blobEntries = storage.blobEntries.bind(storage);
      let passes = 0;
      storage.blobEntries = () => (passes++, blobEntries());
      await sleep(200); // the pass at start (an empty storage)
      passes = 0;
      const get = async (i: number, blob: { digest: string }) => {
        const r = await request(`http://${host}/v2/library/s${i}/blobs/${blob.digest}`);
        expect(sha256(Buffer.from(await r.body.arrayBuffer()))).toBe(blob.digest);
      };
      const manifest = async (i: number) => (await request(`http://${host}/v2/library/s${i}/manifests/1`, { headers: { accept: imgs[i]!.mediaType } })).body.dump();
      const until = async (what: string, done: () => boolean) => {
        for (let i = 0; i < 200 && !done(); i++) await sleep(50);
        expect(done(), `${what}\n${lines.join("\n")}`).toBe(true);
      };
      const warnings = () => lines.filter((l) => l.includes("over --proxy-max-size"));
      const removals = () => lines.filter((l) => l.startsWith("cache: removed"));
      // Two images within the TTL, each over 1 MiB alone: the first blob over the size brings one pass, which finds
      // nothing to remove; the blobs after it bring none, and the warning is not repeated.
      const started = Date.now();
      await manifest(0);
      await get(0, imgs[0]!.config);
      await get(0, imgs[0]!.layers[0]!);
      await until("the pass of the first blob over the size", () => warnings().length === 1);
      await get(0, imgs[0]!.layers[1]!);
      await manifest(1);
      for (const b of [imgs[1]!.config, ...imgs[1]!.layers]) await get(1, b);
      await sleep(300);
      expect(Date.now() - started, "the test's own precondition: all within the TTL").toBeLessThan(TTL);
      expect(passes).toBe(1);
      expect(warnings()).toHaveLength(1);
      // Past the TTL, s0 and s1 may go: the next new blob brings a pass that removes them, which ends the episode.
      await sleep(TTL + 200);
      await manifest(2);
      await get(2, imgs[2]!.config);
      await until("the pass that removes s0 and s1", () => removals().length === 1);
      const left = stored(server.options.root);
      for (const d of [...imgs[0]!.layers, ...imgs[1]!.layers].map((l) => l.digest)) expect(left.has(d), d).toBe(false);
      expect(passes).toBe(2);
      // s2's layers, within the TTL, are over the size again: a new episode, one pass and one warning.
      await get(2, imgs[2]!.layers[0]!);
      await until("the pass of s2's first layer", () => warnings().length === 2);
      await get(2, imgs[2]!.layers[1]!);
      await sleep(300);
      expect(passes).toBe(3);
      expect(warnings()).toHaveLength(2);
      for (const l of imgs[2]!.layers) expect(stored(server.options.root).has(l.digest)).toBe(true);
    } finally {
      await server.stop();
      await context.close();
      await upstream.stop();
    }
  }, 120_000);
});

describe("regcli serve --proxy-max-size and partial downloads", () => {
  it("removes a partial download left by a fetch that gave up, never one a fetch is writing", async () => {
    const upstream = await startRegistry("open");
    const fp = await startFaultProxy(upstream.url);
    // A short timeout: the stalled fetch below resumes (with Range) within the test.
    const context = new RegistryContext({ timeoutMs: 4000 });
    const root = join(await tempDir(), "root");
    const lines: string[] = [];
    const server = new RegistryServer({ addr: "127.0.0.1:0", root, log: (l) => lines.push(l), proxy: proxyOptions({ context, upstream: fp.url, namespaces: [], ttlMs: 60_000 }), cacheMaxBytes: 2 * MiB });
    try {
      const slow = await makeImage({ seed: "partial-slow", layers: 1, layerSize: 2 * MiB });
      const big = await makeImage({ seed: "partial-big", layers: 1, layerSize: 2 * MiB });
      await pushImage(upstream, "library/slow", "1", slow);
      await pushImage(upstream, "library/big", "1", big);
      const url = `http://127.0.0.1:${(await server.start()).port}`;
      // What a fetch that gave up an hour ago left (kept to be resumed), 512 KiB.
      const dir = join(root, "proxy", "partial");
      mkdirSync(dir, { recursive: true });
      const leftOver = join(dir, sha256("gave up").slice(7));
      writeFileSync(leftOver, Buffer.alloc(MiB / 2, 1));
      age(leftOver, 3600_000);
      // A fetch in progress: upstream stalls after 512 KiB of slow's layer.
      const layer = slow.layers[0]!;
      const inProgress = join(dir, layer.digest.slice(7));
      fp.rules = [{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), times: 1, fault: { kind: "stall", after: MiB / 2 } }];
      // The client gives up; the fetch goes on without it (nothing pins the blob, only the fetch holds its file).
      const abort = new AbortController();
      const reading = request(`${url}/v2/library/slow/blobs/${layer.digest}`, { signal: abort.signal }).then((r) => r.body.arrayBuffer());
      for (let i = 0; i < 100 && !(existsSync(inProgress) && statSync(inProgress).size >= MiB / 2); i++) await sleep(50);
      expect(statSync(inProgress).size).toBe(MiB / 2);
      abort.abort();
      await reading.catch(() => undefined);
      await sleep(200);
      // big (2 MiB, within the TTL) takes the storage over 2 MiB: the left-over partial goes, the one in use stays.
      await (await request(`${url}/v2/library/big/manifests/1`, { headers: { accept: big.mediaType } })).body.arrayBuffer();
      for (const b of [big.config, big.layers[0]!]) await (await request(`${url}/v2/library/big/blobs/${b.digest}`)).body.arrayBuffer();
      for (let i = 0; i < 100 && existsSync(leftOver); i++) await sleep(50);
      expect(existsSync(leftOver), lines.join("\n")).toBe(false);
      expect(lines.some((l) => l.startsWith("cache: removed 1 partial downloads (0.5 MiB)")), lines.join("\n")).toBe(true);
      expect(existsSync(inProgress), "the partial file a fetch is writing").toBe(true);
      // The stalled fetch resumes and completes: the blob is served whole.
      for (let i = 0; i < 300 && !stored(root).has(layer.digest); i++) await sleep(50);
      expect(stored(root).has(layer.digest), lines.join("\n")).toBe(true);
      const got = await request(`${url}/v2/library/slow/blobs/${layer.digest}`);
      expect(sha256(Buffer.from(await got.body.arrayBuffer()))).toBe(layer.digest);
    } finally {
      fp.rules = [];
      await server.stop();
      await context.close();
      await fp.close();
      await upstream.stop();
    }
  }, 120_000);
});

describe("regcli serve --proxy-max-size beside the server's own repositories", () => {
  it("never evicts a cached blob that a push to an own repository has mounted, even before its manifest arrives", async () => {
    const upstream = await startRegistry("open");
    const cache = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy-namespace", `hub=${upstream.url}`, "--proxy-ttl", "2s", "--proxy-max-size", "3MiB"] });
    try {
      const base = await makeImage({ seed: "own-base", layers: 2, layerSize: 2 * MiB });
      const small = await makeImage({ seed: "own-trigger", layers: 1, layerSize: 16 * 1024 });
      const app = await makeImage({ seed: "own-app", sharedBase: base.layers[0], layers: 1, layerSize: 1 * MiB });
      await pushImage(upstream, "library/base", "1", base);
      await pushImage(upstream, "library/small", "1", small);
      await pull(cache.host, "hub/library/base:1");
      // A push of app (FROM the cached base) to the server's own repository: the base layer is mounted, app's
      // own blobs uploaded; the manifest comes last.
      const mount = await request(`${cache.url}/v2/own/app/blobs/uploads/?mount=${base.layers[0]!.digest}&from=hub/library/base`, { method: "POST" });
      await mount.body.dump();
      expect(mount.statusCode).toBe(201);
      for (const b of [app.config, app.layers[1]!]) await pushBlob(cache, "own/app", b);
      await sleep(2500); // base's manifest is past the TTL
      await pull(cache.host, "hub/library/small:1"); // the cache grows over 3 MiB: base's blobs may go, but not the mounted one
      const after = await settled(cache.root, 3 * MiB);
      expect(after.has(base.layers[1]!.digest), "base's other layer").toBe(false);
      expect(after.has(base.layers[0]!.digest), "the mounted layer").toBe(true);
      await pushManifest(cache, "own/app", "1", app.manifest, app.mediaType);
    } finally {
      await cache.stop();
      await upstream.stop();
    }
  }, 120_000);

  it("a mount into an own repository while an eviction pass is under way: the pass, which listed the blob as cached only, leaves it", async () => {
    const upstream = await startRegistry("open");
    const context = new RegistryContext();
    const root = join(await tempDir(), "root");
    const server = new RegistryServer({ addr: "127.0.0.1:0", root, proxy: proxyOptions({ context, namespaces: [{ name: "hub", url: upstream.url }], ttlMs: 1000 }), cacheMaxBytes: MiB });
    try {
      const base = await makeImage({ seed: "mount-race-base", layers: 2, layerSize: MiB });
      const small = await makeImage({ seed: "mount-race-small", layers: 1, layerSize: 16 * 1024 });
      await pushImage(upstream, "library/base", "1", base);
      await pushImage(upstream, "library/small", "1", small);
      const url = `http://127.0.0.1:${(await server.start()).port}`;
      await pull(url.slice(7), "hub/library/base:1");
      await sleep(1500); // base is past the TTL: its blobs may be evicted
      // The in-process server's storage, instrumented to force the window: the next pass has read the links (the
      // blob is linked to the cached repository only) when the mount happens; it removes blobs after that.
      const storage = server.storage;
      const reachable = storage.reachable.bind(storage);
      const layer = base.layers[0]!.digest;
      let mount: Promise<number> | undefined;
      storage.reachable = async (roots) => {
        mount ??= request(`${url}/v2/own/app/blobs/uploads/?mount=${layer}&from=hub/library/base`, { method: "POST" }).then((r) => (r.body.dump(), r.statusCode));
        const status = await mount;
        expect(status).toBe(201);
        return reachable(roots);
      };
      await pull(url.slice(7), "hub/library/small:1"); // over the size: base's blobs go, but not the one just mounted
      expect(await mount).toBe(201);
      const after = await settled(root, MiB);
      expect(after.has(base.layers[1]!.digest), "base's other layer").toBe(false);
      expect(after.has(layer), "the mounted layer").toBe(true);
      const got = await request(`${url}/v2/own/app/blobs/${layer}`);
      expect([got.statusCode, sha256(Buffer.from(await got.body.arrayBuffer()))]).toEqual([200, layer]);
    } finally {
      await server.stop();
      await context.close();
      await upstream.stop();
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
    const cache = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy-namespace", `hub=${upstream.url}`, "--proxy-ttl", "1m"] });
    try {
      const pushed = await regcli(["copy", `${upstream.host}/team/own:1`, `${cache.host}/own/app:1`]);
      expect(pushed.code, pushed.stderr).toBe(0);
      // A repository named like the namespace itself is the server's own (only hub/... is proxied).
      const namedLikeNamespace = await regcli(["copy", `${upstream.host}/team/own:1`, `${cache.host}/hub:1`]);
      expect(namedLikeNamespace.code, namedLikeNamespace.stderr).toBe(0);
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
      expect((await regcli(["manifest", `${cache.host}/hub:1`])).stdoutBuffer.equals(own.manifest)).toBe(true);
      await pull(cache.host, "hub/library/b:1");
    } finally {
      await cache.stop();
    }
  }, 120_000);

  it("removes partial downloads untouched for over an hour (a fetch in progress keeps its own fresh)", async () => {
    const cache = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy-namespace", `hub=${upstream.url}`, "--proxy-ttl", "1m"] });
    try {
      const dir = join(cache.root, "proxy", "partial");
      mkdirSync(dir, { recursive: true });
      const [left, fresh] = [sha256("left over"), sha256("in progress")].map((d) => d.slice(7));
      writeFileSync(join(dir, left!), Buffer.alloc(MiB, 1));
      writeFileSync(join(dir, fresh!), Buffer.alloc(MiB, 2));
      age(join(dir, left!), 2 * 3600_000);
      age(join(dir, fresh!), 50 * 60_000);
      const dry = await regcli(["serve", "gc", "--root", cache.root, "--dry-run"]);
      expect([dry.code, dry.stdout]).toEqual([0, `proxy/partial/${left}\n`]);
      expect(dry.stderr).toContain("1 stale partial downloads would be removed");
      expect(readdirSync(dir).sort()).toEqual([left, fresh].sort());
      const gc = await regcli(["serve", "gc", "--root", cache.root]);
      expect([gc.code, gc.stdout]).toEqual([0, `proxy/partial/${left}\n`]);
      expect(gc.stderr).toContain("removed 0 blobs, 1.0 MiB and 1 stale partial downloads");
      expect(readdirSync(dir)).toEqual([fresh]);
    } finally {
      await cache.stop();
    }
  }, 120_000);
});
