// regcli serve --proxy: a pull-through cache in front of a real Distribution registry (token auth, through the fault
// proxy to count and break upstream requests), with skopeo and regcli as its clients.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, skopeo, tempDir } from "../helpers/cli.js";
import { startFaultProxy, startStorageHost, type FaultProxy } from "../helpers/fault-proxy.js";
import { makeImage, makeIndex, pushBlob, pushImage, pushIndex, pushManifest, sha256, type TestImage, type TestIndex } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { proxyOptions, UPSTREAM_REPOSITORIES_KEPT } from "../../src/operations/serve.js";
import { RegistryContext } from "../../src/registry/context.js";

const ALL_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

async function call(url: string, method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE" = "GET", headers: Record<string, string> = {}) {
  const res = await request(url, { method, headers });
  const body = method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await res.body.arrayBuffer());
  const h = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, body, text: body.toString("utf8"), h, headers: res.headers };
}

/** Upstream GETs of blobs (not HEADs), by digest, as the fault proxy in front of upstream saw them. */
function blobGets(fp: FaultProxy): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of fp.log) {
    const m = /\/blobs\/(sha256:[a-f0-9]{64})/.exec(e.path);
    if (m && e.method === "GET") counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

/**
 * regcli serve with these flags, isolated from the developer's logins and caches (its own DOCKER_CONFIG, maybe with
 * some, and XDG_CACHE_HOME: `home`).
 */
async function startCache(serveArgs: string[], opts: { stdin?: string; auths?: Record<string, { username: string; password: string }> } = {}): Promise<TestRegistry & { home: string }> {
  const config = await dockerConfigDir(opts.auths);
  const env = { DOCKER_CONFIG: config, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: config, XDG_RUNTIME_DIR: config, REGCLI_CONFIG: join(config, "regcli-config.json") };
  return { ...(await startRegistry("open", { server: "regcli", serveArgs, stdin: opts.stdin, env, deleteEnabled: false })), home: config };
}

const blobsOf = (img: TestImage) => [img.config, ...img.layers];

/** What the cache holds: blob files (no partial ones). */
const cachedBlobs = (reg: TestRegistry) => (existsSync(join(reg.root, "blobs", "sha256")) ? readdirSync(join(reg.root, "blobs", "sha256")) : []);
const partials = (reg: TestRegistry) => (existsSync(join(reg.root, "proxy", "partial")) ? readdirSync(join(reg.root, "proxy", "partial")) : []);

/** GET a blob through the cache: its status and the digest of the bytes received, or the error that cut it. */
async function pullBlob(url: string): Promise<{ status: number; digest?: string; bytes: number; error?: string }> {
  const res = await request(url);
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    return { status: res.statusCode, bytes, error: (err as Error).message };
  }
  return { status: res.statusCode, digest: `sha256:${hash.digest("hex")}`, bytes };
}

