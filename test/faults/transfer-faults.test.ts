// Faults injected between regcli and a real docker-registry (and regcli serve) by the fault proxy: each case
// asserts either completed-and-verified or failed-clearly with nothing half-written.
import { spawn } from "node:child_process";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir } from "../helpers/cli.js";
import { startFaultProxy, startStorageHost, type FaultProxy } from "../helpers/fault-proxy.js";
import { fetchManifest, makeImage, pushImage, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const MiB = 1024 * 1024;
const ok = <T extends { code: number; stderr: string }>(r: T): T => {
  expect(r.code, r.stderr).toBe(0);
  return r;
};

describe("transfer faults against docker-registry through the fault proxy", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let big: TestImage;
  const blobPath = (digest: string) => new RegExp(`/blobs/${digest}$`);

  beforeAll(async () => {
    reg = await startRegistry("open");
    proxy = await startFaultProxy(reg.url);
    big = await makeImage({ layers: 1, layerSize: 24 * MiB, seed: "faults-big" });
    await pushImage(reg, "big/app", "1", big);
    for (const tag of ["1", "2", "3", "4", "5", "6", "7", "8"]) await pushImage(reg, "small/app", tag, await makeImage({ layers: 1, layerSize: 4096, seed: `faults-small-${tag}` }));
  });
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  const pull = async (args: string[] = [], ref = `${proxy.host}/big/app:1`) => {
    const home = await tempDir("regcli-faults-");
    const r = await regcli(["--plain-http", ...args, "pull", "--progress", "plain", ref], { env: { REGCLI_HOME: home } });
    return { ...r, home };
  };

  const storeIsClean = async (home: string) => {
    const dir = join(home, "store", "blobs", "sha256");
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith(".partial") && !f.endsWith(".lock")) expect(sha256(await readFile(join(dir, f)))).toBe(`sha256:${f}`);
    }
  };

  it("a download reset mid-blob resumes with Range: the layer crosses the wire about once", async () => {
    const layer = big.layers[0]!;
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "reset-response", after: 10 * MiB } }];
    const r = ok(await pull());
    expect(r.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.faultsInjected).toBe(1);
    const gets = proxy.log.filter((e) => e.method === "GET" && blobPath(layer.digest).test(e.path));
    expect(gets).toHaveLength(2);
    expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
    const sent = proxy.bytesSent(blobPath(layer.digest), "GET");
    expect(sent).toBeGreaterThanOrEqual(layer.size);
    expect(sent).toBeLessThan(layer.size + 2 * MiB); // a restart would have re-sent the first 10 MiB
    await storeIsClean(r.home);
  });

  it("a truncated body and a stalled body (--timeout) both resume and verify", async () => {
    const layer = big.layers[0]!;
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "truncate", after: 5 * MiB } }];
    expect(ok(await pull()).stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.bytesSent(blobPath(layer.digest), "GET")).toBeLessThan(layer.size + 2 * MiB);
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "stall", after: 3 * MiB } }];
    const stalled = ok(await pull(["--timeout", "1"]));
    expect(stalled.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.faultsInjected).toBe(1);
  });

  it("a flipped byte is caught; one re-fetch heals a transient flip, a persistent one fails with exit 5 and no image", async () => {
    const layer = big.layers[0]!;
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "flip", at: 1234 } }];
    const healed = ok(await pull());
    expect(healed.stdout.trim()).toBe(big.manifestDigest);
    expect(healed.stderr).toMatch(/retrying from the start \(digest mismatch/);
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), fault: { kind: "flip", at: 1234 } }];
    const bad = await pull();
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain(`digest mismatch from ${proxy.host}: expected ${layer.digest}`);
    expect(bad.stderr.trim().split("\n").filter((l) => l.startsWith("regcli: error")).length).toBe(1);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const images = await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: bad.home } });
    expect(JSON.parse(images.stdout)).toEqual([]);
    await storeIsClean(bad.home);
  });

  it("503s and a 429 with Retry-After are retried; a registry that keeps failing is reported after N tries", async () => {
    proxy.reset();
    proxy.rules = [
      { method: "GET", path: /\/manifests\//, times: 2, fault: { kind: "status", status: 503 } },
      { method: "GET", path: /\/blobs\//, nth: 1, fault: { kind: "status", status: 429, headers: { "retry-after": "1" } } },
    ];
    const started = Date.now();
    expect(ok(await pull()).stdout.trim()).toBe(big.manifestDigest);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(proxy.faultsInjected).toBe(3);
    proxy.reset();
    proxy.rules = [{ method: "GET", path: /\/manifests\//, fault: { kind: "status", status: 500 } }];
    const failed = await pull(["--retries", "2"]);
    expect(failed.code).toBe(5);
    expect(failed.stderr).toMatch(/after 3 tries/);
    expect(proxy.log.filter((e) => /\/manifests\//.test(e.path)).length).toBe(3);
    // The same for a HEAD (no body to read the registry's error from): reported, not waited on forever.
    proxy.reset();
    proxy.rules = [{ method: "HEAD", path: /\/manifests\//, fault: { kind: "status", status: 500 } }];
    const head = await regcli(["--plain-http", "--retries", "2", "digest", `${proxy.host}/big/app:1`], { timeoutMs: 20_000 });
    expect(head.code, head.stderr).toBe(5);
    expect(head.stderr).toMatch(/after 3 tries/);
  });

  it("a 502, a 504 and a 429 without Retry-After are retried with backoff; the pull completes verified", async () => {
    proxy.reset();
    proxy.rules = [
      { method: "GET", path: /\/manifests\//, nth: 1, fault: { kind: "status", status: 502 } },
      { method: "GET", path: blobPath(big.layers[0]!.digest), nth: 1, fault: { kind: "status", status: 504 } },
      { method: "GET", path: blobPath(big.config.digest), nth: 1, fault: { kind: "status", status: 429 } },
    ];
    const r = ok(await pull());
    expect(r.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.faultsInjected).toBe(3);
    expect(proxy.log.filter((e) => e.status === 502 || e.status === 504 || e.status === 429)).toHaveLength(3);
    await storeIsClean(r.home);
  });

  it("a copy that meets 429 Retry-After (seconds, then an HTTP date) waits as asked, says so, and succeeds", async () => {
    const copy = (dst: string, args: string[] = []) => regcli(["--plain-http", ...args, "copy", `${proxy.host}/small/app:1`, `${reg.host}/${dst}:1`]);
    proxy.reset();
    proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, nth: 1, fault: { kind: "status", status: 429, headers: { "retry-after": "1" } } }];
    let started = Date.now();
    let r = ok(await copy("waited/secs"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(r.stderr).toContain(`${proxy.host}: rate limited (HTTP 429), waiting 1.0 s as its Retry-After asks (retry 1 of 3)`);
    expect(proxy.faultsInjected).toBe(1);

    proxy.reset();
    const at = new Date(Date.now() + 2000).toUTCString(); // whole seconds: a wait of 1 to 2 s
    proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, nth: 1, fault: { kind: "status", status: 429, headers: { "retry-after": at } } }];
    started = Date.now();
    r = ok(await copy("waited/date", ["--progress", "json"]));
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const events = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const wait = events.find((e) => e.type === "wait");
    expect(wait).toMatchObject({ host: proxy.host, status: 429, retryAfter: at, retry: 1, retries: 3 });
    expect(wait!.waitMs as number).toBeGreaterThan(0);
    expect(wait!.waitMs as number).toBeLessThanOrEqual(2000);

    // An hour is more than regcli waits: it fails at once and says when to come back, instead of asking again.
    proxy.reset();
    proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, fault: { kind: "status", status: 429, headers: { "retry-after": "3600" } } }];
    started = Date.now();
    const refused = await copy("waited/hour");
    expect(refused.code).toBe(5);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(refused.stderr).toContain(`${proxy.host} asks to wait 60 min (HTTP 429, Retry-After: 3600), longer than regcli waits (60 s)`);
    expect(refused.stderr).toMatch(/try again after \d{4}-/);
    expect(proxy.faultsInjected).toBe(1);
  });

  it("with token auth: a sync that meets 429 Retry-After on a manifest GET waits, says so, succeeds, and fetches no token beyond a clean run's", async () => {
    const treg = await startRegistry("token");
    const tproxy = await startFaultProxy(treg.url);
    try {
      await pushImage(treg, "tok/app", "1", await makeImage({ layers: 1, layerSize: 4096, seed: "faults-token" }));
      const home = await tempDir("regcli-token-429-");
      const auth = Buffer.from(`${treg.admin!.username}:${treg.admin!.password}`).toString("base64");
      await writeFile(join(home, "config.json"), JSON.stringify({ auths: { [tproxy.host]: { auth } } }));
      const sync = async (dst: string) => {
        const before = treg.issued!.count;
        const r = ok(await regcli(["--plain-http", "sync", `${tproxy.host}/tok/app`, `${tproxy.host}/${dst}`], { env: { REGCLI_HOME: home, DOCKER_CONFIG: home } }));
        return { ...r, tokens: treg.issued!.count - before };
      };
      const clean = await sync("tok/clean");
      expect(clean.tokens).toBeGreaterThan(0);

      tproxy.reset();
      tproxy.rules = [{ method: "GET", path: /\/tok\/app\/manifests\/1$/, nth: 1, fault: { kind: "status", status: 429, headers: { "retry-after": "1" } } }];
      const started = Date.now();
      const limited = await sync("tok/limited");
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(tproxy.faultsInjected).toBe(1);
      expect(limited.stderr).toContain(`${tproxy.host}: rate limited (HTTP 429), waiting 1.0 s as its Retry-After asks (retry 1 of 3)`);
      expect(limited.stderr).toMatch(/1 copied, 0 skipped, 0 failed/);
      // The 429 is no auth challenge: the token in hand is used again, none is fetched on its account.
      expect(limited.tokens).toBe(clean.tokens);
      expect((await fetchManifest(treg, "tok/limited", "1")).status).toBe(200);
    } finally {
      await Promise.all([tproxy.close(), treg.stop()]);
    }
  });

  it("Docker Hub's ratelimit headers: low remaining paces manifest GETs (said once); regcli ratelimit reads them with a HEAD", async () => {
    const headers = { "ratelimit-limit": "20;w=2", "ratelimit-remaining": "2;w=2", "docker-ratelimit-source": "192.0.2.7" };
    proxy.reset();
    proxy.rules = [{ path: /\/manifests\//, fault: { kind: "headers", set: headers } }];
    const started = Date.now();
    // --jobs 1: 4 images at a time, so the 5th to 8th manifest GETs start after an answer reported the limit.
    const r = ok(await regcli(["--plain-http", "copy", "--all-tags", "--jobs", "1", `${proxy.host}/small/app`, `${reg.host}/paced/app`]));
    const elapsed = Date.now() - started;
    const notes = r.stderr.split("\n").filter((l) => l.includes("pulls left"));
    expect(notes).toEqual([`${proxy.host}: 2 of 20 pulls left in the rate limit window (2 s); slowing down to one manifest request every 1 s`]);
    expect(proxy.log.filter((e) => e.method === "GET" && /\/manifests\//.test(e.path))).toHaveLength(8);
    expect(elapsed).toBeGreaterThanOrEqual(2900); // at least 4 GETs paced a second apart: waits of 0, 1, 2 and 3 s

    proxy.reset();
    proxy.rules = [{ method: "HEAD", path: /\/manifests\//, fault: { kind: "headers", set: { ...headers, "ratelimit-remaining": "17;w=2" } } }];
    const text = ok(await regcli(["--plain-http", "ratelimit", `${proxy.host}/small/app:1`]));
    expect(text.stdout).toMatch(/^registry\s+127\.0\.0\.1:\d+\nlimit\s+20\nremaining\s+17\nwindow\s+2 s\nsource\s+192\.0\.2\.7\n$/);
    const json = JSON.parse(ok(await regcli(["--plain-http", "ratelimit", "--format", "json", `${proxy.host}/small/app:1`])).stdout);
    expect(json).toEqual({
      registry: proxy.host,
      reported: true,
      limit: 20,
      remaining: 17,
      window: 2,
      source: "192.0.2.7",
      headers: { ...headers, "ratelimit-remaining": "17;w=2" },
    });
    expect(proxy.log.map((e) => e.method).filter((m) => m !== "HEAD" && m !== "GET")).toEqual([]);
    expect(proxy.log.filter((e) => /\/manifests\//.test(e.path)).every((e) => e.method === "HEAD")).toBe(true);

    proxy.reset();
    proxy.rules = [];
    const none = ok(await regcli(["--plain-http", "ratelimit", `${proxy.host}/small/app:1`]));
    expect(none.stdout).toBe(`${proxy.host}: no rate limit reported\n`);
    expect(JSON.parse(ok(await regcli(["--plain-http", "ratelimit", "--format", "json", `${proxy.host}/small/app:1`])).stdout)).toEqual({ registry: proxy.host, reported: false });
  });

  it("a Docker-Content-Digest that disagrees with the manifest bytes is refused (exit 5)", async () => {
    proxy.reset();
    proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, fault: { kind: "header", name: "docker-content-digest", value: `sha256:${"0".repeat(64)}` } }];
    const r = await pull();
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/digest mismatch .*Docker-Content-Digest/);
  });

  it("a Content-Length larger than the body is a cut body: resumed and verified", async () => {
    const layer = big.layers[0]!;
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "header", name: "content-length", value: String(layer.size + 100) } }];
    const r = await pull();
    // The size disagrees with the descriptor: refused as integrity, then fetched once more from the start.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(big.manifestDigest);
  });

  it("blob GETs redirected to a storage host on another address are followed without credentials", async () => {
    const storage = await startStorageHost(reg.url);
    try {
      proxy.reset();
      proxy.rules = [{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "redirect", to: storage.url } }];
      const home = await tempDir("regcli-faults-");
      const cfg = await tempDir("regcli-docker-");
      const auth = Buffer.from("alice:secret").toString("base64");
      await import("node:fs/promises").then((fs) => fs.writeFile(join(cfg, "config.json"), JSON.stringify({ auths: { [proxy.host]: { auth } } })));
      const r = ok(await regcli(["--plain-http", "pull", `${proxy.host}/big/app:1`], { env: { REGCLI_HOME: home, DOCKER_CONFIG: cfg } }));
      expect(r.stdout.trim()).toBe(big.manifestDigest);
      expect(storage.log.length).toBeGreaterThanOrEqual(2);
      expect(storage.log.every((e) => !e.authorization)).toBe(true);
    } finally {
      await storage.close();
    }
  });

  it("an upload cut before the registry saw a chunk resumes at the registry's offset (--chunk-size)", async () => {
    const layer = big.layers[0]!;
    const layout = await tempDir("regcli-layout-");
    ok(await regcli(["--plain-http", "pull", `${reg.host}/big/app:1`, "-o", layout, "--preserve-digests"]));
    proxy.reset();
    proxy.rules = [{ method: "PATCH", path: /\/blobs\/uploads\//, nth: 3, fault: { kind: "reset-request-unforwarded", after: 1 * MiB } }];
    const r = ok(await regcli(["--plain-http", "--chunk-size", "4MiB", "push", `oci:${layout}`, `${proxy.host}/pushed/chunks:1`]));
    expect(r.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.faultsInjected).toBe(1);
    // Sent once, plus the 1 MiB that the cut swallowed: chunks 1 and 2 were not sent again.
    const received = proxy.bytesReceived(/\/blobs\/uploads\//);
    expect(received).toBeLessThan(layer.size + big.config.size + 2 * MiB);
    expect(proxy.log.some((e) => e.method === "GET" && /\/blobs\/uploads\//.test(e.path))).toBe(true);
    const stored = await fetchManifest(reg, "pushed/chunks", "1");
    expect(stored.body.equals(big.manifest)).toBe(true);
  });

  it("an upload cut mid-body that the registry dropped starts a new upload and still completes", async () => {
    const layout = await tempDir("regcli-layout-");
    ok(await regcli(["--plain-http", "pull", `${reg.host}/big/app:1`, "-o", layout, "--preserve-digests"]));
    proxy.reset();
    proxy.rules = [{ method: "PUT", path: /\/blobs\/uploads\//, nth: 1, fault: { kind: "reset-request", after: 8 * MiB } }];
    const r = ok(await regcli(["--plain-http", "push", `oci:${layout}`, `${proxy.host}/pushed/mono:1`]));
    expect(r.stdout.trim()).toBe(big.manifestDigest);
    expect((await fetchManifest(reg, "pushed/mono", "1")).body.equals(big.manifest)).toBe(true);
  });

  it("an upload whose answer was lost (the registry completed it) is recognised, not failed", async () => {
    const layout = await tempDir("regcli-layout-");
    ok(await regcli(["--plain-http", "pull", `${reg.host}/big/app:1`, "-o", layout, "--preserve-digests"]));
    proxy.reset();
    // The whole config body reaches the registry, then the connection dies before the answer comes back.
    const configPut = new RegExp(`/blobs/uploads/.*digest=${big.config.digest.replace(":", "(:|%3A)")}`);
    proxy.rules = [{ method: "PUT", path: configPut, nth: 1, fault: { kind: "reset-request", after: 1024 * 1024 } }];
    const r = ok(await regcli(["--plain-http", "push", `oci:${layout}`, `${proxy.host}/pushed/lost:1`]));
    expect(r.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.faultsInjected).toBe(1);
    expect((await fetchManifest(reg, "pushed/lost", "1")).body.equals(big.manifest)).toBe(true);
  });

  it("a cut upload whose status is read before the registry handled the cut: the refused session is abandoned for a new one, one fault one try", async () => {
    // The CI flake of the 200-tag copy: Distribution writes a cut request's bytes only when it notices the cut. A status
    // GET answered before that reports the old offset (204, Range 0-0); the next PUT on that state is then refused
    // (404 BLOB_UPLOAD_INVALID, "upload resumed at wrong offset") and the session never accepted again.
    const img = await makeImage({ layers: 1, layerSize: 64 * 1024, seed: "faults-stale-status" });
    await pushImage(reg, "stale/src", "1", img);
    const layerPut = new RegExp(`/blobs/uploads/.*digest=${img.layers[0]!.digest.replace(":", "(:|%3A)")}`);
    proxy.reset();
    proxy.rules = [
      { method: "PUT", path: layerPut, nth: 1, fault: { kind: "reset-request", after: 512, lateUntilNext: true } },
      // The registry has handled the cut before the PUT that follows the status GET.
      { method: "PUT", path: layerPut, nth: 2, fault: { kind: "delay", ms: 500 } },
    ];
    // One fault, one retry: the refusal that follows from it is not a second failure.
    const r = ok(await regcli(["--plain-http", "--retries", "1", "copy", `${reg.host}/stale/src:1`, `${proxy.host}/stale/dst:1`]));
    expect(r.stdout.trim()).toBe(img.manifestDigest);
    const session = /\/blobs\/uploads\/([0-9a-f-]+)\?/.exec(proxy.log.find((e) => e.fault === "reset-request")!.path)![1]!;
    const onSession = proxy.log.filter((e) => e.path.includes(`/blobs/uploads/${session}?`)).map((e) => `${e.method} ${e.status ?? "cut"}`);
    // The stale status, the refused PUT, and nothing more on that session: no status GET of a session already refused.
    expect(onSession.sort()).toEqual(["GET 204", "PUT 404", "PUT cut"]);
    expect((await fetchManifest(reg, "stale/dst", "1")).body.equals(img.manifest)).toBe(true);
  });

  it("pull -o FILE.tar and -o DIR killed mid-blob leave the previous output intact and nothing that looks complete", async () => {
    const layer = big.layers[0]!;
    const small = await makeImage({ layers: 1, layerSize: 64 * 1024, seed: "faults-small" });
    await pushImage(reg, "small/app", "1", small);
    const out = await tempDir("regcli-faults-out-");
    const tar = join(out, "image.tar");
    const dir = join(out, "layout");
    ok(await regcli(["--plain-http", "pull", `${reg.host}/small/app:1`, "-o", tar]));
    ok(await regcli(["--plain-http", "pull", `${reg.host}/small/app:1`, "-o", dir]));
    const tarBefore = await readFile(tar);
    const indexBefore = await readFile(join(dir, "index.json"));
    for (const target of [tar, dir]) {
      proxy.reset();
      proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "stall", after: 8 * MiB } }];
      const child = spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "--plain-http", "pull", `${proxy.host}/big/app:1`, "-o", target], {
        env: { ...process.env, NO_COLOR: "1" },
        stdio: "ignore",
      });
      // Kill once the stalled layer's bytes are on disk in the half-written output.
      const written = async () => {
        const files = target === tar ? (await readdir(out)).filter((f) => f.endsWith(".partial")).map((f) => join(out, f)) : [join(dir, "blobs", "sha256", `${layer.digest.slice(7)}.partial`)];
        const sizes = await Promise.all(files.map((f) => stat(f).then((st) => st.size, () => 0)));
        return Math.max(0, ...sizes) >= 8 * MiB;
      };
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !(await written())) await new Promise((r) => setTimeout(r, 20));
      child.kill("SIGKILL");
      await new Promise((r) => child.on("close", r));
      expect(proxy.bytesSent(blobPath(layer.digest), "GET")).toBeGreaterThanOrEqual(8 * MiB);
    }
    // The archive is the old one, byte for byte; the half-written one is only a *.partial beside it.
    expect((await readFile(tar)).equals(tarBefore)).toBe(true);
    expect((await readdir(out)).some((f) => f.startsWith("image.tar.") && f.endsWith(".partial"))).toBe(true);
    for (const f of await readdir(out)) if (f !== "image.tar" && f !== "layout") expect(f).toMatch(/\.partial$/);
    // The layout still names only the old image, every blob under a digest name verifies, the cut one is a partial.
    expect((await readFile(join(dir, "index.json"))).equals(indexBefore)).toBe(true);
    const blobs = join(dir, "blobs", "sha256");
    const names = await readdir(blobs);
    expect(names).toContain(`${layer.digest.slice(7)}.partial`);
    for (const f of names) if (!f.endsWith(".partial") && !f.endsWith(".lock")) expect(sha256(await readFile(join(blobs, f)))).toBe(`sha256:${f}`);
    // And a re-run into the layout completes (resuming the partial).
    proxy.reset();
    proxy.rules = [];
    const again = ok(await regcli(["--plain-http", "pull", "--preserve-digests", `${proxy.host}/big/app:1`, "-o", dir]));
    expect(again.stdout.trim()).toBe(big.manifestDigest);
    expect(proxy.bytesSent(blobPath(layer.digest), "GET")).toBeLessThan(layer.size);
  });

  it("a manifest body and a tag-list body cut mid-way are fetched again; with no retries left the error is a network error", async () => {
    proxy.reset();
    proxy.rules = [
      { method: "GET", path: /\/manifests\/1$/, nth: 1, fault: { kind: "reset-response", after: 100 } },
      { method: "GET", path: /\/tags\/list/, nth: 1, fault: { kind: "reset-response", after: 10 } },
    ];
    const pulled = ok(await pull());
    expect(pulled.stdout.trim()).toBe(big.manifestDigest);
    const tags = ok(await regcli(["--plain-http", "ls", `${proxy.host}/big/app`]));
    expect(tags.stdout.trim()).toBe("1");
    expect(proxy.faultsInjected).toBe(2);
    expect(proxy.log.filter((e) => /\/manifests\/1$/.test(e.path) && e.method === "GET")).toHaveLength(2);
    proxy.reset();
    proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, fault: { kind: "reset-response", after: 100 } }];
    const failed = await pull(["--retries", "1"]);
    expect(failed.code).toBe(5);
    expect(failed.stderr).toMatch(/^regcli: error: reading manifest .*big\/app:1: .* \(after 2 tries\)/m);
    expect(failed.stderr).not.toMatch(/internal error|^\s+at /m);
  });

  it("a repository of 50 tags sharing layers moves each shared blob once", async () => {
    const base = await makeImage({ layers: 1, layerSize: 2 * MiB, seed: "shared-base" });
    const shared = base.layers[0]!;
    for (let i = 0; i < 50; i++) {
      const img = await makeImage({ layers: 1, layerSize: 1024, seed: `tag-${i}`, sharedBase: shared });
      await pushImage(reg, "many/app", `t${i}`, img);
    }
    const dst = await startRegistry("open");
    try {
      proxy.reset();
      proxy.rules = [];
      const r = ok(await regcli(["--plain-http", "copy", "--all-tags", `${proxy.host}/many/app`, `${dst.host}/many/app`]));
      expect(r.stdout.trim().split("\n")).toHaveLength(50);
      const gets = proxy.log.filter((e) => e.method === "GET" && e.path.endsWith(`/blobs/${shared.digest}`));
      expect(gets).toHaveLength(1);
      for (const i of [0, 25, 49]) {
        const src = await fetchManifest(reg, "many/app", `t${i}`);
        expect((await fetchManifest(dst, "many/app", `t${i}`)).body.equals(src.body)).toBe(true);
      }
    } finally {
      await dst.stop();
    }
  });
});

describe("upload resume against regcli serve (keeps the bytes of a cut request)", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let big: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    proxy = await startFaultProxy(reg.url);
    big = await makeImage({ layers: 1, layerSize: 24 * MiB, seed: "faults-serve" });
  });
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  it("a monolithic PUT cut mid-body continues from the byte the server holds", async () => {
    const layer = big.layers[0]!;
    const src = await startRegistry("open");
    try {
      await pushImage(src, "big/app", "1", big);
      proxy.rules = [{ method: "PUT", path: /\/blobs\/uploads\//, nth: 1, fault: { kind: "reset-request", after: 12 * MiB } }];
      const r = ok(await regcli(["--plain-http", "copy", `${src.host}/big/app:1`, `${proxy.host}/resumed/app:1`]));
      expect(r.stdout.trim()).toBe(big.manifestDigest);
      expect(proxy.faultsInjected).toBe(1);
      const received = proxy.bytesReceived(/\/blobs\/uploads\//);
      expect(received).toBeGreaterThanOrEqual(layer.size);
      expect(received).toBeLessThan(layer.size + 4 * MiB); // a restart would re-send the first 12 MiB
      expect((await fetchManifest(reg, "resumed/app", "1")).body.equals(big.manifest)).toBe(true);
    } finally {
      await src.stop();
    }
  });
});