describe("regcli serve --proxy: a pull-through cache of a token-auth registry", () => {
  let upstream: TestRegistry;
  let fp: FaultProxy;
  let cache: TestRegistry & { home: string };
  let image: TestImage;
  let index: TestIndex;
  beforeAll(async () => {
    upstream = await startRegistry("token");
    fp = await startFaultProxy(upstream.url);
    image = await makeImage({ layers: 3, layerSize: 256 * 1024, seed: "proxy-cold" });
    index = makeIndex([await makeImage({ seed: "proxy-amd64" }), await makeImage({ seed: "proxy-arm64", platform: { os: "linux", architecture: "arm64" } })]);
    await pushImage(upstream, "team/app", "1.0", image);
    await pushIndex(upstream, "team/multi", "1.0", index);
    cache = await startCache(["--proxy", fp.url, "--proxy-ttl", "2s"]);
  });
  afterAll(async () => {
    await cache?.stop();
    await fp?.close();
    await upstream?.stop();
  });

  it("a cold pull fetches every blob once from upstream; a warm pull none", async () => {
    fp.reset();
    const dir = await tempDir();
    const cold = await skopeo(["copy", "--src-tls-verify=false", `docker://${cache.host}/team/app:1.0`, `oci:${join(dir, "cold")}:1.0`]);
    expect(cold.code, cold.stderr).toBe(0);
    const gets = blobGets(fp);
    for (const b of blobsOf(image)) expect(gets.get(b.digest)).toBe(1);
    // No HEAD before each GET: the size is the GET's Content-Length.
    expect(fp.log.filter((e) => e.method === "HEAD" && e.path.includes("/blobs/")).map((e) => e.path)).toEqual([]);
    fp.reset();
    const warm = await regcli(["copy", `${cache.host}/team/app:1.0`, `oci:${join(dir, "warm")}:1.0`]);
    expect(warm.code, warm.stderr).toBe(0);
    expect(blobGets(fp).size).toBe(0);
    const layer = image.layers[0]!;
    expect(readFileSync(join(dir, "warm", "blobs", "sha256", layer.digest.slice(7)))).toEqual(layer.data);
  });

  it("keeps upstream tokens in memory: one token request for all of a repository's requests, no token cache file", async () => {
    const img = await makeImage({ layers: 3, seed: "proxy-tokens" });
    await pushImage(upstream, "team/tokens", "1.0", img);
    const issued = upstream.issued!.count;
    const dir = await tempDir();
    for (const [i, accept] of [ALL_TYPES, "application/vnd.oci.image.manifest.v1+json"].entries()) {
      expect((await call(`${cache.url}/v2/team/tokens/manifests/1.0`, "HEAD", { accept })).status).toBe(200);
      const pulled = await regcli(["copy", `${cache.host}/team/tokens:1.0`, `oci:${join(dir, String(i))}:1.0`]);
      expect(pulled.code, pulled.stderr).toBe(0);
    }
    for (const b of blobsOf(img)) expect((await call(`${cache.url}/v2/team/tokens/blobs/${b.digest}`, "HEAD")).status).toBe(200);
    expect(upstream.issued!.count - issued).toBe(1);
    // The server never writes (nor reads) the CLI's token cache: no synchronous file I/O on its event loop.
    expect(existsSync(join(cache.home, "regcli", "tokens.json"))).toBe(false);
  });

  it("32 clients pulling one cold image at once: one upstream GET per blob and per manifest, every client gets the right bytes", async () => {
    const big = await makeImage({ layers: 2, layerSize: 3 * 1024 * 1024, seed: "proxy-32" });
    await pushImage(upstream, "team/crowd", "1.0", big);
    fp.reset();
    // Upstream answers blob GETs late, so all 32 clients ask while the one fetch is in flight.
    fp.rules = [{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "delay", ms: 400 } }];
    try {
      const results = await Promise.all(
        Array.from({ length: 32 }, async () => {
          const m = await call(`${cache.url}/v2/team/crowd/manifests/1.0`, "GET", { accept: ALL_TYPES });
          const blobs = await Promise.all(blobsOf(big).map((b) => pullBlob(`${cache.url}/v2/team/crowd/blobs/${b.digest}`)));
          return { manifest: m.h("docker-content-digest"), blobs: blobs.map((b) => b.digest) };
        }),
      );
      for (const r of results) {
        expect(r.manifest).toBe(big.manifestDigest);
        expect(r.blobs).toEqual(blobsOf(big).map((b) => b.digest));
      }
    } finally {
      fp.rules = [];
    }
    const gets = blobGets(fp);
    for (const b of blobsOf(big)) expect(gets.get(b.digest)).toBe(1);
    expect(fp.log.filter((e) => e.method === "GET" && e.path.includes("/manifests/")).length).toBe(1);
    expect(partials(cache)).toEqual([]);
  });

  it("a client that stops reading holds back only itself: the fetch and the other clients go on, and what it has not read waits in the file, not in memory", async () => {
    const MiB = 1024 * 1024;
    const data = randomBytes(160 * MiB);
    const digest = sha256(data);
    await pushBlob(upstream, "team/slow", { digest, data });
    const own = await startCache(["--proxy", fp.url]);
    try {
      const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${own.pid}/status`, "utf8"))![1]) * 1024;
      const url = `${own.url}/v2/team/slow/blobs/${digest}`;
      expect((await call(`${own.url}/v2/`)).status).toBe(200);
      const before = peakRss();
      const stalled = await request(url); // its body is not read until the other client has the whole blob
      expect(stalled.statusCode).toBe(200);
      expect(await pullBlob(url)).toMatchObject({ status: 200, digest });
      const grown = (peakRss() - before) / MiB;
      const hash = createHash("sha256");
      for await (const chunk of stalled.body) hash.update(chunk as Buffer);
      expect(`sha256:${hash.digest("hex")}`).toBe(digest);
      // Garbage of the download (fresh buffers V8 collects later) is ~40 MiB; a stalled client whose bytes were kept
      // in memory would add the 160 MiB blob.
      expect(grown).toBeLessThan(100);
    } finally {
      await own.stop();
    }
  });

  it("a tag is served from the cache within --proxy-ttl and revalidated with a HEAD after it: a retag upstream shows then", async () => {
    const first = await makeImage({ seed: "proxy-ttl-1" });
    const second = await makeImage({ seed: "proxy-ttl-2" });
    await pushImage(upstream, "team/moving", "latest", first);
    const url = `${cache.url}/v2/team/moving/manifests/latest`;
    expect((await call(url, "GET", { accept: ALL_TYPES })).h("docker-content-digest")).toBe(first.manifestDigest);
    const cachedAt = Date.now();
    await pushImage(upstream, "team/moving", "latest", second);
    fp.reset();
    const within = await call(url, "GET", { accept: ALL_TYPES });
    expect(Date.now() - cachedAt).toBeLessThan(2000); // the test's own precondition: still within the TTL
    expect(within.h("docker-content-digest")).toBe(first.manifestDigest);
    expect(fp.log.filter((e) => e.path.includes("/manifests/"))).toEqual([]);
    await new Promise((r) => setTimeout(r, 2100 - (Date.now() - cachedAt)));
    const after = await call(url, "GET", { accept: ALL_TYPES });
    expect(after.h("docker-content-digest")).toBe(second.manifestDigest);
    expect(sha256(after.body)).toBe(second.manifestDigest);
    // Unchanged after another TTL: one HEAD upstream, no GET.
    await new Promise((r) => setTimeout(r, 2100));
    fp.reset();
    expect((await call(url, "GET", { accept: ALL_TYPES })).h("docker-content-digest")).toBe(second.manifestDigest);
    expect(fp.log.filter((e) => e.path.includes("/manifests/")).map((e) => e.method)).toEqual(["HEAD"]);
    // By digest: never asked about again, whatever the TTL.
    fp.reset();
    expect((await call(`${cache.url}/v2/team/moving/manifests/${first.manifestDigest}`, "GET", { accept: ALL_TYPES })).status).toBe(200);
    expect(fp.log.filter((e) => e.path.includes("/manifests/"))).toEqual([]);
  });

  it("upstream answering 5xx after the retries: the cached tag is served stale, with a Warning", async () => {
    const img = await makeImage({ seed: "proxy-5xx" });
    await pushImage(upstream, "team/flaky", "1.0", img);
    const url = `${cache.url}/v2/team/flaky/manifests/1.0`;
    expect((await call(url, "GET", { accept: ALL_TYPES })).h("warning")).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2100));
    fp.reset();
    fp.rules = [{ path: /\/team\/flaky\/manifests\//, fault: { kind: "status", status: 503 } }];
    try {
      const stale = await call(url, "GET", { accept: ALL_TYPES });
      expect(stale.status).toBe(200);
      expect(stale.h("docker-content-digest")).toBe(img.manifestDigest);
      expect(stale.h("warning")).toBe('110 - "Response is Stale"');
      expect(fp.log.filter((e) => e.status === 503).length).toBeGreaterThan(1); // retried before giving up
    } finally {
      fp.rules = [];
    }
  });

  it("asks upstream with the client's Accept: a manifest list, or the amd64 manifest for a client without lists; HEAD by tag works cold", async () => {
    const amd64 = await makeImage({ seed: "proxy-list-amd64", format: "docker" });
    const arm64 = await makeImage({ seed: "proxy-list-arm64", format: "docker", platform: { os: "linux", architecture: "arm64" } });
    const list = makeIndex([amd64, arm64], "docker");
    await pushIndex(upstream, "team/list", "1.0", list);
    const head = await call(`${cache.url}/v2/team/list/manifests/1.0`, "HEAD", { accept: ALL_TYPES });
    expect(head.status).toBe(200);
    expect(head.h("docker-content-digest")).toBe(list.manifestDigest);
    expect(head.h("content-type")).toBe(list.mediaType);
    const narrow = await call(`${cache.url}/v2/team/list/manifests/1.0`, "GET", { accept: "application/vnd.docker.distribution.manifest.v2+json" });
    expect(narrow.status).toBe(200);
    expect(narrow.h("content-type")).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(narrow.h("docker-content-digest")).toBe(amd64.manifestDigest);
    // A client taking only OCI manifests is given Docker schema 1 by Distribution (upstream is fine): not a 503.
    const ociOnly = await call(`${cache.url}/v2/team/list/manifests/1.0`, "GET", { accept: "application/vnd.oci.image.manifest.v1+json" });
    expect([ociOnly.status, JSON.parse(ociOnly.text).errors[0].code]).toEqual([404, "MANIFEST_UNKNOWN"]);
    expect(JSON.parse(ociOnly.text).errors[0].message).toMatch(/team\/list:1\.0 is not served in a form regcli serve handles \(.*Docker schema 1/);
    expect((await call(`${cache.url}/v2/team/list/manifests/1.0`, "HEAD", { accept: "application/vnd.oci.image.manifest.v1+json" })).status).toBe(404);
    const log = readdirSync(join(cache.root, "..")).filter((f) => f.startsWith("registry-")).map((f) => readFileSync(join(cache.root, "..", f), "utf8")).join("");
    expect(log).toMatch(/warning: manifest team\/list:1\.0: unsupported manifest from .*Docker schema 1/);
    // The narrow answer did not replace what the tag names for clients that take lists.
    const full = await call(`${cache.url}/v2/team/list/manifests/1.0`, "GET", { accept: ALL_TYPES });
    expect(full.h("docker-content-digest")).toBe(list.manifestDigest);
    const dir = await tempDir();
    const all = await skopeo(["copy", "--all", "--src-tls-verify=false", `docker://${cache.host}/team/list:1.0`, `oci:${dir}:1.0`]);
    expect(all.code, all.stderr).toBe(0);
    const multi = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${cache.host}/team/multi:1.0`]);
    expect(multi.code, multi.stderr).toBe(0);
    expect(sha256(Buffer.from(multi.stdout))).toBe(index.manifestDigest);
  });

  it("refuses pushes and deletes: every repository is a read-only cache of upstream", async () => {
    const post = await call(`${cache.url}/v2/team/app/blobs/uploads/`, "POST");
    expect(post.status).toBe(405);
    expect(JSON.parse(post.text).errors[0].code).toBe("UNSUPPORTED");
    const del = await call(`${cache.url}/v2/team/app/manifests/${image.manifestDigest}`, "DELETE");
    expect(del.status).toBe(405);
  });

  it("a blob whose bytes fail their digest is cut short for the client and never cached; the next pull fetches it again", async () => {
    const img = await makeImage({ layers: 1, layerSize: 512 * 1024, seed: "proxy-flip" });
    await pushImage(upstream, "team/flip", "1.0", img);
    const layer = img.layers[0]!;
    fp.reset();
    fp.rules = [{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), times: 1, fault: { kind: "flip", at: 1000 } }];
    const bad = await pullBlob(`${cache.url}/v2/team/flip/blobs/${layer.digest}`);
    fp.rules = [];
    expect(bad.error).toBeDefined();
    expect(bad.bytes).toBeLessThan(layer.size);
    expect(cachedBlobs(cache)).not.toContain(layer.digest.slice(7));
    expect(partials(cache)).toEqual([]);
    const good = await pullBlob(`${cache.url}/v2/team/flip/blobs/${layer.digest}`);
    expect(good.digest).toBe(layer.digest);
    expect(cachedBlobs(cache)).toContain(layer.digest.slice(7));
  });

  it("a blob fetch cut mid-way while upstream answers 503 is resumed with Range; the client gets it whole, never half", async () => {
    const img = await makeImage({ layers: 1, layerSize: 2 * 1024 * 1024, seed: "proxy-cut" });
    await pushImage(upstream, "team/cut", "1.0", img);
    const layer = img.layers[0]!;
    fp.reset();
    fp.rules = [
      { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), nth: 1, fault: { kind: "reset-response", after: 700_000 } },
      { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), when: (r) => r.headers.range !== undefined, times: 2, fault: { kind: "status", status: 503 } },
    ];
    const got = await pullBlob(`${cache.url}/v2/team/cut/blobs/${layer.digest}`);
    fp.rules = [];
    expect(got.error).toBeUndefined();
    expect(got.digest).toBe(layer.digest);
    const gets = fp.log.filter((e) => e.method === "GET" && e.path.includes(layer.digest));
    expect(gets.at(-1)!.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/^bytes=(\d+)-$/.exec(gets.at(-1)!.range!)![1])).toBeGreaterThan(0);
    expect(fp.bytesSent(new RegExp(layer.digest), "GET")).toBeLessThan(layer.size + 700_000);
    expect(partials(cache)).toEqual([]);
  });

  it("a fetch that gives up while upstream is down cuts its clients and keeps the partial file; the next pull resumes it with Range", async () => {
    const img = await makeImage({ layers: 1, layerSize: 2 * 1024 * 1024, seed: "proxy-down-mid" });
    await pushImage(upstream, "team/downmid", "1.0", img);
    const layer = img.layers[0]!;
    fp.reset();
    fp.rules = [
      { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), nth: 1, fault: { kind: "reset-response", after: 1_000_000 } },
      { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), when: (r) => r.headers.range !== undefined, fault: { kind: "status", status: 503 } },
    ];
    const cut = await pullBlob(`${cache.url}/v2/team/downmid/blobs/${layer.digest}`);
    expect(cut.error).toBeDefined();
    expect(cut.bytes).toBeLessThan(layer.size);
    expect(cachedBlobs(cache)).not.toContain(layer.digest.slice(7));
    expect(partials(cache)).toEqual([layer.digest.slice(7)]);
    fp.rules = []; // upstream is back
    fp.reset();
    const whole = await pullBlob(`${cache.url}/v2/team/downmid/blobs/${layer.digest}`);
    expect(whole.digest).toBe(layer.digest);
    const gets = fp.log.filter((e) => e.method === "GET" && e.path.includes(layer.digest));
    expect(gets.map((e) => e.range)).toEqual([expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
    expect(fp.bytesSent(new RegExp(layer.digest), "GET")).toBeLessThan(layer.size);
    expect(partials(cache)).toEqual([]);
  });

  it("an upstream manifest over 4 MiB or failing its digest is refused, never cached", async () => {
    const img = await makeImage({ seed: "proxy-bad-manifest" });
    await pushImage(upstream, "team/bad", "1.0", img);
    fp.rules = [
      {
        method: "GET",
        path: /\/team\/bad\/manifests\/1\.0/,
        fault: { kind: "status", status: 200, headers: { "content-type": img.mediaType }, body: " ".repeat(4 * 1024 * 1024 + 1) },
      },
      // Another image's manifest where this digest was asked for.
      { method: "GET", path: new RegExp(`/team/bad/manifests/${img.manifestDigest}`), fault: { kind: "status", status: 200, headers: { "content-type": image.mediaType }, body: image.manifest.toString() } },
    ];
    try {
      const huge = await call(`${cache.url}/v2/team/bad/manifests/1.0`, "GET", { accept: ALL_TYPES });
      expect(huge.status).toBe(503);
      expect(JSON.parse(huge.text).errors[0].message).toContain("too large");
      const flipped = await call(`${cache.url}/v2/team/bad/manifests/${img.manifestDigest}`, "GET", { accept: ALL_TYPES });
      expect(flipped.status).toBe(502);
      expect(JSON.parse(flipped.text).errors[0].message).toContain("digest");
    } finally {
      fp.rules = [];
    }
    expect(existsSync(join(cache.root, "repositories", "team", "bad"))).toBe(false);
    expect((await call(`${cache.url}/v2/team/bad/manifests/1.0`, "GET", { accept: ALL_TYPES })).h("docker-content-digest")).toBe(img.manifestDigest);
  });

  it("upstream rate limiting (429 with Retry-After) is waited out, and the client gets its answer", async () => {
    const img = await makeImage({ seed: "proxy-429" });
    await pushImage(upstream, "team/limited", "1.0", img);
    fp.reset();
    fp.rules = [{ method: "GET", path: /\/team\/limited\/(manifests|blobs)\//, times: 2, fault: { kind: "status", status: 429, headers: { "retry-after": "1" } } }];
    const started = Date.now();
    const m = await call(`${cache.url}/v2/team/limited/manifests/1.0`, "GET", { accept: ALL_TYPES });
    const b = await pullBlob(`${cache.url}/v2/team/limited/blobs/${img.layers[0]!.digest}`);
    fp.rules = [];
    expect(m.status).toBe(200);
    expect(m.h("docker-content-digest")).toBe(img.manifestDigest);
    expect(b.digest).toBe(img.layers[0]!.digest);
    expect(fp.log.filter((e) => e.status === 429)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it("bytes of a blob still being fetched are never all given out before it is verified: a range ends only with the fetch", async () => {
    const img = await makeImage({ layers: 1, layerSize: 1024 * 1024, seed: "proxy-unverified" });
    await pushImage(upstream, "team/unverified", "1.0", img);
    const layer = img.layers[0]!;
    const impatient = await startCache(["--proxy", fp.url, "--timeout", "2"]);
    try {
      fp.reset();
      // The fetch gets 200 KB, stalls until --timeout, and resumes into bytes that fail the digest.
      fp.rules = [
        { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), nth: 1, fault: { kind: "stall", after: 200_000 } },
        { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), when: (r) => r.headers.range !== undefined, fault: { kind: "flip", at: 1000 } },
      ];
      const whole = pullBlob(`${impatient.url}/v2/team/unverified/blobs/${layer.digest}`);
      for (let i = 0; i < 200 && fp.bytesSent(new RegExp(layer.digest), "GET") < 200_000; i++) await new Promise((r) => setTimeout(r, 25));
      // The first 1000 bytes are on disk already, but the range is not completed until the blob is verified.
      const range = await request(`${impatient.url}/v2/team/unverified/blobs/${layer.digest}`, { headers: { range: "bytes=0-999" } });
      expect(range.statusCode).toBe(206);
      const rangeBody = await range.body.arrayBuffer().then((b) => ({ bytes: b.byteLength }), (err: Error) => ({ error: err.message }));
      expect(rangeBody).toHaveProperty("error");
      expect((await whole).error).toBeDefined();
      expect(fp.log.some((e) => e.fault === "flip")).toBe(true);
      expect(cachedBlobs(impatient)).not.toContain(layer.digest.slice(7));
    } finally {
      fp.rules = [];
      await impatient.stop();
    }
  });

  it("upstream killed mid-blob and restarted: the fetch resumes with Range and the client gets the blob whole", async () => {
    const img = await makeImage({ layers: 1, layerSize: 4 * 1024 * 1024, seed: "proxy-kill" });
    await pushImage(upstream, "team/kill", "1.0", img);
    const layer = img.layers[0]!;
    const impatient = await startCache(["--proxy", fp.url, "--timeout", "2"]);
    try {
      fp.reset();
      // The first GET stops sending after 1 MiB: that is where upstream dies.
      fp.rules = [{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), nth: 1, fault: { kind: "stall", after: 1024 * 1024 } }];
      const pending = pullBlob(`${impatient.url}/v2/team/kill/blobs/${layer.digest}`);
      for (let i = 0; i < 200 && fp.bytesSent(new RegExp(layer.digest), "GET") < 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 25));
      await upstream.kill();
      await new Promise((r) => setTimeout(r, 2500));
      await upstream.restart();
      const got = await pending;
      fp.rules = [];
      expect(got.error).toBeUndefined();
      expect(got.digest).toBe(layer.digest);
      const answered = fp.log.filter((e) => e.method === "GET" && e.path.includes(layer.digest) && e.status === 206);
      expect(answered.map((e) => e.range)).toEqual([expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
      expect(fp.bytesSent(new RegExp(layer.digest), "GET")).toBeLessThan(layer.size + 100_000);
      expect(partials(impatient)).toEqual([]);
    } finally {
      fp.rules = [];
      await impatient.stop();
    }
  });

  it("upstream down: a cached tag is served with a Warning header and a log line, an uncached one answers 503 with a clear message", async () => {
    const url = `${cache.url}/v2/team/app/manifests/1.0`;
    expect((await call(url, "GET", { accept: ALL_TYPES })).status).toBe(200);
    expect((await pullBlob(`${cache.url}/v2/team/app/blobs/${image.layers[0]!.digest}`)).digest).toBe(image.layers[0]!.digest);
    await new Promise((r) => setTimeout(r, 2100)); // past the TTL: upstream must be asked
    await fp.close();
    const stale = await call(url, "GET", { accept: ALL_TYPES });
    expect(stale.status).toBe(200);
    expect(stale.h("docker-content-digest")).toBe(image.manifestDigest);
    expect(stale.h("warning")).toBe('110 - "Response is Stale"');
    const cold = await call(`${cache.url}/v2/team/never-pulled/manifests/1.0`, "GET", { accept: ALL_TYPES });
    expect(cold.status).toBe(503);
    const error = JSON.parse(cold.text).errors[0];
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toContain("is unavailable");
    const coldBlob = await call(`${cache.url}/v2/team/never-pulled/blobs/${sha256("nothing")}`);
    expect(coldBlob.status).toBe(503);
    // Tag lists come from what the cache holds; a repository it never saw is upstream's failure, not a 404.
    expect(JSON.parse((await call(`${cache.url}/v2/team/app/tags/list`)).text).tags).toEqual(["1.0"]);
    expect((await call(`${cache.url}/v2/team/never-pulled/tags/list`)).status).toBe(503);
    // Cached blobs keep being served.
    expect((await pullBlob(`${cache.url}/v2/team/app/blobs/${image.layers[0]!.digest}`)).digest).toBe(image.layers[0]!.digest);
    const log = readdirSync(join(cache.root, "..")).filter((f) => f.startsWith("registry-")).map((f) => readFileSync(join(cache.root, "..", f), "utf8")).join("");
    expect(log).toMatch(/warning: serving cached manifest team\/app:1\.0 \(sha256:[a-f0-9]{64}\) without revalidation/);
  });
});

describe("regcli serve --proxy: upstream credentials", () => {
  let upstream: TestRegistry;
  let image: TestImage;
  const caches: TestRegistry[] = [];
  beforeAll(async () => {
    upstream = await startRegistry("basic");
    image = await makeImage({ seed: "proxy-creds" });
    await pushImage(upstream, "private/app", "1.0", image);
    await pushImage(upstream, "private/other", "1.0", image);
  });
  afterAll(async () => {
    for (const c of caches) await c.stop();
    await upstream?.stop();
  });

  it("--proxy-username/--proxy-password-stdin reach upstream and never a client: no header or body of any answer carries them", async () => {
    const { username, password } = upstream.admin!;
    const cache = await startCache(["--proxy", upstream.url, "--proxy-username", username, "--proxy-password-stdin"], { stdin: `${password}\n` });
    caches.push(cache);
    const dir = await tempDir();
    const pulled = await skopeo(["copy", "--src-tls-verify=false", `docker://${cache.host}/private/app:1.0`, `oci:${dir}:1.0`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const answers = await Promise.all([
      call(`${cache.url}/v2/`),
      call(`${cache.url}/v2/_catalog`),
      call(`${cache.url}/v2/private/app/tags/list`),
      call(`${cache.url}/v2/private/app/manifests/1.0`, "GET", { accept: ALL_TYPES }),
      call(`${cache.url}/v2/private/app/manifests/1.0`, "HEAD", { accept: ALL_TYPES }),
      call(`${cache.url}/v2/private/app/blobs/${image.config.digest}`),
      call(`${cache.url}/v2/private/app/manifests/missing`, "GET", { accept: ALL_TYPES }),
      call(`${cache.url}/v2/private/missing/manifests/1.0`, "GET", { accept: ALL_TYPES }),
      call(`${cache.url}/v2/private/app/blobs/${sha256("missing")}`),
      call(`${cache.url}/v2/private/app/blobs/uploads/`, "POST"),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 404, 404, 404, 405]);
    const secrets = [password, Buffer.from(`${username}:${password}`).toString("base64"), "basic-realm"];
    for (const a of answers) {
      const text = `${JSON.stringify(a.headers)}\n${a.text}`;
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(a.h("www-authenticate")).toBeUndefined();
      expect(a.h("authorization")).toBeUndefined();
    }
    expect(JSON.parse(answers[2]!.text).tags).toEqual(["1.0"]);
    expect(JSON.parse(answers[1]!.text).repositories).toEqual(["private/app", "private/other"]); // upstream's catalog
  });

  it("follows upstream's blob redirect to a storage host without sending it the upstream credentials", async () => {
    const { username, password } = upstream.admin!;
    const storageBackend = await startRegistry("open");
    const storage = await startStorageHost(storageBackend.url);
    const fp = await startFaultProxy(upstream.url);
    try {
      await pushImage(storageBackend, "private/app", "1.0", image);
      const layer = image.layers[0]!;
      fp.rules = [{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "redirect", to: storage.url } }];
      const cache = await startCache(["--proxy", fp.url, "--proxy-username", username, "--proxy-password-stdin"], { stdin: `${password}\n` });
      caches.push(cache);
      const got = await pullBlob(`${cache.url}/v2/private/app/blobs/${layer.digest}`);
      expect(got.digest).toBe(layer.digest);
      const fetched = storage.log.filter((e) => e.path.includes(layer.digest) && e.method === "GET");
      expect(fetched.length).toBeGreaterThan(0);
      expect(fetched.every((e) => !e.authorization)).toBe(true);
      expect(fp.log.some((e) => e.path.includes(layer.digest) && e.authorization)).toBe(true);
    } finally {
      await fp.close();
      await storage.close();
      await storageBackend.stop();
    }
  });

  it("takes the upstream's credentials from the usual sources (a Docker config.json login)", async () => {
    const cache = await startCache(["--proxy", upstream.url], { auths: { [upstream.host]: upstream.admin! } });
    caches.push(cache);
    const m = await call(`${cache.url}/v2/private/app/manifests/1.0`, "GET", { accept: ALL_TYPES });
    expect(m.status).toBe(200);
    expect(m.h("docker-content-digest")).toBe(image.manifestDigest);
  });

  it("without credentials upstream refuses: 403 DENIED naming the upstream, not a challenge to the client", async () => {
    const cache = await startCache(["--proxy", upstream.url]);
    caches.push(cache);
    const m = await call(`${cache.url}/v2/private/app/manifests/1.0`, "GET", { accept: ALL_TYPES });
    expect(m.status).toBe(403);
    expect(m.h("www-authenticate")).toBeUndefined();
    const error = JSON.parse(m.text).errors[0];
    expect(error.code).toBe("DENIED");
    expect(error.message).toContain(`upstream ${upstream.host}/private/app refused the cache's credentials`);
  });
});

describe("regcli serve --proxy-namespace: cached namespaces beside the server's own repositories, TLS upstream with --ca-file", () => {
  let upstream: TestRegistry;
  let cache: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    upstream = await startRegistry("tls");
    image = await makeImage({ seed: "proxy-ns" });
    await pushImage(upstream, "team/app", "1.0", image);
    await pushImage(upstream, "team/app", "2.0", image);
    await pushImage(upstream, "solo", "1.0", image);
    cache = await startCache(["--proxy-namespace", `up=https://${upstream.host}`, "--ca-file", upstream.caFile!]);
  });
  afterAll(async () => {
    await cache?.stop();
    await upstream?.stop();
  });

  it("up/... is read from upstream (tags listed from there), other names are pushed and pulled as usual, pushes into up/ are refused", async () => {
    const dir = await tempDir();
    const pulled = await regcli(["copy", `${cache.host}/up/team/app:1.0`, `oci:${dir}:1.0`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const solo = await call(`${cache.url}/v2/up/solo/manifests/1.0`, "GET", { accept: ALL_TYPES });
    expect(solo.h("docker-content-digest")).toBe(image.manifestDigest);
    expect(JSON.parse((await call(`${cache.url}/v2/up/team/app/tags/list`)).text).tags).toEqual(["1.0", "2.0"]);
    const pushed = await regcli(["copy", `oci:${dir}:1.0`, `${cache.host}/own/app:1.0`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect((await call(`${cache.url}/v2/own/app/manifests/1.0`, "GET", { accept: ALL_TYPES })).h("docker-content-digest")).toBe(image.manifestDigest);
    const refused = await regcli(["copy", `oci:${dir}:1.0`, `${cache.host}/up/team/app:3.0`]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain("read-only cache");
    // The server's own repository was not looked for upstream.
    expect((await call(`${cache.url}/v2/own/other/manifests/1.0`, "GET", { accept: ALL_TYPES })).status).toBe(404);
  });
});

describe("regcli serve --proxy: tags listed page by page", () => {
  // Distribution 2.8 ignores n and last (every tag, unsorted, no Link); regcli serve pages as the spec says.
  for (const server of ["docker-registry", "regcli"] as const) {
    it(`a page (n, last) is one upstream request with the client's n and last, linked through the cache; regcli ls pages through all (${server} upstream)`, async () => {
      const upstream = await startRegistry("open", { server });
      const fp = await startFaultProxy(upstream.url);
      const cache = await startCache(["--proxy", fp.url]);
      try {
        const img = await makeImage({ seed: "proxy-tags" });
        const tags = Array.from({ length: 250 }, (_, i) => `v${i}`);
        await pushImage(upstream, "team/tags", tags[0], img);
        for (let i = 1; i < tags.length; i += 25) await Promise.all(tags.slice(i, i + 25).map((t) => pushManifest(upstream, "team/tags", t, img.manifest, img.mediaType)));
        const sorted = [...tags].sort();
        const listings = () => fp.log.filter((e) => e.path.includes("/tags/list")).map((e) => e.path);
        const first = await call(`${cache.url}/v2/team/tags/tags/list?n=10`);
        expect(first.status, first.text).toBe(200);
        expect(JSON.parse(first.text).tags).toEqual(sorted.slice(0, 10));
        expect(first.h("link")).toBe(`</v2/team/tags/tags/list?n=10&last=${sorted[9]}>; rel="next"`);
        expect(listings()).toEqual(["/v2/team/tags/tags/list?n=10"]);
        fp.reset();
        const next = await call(`${cache.url}/v2/team/tags/tags/list?n=10&last=${sorted[9]}`);
        expect(JSON.parse(next.text).tags).toEqual(sorted.slice(10, 20));
        expect(listings()).toEqual([`/v2/team/tags/tags/list?n=10&last=${sorted[9]}`]);
        fp.reset();
        const ls = await regcli(["ls", "--page-size", "10", `${cache.host}/team/tags`]);
        expect(ls.code, ls.stderr).toBe(0);
        expect(ls.stdout.trim().split("\n")).toEqual(sorted);
        expect(listings()).toHaveLength(25);
      } finally {
        await cache.stop();
        await fp.close();
        await upstream.stop();
      }
    });
  }
});

describe("regcli serve --proxy: names and flags", () => {
  it("Docker Hub's one-part names are its official images (library/NAME), as the Docker daemon sends them", async () => {
    const context = new RegistryContext();
    try {
      const hub = proxyOptions({ context, upstream: "https://registry-1.docker.io", namespaces: [{ name: "ghcr", url: "https://ghcr.io" }], ttlMs: 1000 });
      expect(hub.upstream("alpine")?.description).toBe("docker.io/library/alpine");
      expect(hub.upstream("library/alpine")?.description).toBe("docker.io/library/alpine");
      expect(hub.upstream("bitnami/redis")?.description).toBe("docker.io/bitnami/redis");
      expect(hub.upstream("ghcr/owner/tool")?.description).toBe("ghcr.io/owner/tool");
      const own = proxyOptions({ context, namespaces: [{ name: "hub", url: "https://index.docker.io" }], ttlMs: 1000 });
      expect(own.upstream("hub/alpine")?.description).toBe("docker.io/library/alpine");
      expect(own.upstream("mine/app")).toBeUndefined();
      expect([own.cached("hub/alpine"), own.cached("mine/app"), hub.cached("anything")]).toEqual([true, false, true]);
    } finally {
      await context.close();
    }
  });

  it("reuses one upstream repository per upstream name, keeping the most recently asked for, at most UPSTREAM_REPOSITORIES_KEPT", async () => {
    const context = new RegistryContext();
    try {
      const hub = proxyOptions({ context, upstream: "https://registry-1.docker.io", namespaces: [], ttlMs: 1000 });
      const alpine = hub.upstream("alpine");
      expect(hub.upstream("library/alpine")).toBe(alpine);
      for (let i = 0; i < UPSTREAM_REPOSITORIES_KEPT - 1; i++) hub.upstream(`many/n${i}`);
      expect(hub.upstream("alpine")).toBe(alpine); // still kept, and now the most recently asked for
      for (let i = 0; i < UPSTREAM_REPOSITORIES_KEPT; i++) hub.upstream(`more/n${i}`);
      const again = hub.upstream("alpine");
      expect(again).not.toBe(alpine); // dropped: memory stays bounded however many names clients ask for
      expect(again?.description).toBe("docker.io/library/alpine");
    } finally {
      await context.close();
    }
  });

  it("refuses bad proxy flags with exit 2 and one line", async () => {
    const root = await tempDir();
    const cases: Array<[string[], string, string]> = [
      [["--proxy", "http://127.0.0.1:1", "--proxy-ttl", "soon"], "", 'invalid duration "soon"'],
      [["--proxy-namespace", "Hub=https://x.example"], "", "invalid --proxy-namespace"],
      [["--proxy", "ftp://x.example"], "", "expected an http:// or https:// URL"],
      [["--proxy-username", "u", "--proxy-password-stdin"], "pw\n", "need --proxy or --proxy-namespace"],
      [["--proxy", "http://127.0.0.1:1", "--proxy-username", "u"], "", "go together"],
    ];
    for (const [flags, input, message] of cases) {
      const r = await regcli(["serve", "--addr", "127.0.0.1:0", "--root", root, ...flags], { input, timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
