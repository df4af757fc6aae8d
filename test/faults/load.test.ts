// Load and auth faults against a real docker-registry (CNCF Distribution): many regcli processes sharing one
// local store, a 200-tag repository copied through a proxy that fails 5% of requests, tokens that expire
// mid-operation, and servers that ignore or misanswer Range. Every case ends verified, byte for byte.
import { createCipheriv, createHash, createSign, randomUUID, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, tempDir, type CliResult } from "../helpers/cli.js";
import { startFaultProxy, type Fault, type FaultProxy, type FaultRule, type ProxyLogEntry, type RequestInfo } from "../helpers/fault-proxy.js";
import { fetchManifest, makeImage, makeIndex, makeTar, pushBlob, pushImage, pushIndex, pushManifest, sha256, type Blob, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const MiB = 1024 * 1024;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

const ok = (r: CliResult, what = "regcli") => {
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
  return r;
};
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const blobPath = (digest: string) => new RegExp(`/blobs/${escape(digest)}$`);

/** Run `task` over `items`, at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, task: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await task(items[i]!, i);
      }
    }),
  );
  return out;
}

// ---- building images from shared layers ----

interface Layer {
  blob: Blob;
  diffId: string;
}

/** Deterministic incompressible bytes, fast enough for tens of MiB (AES-256-CTR keyed by the seed). */
function streamBytes(seed: string, size: number): Buffer {
  const key = createHash("sha256").update(seed).digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

async function makeLayer(seed: string, size: number): Promise<Layer> {
  const tar = await makeTar([{ name: `${seed}/`, type: "directory" }, { name: `${seed}/data.bin`, data: streamBytes(seed, size) }]);
  const gz = gzipSync(tar, { level: 1 });
  return { blob: { digest: sha256(gz), size: gz.length, data: gz, mediaType: OCI_LAYER }, diffId: sha256(tar) };
}

/** An OCI image manifest over these layers; `name` makes its config (and so its digest) distinct. */
function composeImage(name: string, layers: Layer[], platform = { os: "linux", architecture: "amd64" }): TestImage {
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      created: "2026-01-02T03:04:05Z",
      config: { Cmd: ["/bin/app"], Labels: { "test.name": name } },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created_by: `${name} layer ${i}` })),
    }),
  );
  const config: Blob = { digest: sha256(configBytes), size: configBytes.length, data: configBytes, mediaType: OCI_CONFIG };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.blob.digest, size: l.blob.size })),
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), mediaType: OCI_MANIFEST, config, layers: layers.map((l) => l.blob), platform };
}

// ---- checking a local store ----

interface StoreReport {
  names: Map<string, string>;
  blobs: string[];
}

/**
 * The local store is consistent: nothing transient left (.partial, .lock, temp files, ingest markers), every blob
 * file hashes to its name, every blob reachable from index.json (index -> manifests/indexes -> config + layers)
 * is present with the size its descriptor gives, and nothing else is there (no orphans). Each name appears once.
 */
async function verifyStore(home: string): Promise<StoreReport> {
  const root = join(home, "store");
  const dir = join(root, "blobs", "sha256");
  expect((await readdir(root)).sort()).toEqual(["blobs", "index.json", "oci-layout"]);
  expect(await readdir(join(root, "blobs"))).toEqual(["sha256"]);
  expect(await readdir(join(home, "ingest")).catch(() => [])).toEqual([]);
  const files = await readdir(dir);
  expect(files.filter((f) => !/^[0-9a-f]{64}$/.test(f))).toEqual([]);
  const sizes = new Map<string, number>();
  for (const f of files) {
    const bytes = await readFile(join(dir, f));
    expect(sha256(bytes), `blob file ${f}`).toBe(`sha256:${f}`);
    sizes.set(`sha256:${f}`, bytes.length);
  }

  const index = JSON.parse(await readFile(join(root, "index.json"), "utf8")) as { manifests: Array<{ digest: string; size: number; annotations?: Record<string, string> }> };
  const names = new Map<string, string>();
  for (const d of index.manifests) {
    const name = d.annotations?.["org.opencontainers.image.ref.name"];
    expect(name, `index.json entry ${d.digest} has a name`).toBeDefined();
    expect(names.has(name!), `name ${name} listed once`).toBe(false);
    names.set(name!, d.digest);
  }
  const reachable = new Map<string, number>();
  const missing: string[] = [];
  const visit = async (desc: { digest: string; size: number }): Promise<void> => {
    if (reachable.has(desc.digest)) return;
    reachable.set(desc.digest, desc.size);
    if (!sizes.has(desc.digest)) {
      missing.push(desc.digest);
      return;
    }
    expect(sizes.get(desc.digest), `size of ${desc.digest}`).toBe(desc.size);
  };
  const walk = async (desc: { digest: string; size: number }): Promise<void> => {
    await visit(desc);
    if (!sizes.has(desc.digest)) return;
    const parsed = JSON.parse((await readFile(join(dir, desc.digest.slice(7)))).toString("utf8")) as {
      manifests?: Array<{ digest: string; size: number }>;
      config?: { digest: string; size: number };
      layers?: Array<{ digest: string; size: number }>;
    };
    if (parsed.manifests) for (const child of parsed.manifests) await walk(child);
    else {
      expect(parsed.config, `manifest ${desc.digest} has a config`).toBeDefined();
      for (const b of [parsed.config!, ...(parsed.layers ?? [])]) await visit(b);
    }
  };
  for (const d of index.manifests) await walk(d);
  expect(missing, "reachable blobs missing from the store").toEqual([]);
  expect([...sizes.keys()].filter((d) => !reachable.has(d)), "orphan blobs").toEqual([]);
  return { names, blobs: [...sizes.keys()] };
}

async function storedImages(home: string): Promise<Array<{ name: string; digest: string }>> {
  const r = ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: home } }), "regcli images");
  return JSON.parse(r.stdout) as Array<{ name: string; digest: string }>;
}

// ---------------------------------------------------------------------------------------------------------------

describe("8 concurrent regcli pull processes sharing one local store", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  const refs: Array<{ repo: string; digest: string; manifest: Buffer; mediaType: string; allPlatforms: boolean }> = [];
  // Worker w pulls refs w, w+2 and w+4 (mod 7) one after another, so 8 processes run at any time and each ref is
  // pulled by 3-4 of them. Round 0 uses tag "1" (workers 0 and 7 pull the same name at the same moment); later
  // rounds use a tag of their own, so every process adds a name to index.json that no other process writes.
  const plan = Array.from({ length: 8 }, (_, w) => [0, 1, 2].map((round) => ({ k: (w + 2 * round) % 7, tag: round === 0 ? "1" : `w${w}r${round}` })));
  const allBlobs = new Set<string>();

  beforeAll(async () => {
    reg = await startRegistry("open");
    proxy = await startFaultProxy(reg.url);
    // Layers shared in overlapping groups, big enough that transfers (slowed below) truly overlap.
    const base = await makeLayer("load-base", 12 * MiB);
    const midA = await makeLayer("load-mid-a", 6 * MiB);
    const midB = await makeLayer("load-mid-b", 6 * MiB);
    const images: TestImage[] = [];
    for (let i = 0; i < 6; i++) {
      const mids = [i < 4 ? midA : undefined, i >= 3 ? midB : undefined].filter((l): l is Layer => l !== undefined);
      images.push(composeImage(`load-${i}`, [base, ...mids, await makeLayer(`load-unique-${i}`, 3 * MiB)]));
    }
    await Promise.all(images.map((img, i) => pushImage(reg, `load/app${i}`, "1", img)));
    for (const [i, img] of images.entries()) refs.push({ repo: `load/app${i}`, digest: img.manifestDigest, manifest: img.manifest, mediaType: img.mediaType, allPlatforms: false });
    // A two-platform index too, pulled whole (--all-platforms): the store then holds index -> manifests -> blobs.
    const amd = composeImage("load-multi-amd64", [base, midA, await makeLayer("load-multi-amd64", 2 * MiB)], { os: "linux", architecture: "amd64" });
    const arm = composeImage("load-multi-arm64", [base, midB, await makeLayer("load-multi-arm64", 2 * MiB)], { os: "linux", architecture: "arm64" });
    const index = makeIndex([amd, arm]);
    await pushIndex(reg, "load/multi", "1", index);
    refs.push({ repo: "load/multi", digest: index.manifestDigest, manifest: index.manifest, mediaType: index.mediaType, allPlatforms: true });
    for (const img of [...images, amd, arm]) for (const b of [img.config, ...img.layers]) allBlobs.add(b.digest);
    for (const { k, tag } of plan.flat()) if (tag !== "1") await pushManifest(reg, refs[k]!.repo, tag, refs[k]!.manifest, refs[k]!.mediaType);
  }, 120_000);
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  it("all exit 0; the store verifies (hashes, nothing partial, no orphans, nothing missing) and lists every image", async () => {
    const home = await tempDir("regcli-load-");
    proxy.reset();
    // Every blob GET waits 150 ms before it is forwarded: downloads of one store's blobs overlap across processes,
    // and the per-blob locks are held while other processes want the same blob.
    proxy.rules = [{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "delay", ms: 150 } }];
    let maxInFlight = 0;
    const sampler = setInterval(() => (maxInFlight = Math.max(maxInFlight, proxy.inFlight(/\/blobs\/sha256:/, "GET"))), 2);
    const started = Date.now();
    const results = await Promise.all(
      plan.map(async (pulls) => {
        const out: Array<{ ref: (typeof refs)[number]; name: string; result: CliResult }> = [];
        for (const { k, tag } of pulls) {
          const ref = refs[k]!;
          const name = `${proxy.host}/${ref.repo}:${tag}`;
          const args = ["--plain-http", "pull", ...(ref.allPlatforms ? ["--all-platforms"] : []), name];
          out.push({ ref, name, result: await regcli(args, { env: { REGCLI_HOME: home }, timeoutMs: 90_000 }) });
        }
        return out;
      }),
    );
    clearInterval(sampler);
    const elapsed = Date.now() - started;
    const flat = results.flat();
    expect(flat).toHaveLength(24);
    for (const { name, ref, result } of flat) {
      ok(result, `pull ${name}`);
      expect(result.stdout.trim()).toBe(ref.digest);
    }
    // Transfers overlapped: several blob GETs were in flight at once.
    expect(maxInFlight).toBeGreaterThanOrEqual(2);
    // The per-blob lock makes each blob cross the wire once for the whole store, however many processes want it.
    const blobGets = proxy.log.filter((e) => e.method === "GET" && /\/blobs\/sha256:/.test(e.path));
    const perBlob = new Map<string, number>();
    for (const e of blobGets) {
      const digest = /sha256:[0-9a-f]{64}/.exec(e.path)![0];
      perBlob.set(digest, (perBlob.get(digest) ?? 0) + 1);
    }
    expect([...perBlob.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(new Set(perBlob.keys())).toEqual(allBlobs);
    expect(blobGets.every((e) => e.status === 200)).toBe(true);

    const report = await verifyStore(home);
    const expectedNames = new Map(flat.map((p) => [p.name, p.ref.digest]));
    expect(expectedNames.size).toBe(23);
    expect(report.names).toEqual(expectedNames);
    for (const d of allBlobs) expect(report.blobs).toContain(d);
    const listed = await storedImages(home);
    expect(new Map(listed.map((i) => [i.name, i.digest]))).toEqual(expectedNames);
    console.log(`[load] 24 pulls (${expectedNames.size} names) by 8 concurrent processes in ${elapsed} ms; max blob GETs in flight ${maxInFlight}; ${blobGets.length} blob GETs for ${allBlobs.size} blobs; store: ${report.blobs.length} blobs`);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------------

describe("copy --all-tags of 200 tags through a proxy failing 5% of requests", () => {
  const TAGS = 200;
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry("open"), startRegistry("open")]);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(src.url, { seed: 20260101 }), startFaultProxy(dst.url, { seed: 20260202 })]);
    // Shared blobs are pushed once; then per tag only its config, a tiny unique layer and the manifest.
    const base = await makeLayer("tags-base", 2 * MiB);
    const shared = await Promise.all([0, 1, 2].map((i) => makeLayer(`tags-shared-${i}`, 256 * 1024)));
    for (const l of [base, ...shared]) await pushBlob(src, "many/app", l.blob);
    const tags = Array.from({ length: TAGS }, (_, i) => `v${String(i).padStart(3, "0")}`);
    await pool(tags, 16, async (tag, i) => {
      const unique = await makeLayer(`tags-unique-${tag}`, 1024);
      const img = composeImage(`tags-${tag}`, [base, shared[i % 3]!, unique]);
      await pushBlob(src, "many/app", img.config);
      await pushBlob(src, "many/app", unique.blob);
      await pushManifest(src, "many/app", tag, img.manifest, img.mediaType);
      expected.set(tag, img.manifestDigest);
    });
  }, 120_000);
  afterAll(async () => Promise.all([srcProxy?.close(), dstProxy?.close(), src?.stop(), dst?.stop()]));

  it("completes (exit 0) and every destination tag has the source's manifest digest", async () => {
    const rate = (share: number): Pick<FaultRule, "rate"> => ({ rate: share });
    const status = (s: number, headers?: Record<string, string>): Fault => ({ kind: "status", status: s, headers });
    // About 5% of all requests in each direction fail; the first rule that fires wins.
    // Blob GETs are about 60% of the source's requests, blob upload PUTs about a third of the destination's.
    srcProxy.rules = [
      { ...rate(0.01), fault: status(503) },
      { ...rate(0.01), fault: { kind: "reset-before" } },
      { ...rate(0.0075), fault: status(429, { "retry-after": "0" }) },
      { ...rate(0.005), fault: status(429, { "retry-after": "1" }) },
      // Mid-body cuts only on blob GETs (those resume with Range): small blobs early, big ones deeper.
      { method: "GET", path: /\/blobs\/sha256:/, ...rate(0.015), fault: { kind: "reset-response", after: 700 } },
      { method: "GET", path: /\/blobs\/sha256:/, ...rate(0.01), fault: { kind: "reset-response", after: 128 * 1024 } },
    ];
    dstProxy.rules = [
      { ...rate(0.0125), fault: status(503) },
      { ...rate(0.0125), fault: { kind: "reset-before" } },
      { ...rate(0.01), fault: status(429, { "retry-after": "0" }) },
      // An upload cut after part of its body reached the registry.
      { method: "PUT", path: /\/blobs\/uploads\//, ...rate(0.04), fault: { kind: "reset-request", after: 512 } },
    ];
    const started = Date.now();
    const r = await regcli(["--plain-http", "--retries", "5", "copy", "--all-tags", `${srcProxy.host}/many/app`, `${dstProxy.host}/many/app`], { timeoutMs: 90_000 });
    const elapsed = Date.now() - started;
    const kinds = (log: ProxyLogEntry[]) => {
      const out: Record<string, number> = {};
      for (const e of log) if (e.fault) out[`${e.fault}${e.fault === "status" ? ` ${e.status}` : ""}`] = (out[`${e.fault}${e.fault === "status" ? ` ${e.status}` : ""}`] ?? 0) + 1;
      return out;
    };
    console.log(
      `[load] copy --all-tags ${TAGS} tags: exit ${r.code} in ${elapsed} ms; source: ${srcProxy.log.length} requests, ${srcProxy.faultsInjected} faults ${JSON.stringify(kinds(srcProxy.log))}; destination: ${dstProxy.log.length} requests, ${dstProxy.faultsInjected} faults ${JSON.stringify(kinds(dstProxy.log))}`,
    );
    ok(r, "copy --all-tags");
    expect(srcProxy.faultsInjected).toBeGreaterThan(0);
    expect(dstProxy.faultsInjected).toBeGreaterThan(0);
    // Faults of more than one kind were met on each side.
    expect(Object.keys(kinds(srcProxy.log)).length).toBeGreaterThan(1);
    expect(Object.keys(kinds(dstProxy.log)).length).toBeGreaterThan(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(TAGS);
    const printed = new Map(lines.map((l) => l.split(" ")).map(([name, digest]) => [name!.slice(name!.lastIndexOf(":") + 1), digest!]));
    expect(printed).toEqual(expected);

    // Checked directly against both registries, not through the proxies.
    const listRes = await request(`${dst.url}/v2/many/app/tags/list?n=1000`, { dispatcher: dst.dispatcher });
    const listed = ((await listRes.body.json()) as { tags: string[] }).tags;
    expect(new Set(listed)).toEqual(new Set(expected.keys()));
    const mismatches: string[] = [];
    await pool([...expected.keys()], 16, async (tag) => {
      const [a, b] = await Promise.all([fetchManifest(src, "many/app", tag), fetchManifest(dst, "many/app", tag)]);
      const ok = a.status === 200 && b.status === 200 && a.digest === expected.get(tag) && b.digest === a.digest && sha256(b.body) === a.digest && b.body.equals(a.body);
      if (!ok) mismatches.push(`${tag}: source ${a.status} ${a.digest}, destination ${b.status} ${b.digest}`);
    });
    expect(mismatches).toEqual([]);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------------

/** Mint a token the registry trusts but that expired a minute ago, with the issuer's own key and certificate. */
function mintExpired(reg: TestRegistry, access: Array<{ type: string; name: string; actions: string[] }>): string {
  const dir = join(reg.root, "..");
  const key = readFileSync(join(dir, "issuer.key"), "utf8");
  const cert = new X509Certificate(readFileSync(join(dir, "issuer.pem"))).raw.toString("base64");
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: "test-issuer", sub: "alice", aud: "test-registry", exp: now - 60, nbf: now - 660, iat: now - 660, jti: `expired-${now}`, access };
  const input = `${b64({ alg: "RS256", typ: "JWT", x5c: [cert] })}.${b64(claims)}`;
  return `${input}.${createSign("RSA-SHA256").update(input).sign(key).toString("base64url")}`;
}

/**
 * What the registry itself answers a request carrying an expired token: 401 with its Bearer challenge, whose scope
 * names the actions in `actions`' order. (Distribution orders the actions of a challenge at random: for an upload
 * about one answer in ten says "push,pull" rather than "pull,push", so the probe is repeated until it does.)
 */
async function expiredAnswer(reg: TestRegistry, method: "GET" | "PUT", path: string, actions: string[]): Promise<Fault & { kind: "status" }> {
  const repo = /^\/v2\/(.+?)\/(?:manifests|blobs)\//.exec(path)![1]!;
  const token = mintExpired(reg, [{ type: "repository", name: repo, actions }]);
  const scope = `repository:${repo}:${actions.join(",")}`;
  for (let attempt = 0; attempt < 500; attempt++) {
    const res = await request(`${reg.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, dispatcher: reg.dispatcher });
    const body = await res.body.text();
    const challenge = String(res.headers["www-authenticate"]);
    expect(res.statusCode).toBe(401);
    expect(challenge).toMatch(new RegExp(`^Bearer realm="${escape(reg.tokenRealm!)}",service="test-registry",scope="repository:${escape(repo)}:[a-z,]+",error="invalid_token"$`));
    if (!challenge.includes(`scope="${scope}"`)) continue;
    return { kind: "status", status: 401, headers: { "www-authenticate": challenge, "content-type": String(res.headers["content-type"]) }, body };
  }
  throw new Error(`${reg.host} never challenged ${method} ${path} with scope ${scope}`);
}

/**
 * Token expiry in the proxy: tokens are recorded as requests carry them; when `trigger` first matches a request,
 * every token seen so far (that request's included) has expired, and any later request carrying one is answered
 * 401 with the registry's own challenge for an expired token. Fresh tokens pass.
 */
function expiry(reg: TestRegistry, trigger: (req: RequestInfo) => boolean, answers: { pull: Fault; push: Fault }) {
  const seen = new Set<string>();
  const state = { armed: false, issuedAtExpiry: -1 };
  const expired = (req: RequestInfo): boolean => {
    const auth = req.headers.authorization;
    if (typeof auth !== "string") return false;
    if (!state.armed) {
      seen.add(auth);
      if (!trigger(req)) return false;
      state.armed = true;
      state.issuedAtExpiry = reg.issued!.count;
    }
    return seen.has(auth);
  };
  // As Distribution does: GET and HEAD (upload status included) are challenged for pull, the rest for pull and push.
  const isRead = (req: RequestInfo) => req.method === "GET" || req.method === "HEAD";
  const rules: FaultRule[] = [
    { when: (req) => isRead(req) && expired(req), fault: answers.pull },
    { when: (req) => !isRead(req) && expired(req), fault: answers.push },
  ];
  return { rules, state };
}

describe("a token that expires mid-operation (token auth registry behind the proxy)", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: TestImage;
  let cfg: string;

  beforeAll(async () => {
    reg = await startRegistry("token");
    proxy = await startFaultProxy(reg.url);
    img = await makeImage({ layers: 2, layerSize: 6 * MiB, seed: "token-expiry" });
    await pushImage(reg, "secure/app", "1", img);
    cfg = await dockerConfigDir({ [proxy.host]: reg.admin!, [reg.host]: reg.admin! });
  }, 60_000);
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  const fetchBlobDigest = async (repo: string, digest: string) => {
    const res = await request(`${reg.url}/v2/${repo}/blobs/${digest}`, { headers: { authorization: (await reg.authHeader(`repository:${repo}:pull`))! }, dispatcher: reg.dispatcher });
    return res.statusCode === 200 ? sha256(Buffer.from(await res.body.arrayBuffer())) : `HTTP ${res.statusCode}`;
  };

  it("pull: blob GETs refused with the expired token get a fresh token and the pull completes, verified", async () => {
    const answers = {
      pull: await expiredAnswer(reg, "GET", `/v2/secure/app/blobs/${img.layers[0]!.digest}`, ["pull"]),
      push: await expiredAnswer(reg, "PUT", `/v2/secure/app/blobs/uploads/${randomUUID()}`, ["pull", "push"]),
    };
    let blobGets = 0;
    // The manifest and the first blob GET succeed with the token; from the second blob GET on it has expired.
    const { rules, state } = expiry(reg, (req) => req.method === "GET" && /\/blobs\/sha256:/.test(req.path) && ++blobGets === 2, answers);
    proxy.reset();
    proxy.rules = rules;
    const home = await tempDir("regcli-token-");
    const r = ok(await regcli(["--plain-http", "pull", `${proxy.host}/secure/app:1`], { env: { REGCLI_HOME: home, DOCKER_CONFIG: cfg } }));
    expect(r.stdout.trim()).toBe(img.manifestDigest);
    expect(state.armed).toBe(true);
    // (The registry's own 401s to the unauthenticated /v2/ ping are not refusals.)
    const refused = proxy.log.filter((e) => e.fault === "status");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.every((e) => e.method === "GET" && /\/blobs\/sha256:/.test(e.path) && e.status === 401)).toBe(true);
    // A token was requested after the expiry, and every refused blob was then served.
    expect(reg.issued!.count).toBeGreaterThan(state.issuedAtExpiry);
    for (const e of refused) expect(proxy.log.some((o) => o.path === e.path && o.method === "GET" && o.status === 200 && proxy.log.indexOf(o) > proxy.log.indexOf(e))).toBe(true);
    const report = await verifyStore(home);
    expect(report.names.get(`${proxy.host}/secure/app:1`)).toBe(img.manifestDigest);
    console.log(`[load] token pull: ${refused.length} requests refused as expired, ${reg.issued!.count - state.issuedAtExpiry} tokens fetched after the expiry`);
  });

  it("push (one streamed PUT per blob) and copy (--chunk-size: PATCH) refresh the token after a 401 on the upload and complete", async () => {
    const layout = await tempDir("regcli-token-layout-");
    ok(await regcli(["--plain-http", "pull", `${reg.host}/secure/app:1`, "-o", layout, "--preserve-digests"], { env: { DOCKER_CONFIG: cfg } }));
    const big = img.layers[0]!;

    for (const c of [
      { repo: "secure/pushed", method: "PUT", args: ["push", `oci:${layout}`, `${proxy.host}/secure/pushed:1`] },
      { repo: "secure/chunked", method: "PATCH", args: ["--chunk-size", "2MiB", "copy", `${reg.host}/secure/app:1`, `${proxy.host}/secure/chunked:1`] },
    ]) {
      const answers = {
        pull: await expiredAnswer(reg, "GET", `/v2/${c.repo}/manifests/1`, ["pull"]),
        // "push,pull": the order that differs from the scope regcli asks for ("pull,push").
        push: await expiredAnswer(reg, "PUT", `/v2/${c.repo}/blobs/uploads/${randomUUID()}`, ["push", "pull"]),
      };
      // The upload sessions start with the token; it expires on the first PUT/PATCH carrying the big layer's bytes.
      const { rules, state } = expiry(reg, (req) => req.method === c.method && /\/blobs\/uploads\//.test(req.path) && (c.method === "PATCH" || req.path.includes(big.digest.slice(7))), answers);
      proxy.reset();
      proxy.rules = rules;
      const r = ok(await regcli(["--plain-http", ...c.args], { env: { DOCKER_CONFIG: cfg } }), c.args[0]);
      expect(r.stdout.trim()).toBe(img.manifestDigest);
      expect(state.armed).toBe(true);
      const uploads = proxy.log.filter((e) => /\/blobs\/uploads\//.test(e.path));
      const trigger = uploads.find((e) => e.method === c.method && e.status === 401 && e.fault === "status");
      expect(trigger, `a ${c.method} refused as expired`).toBeDefined();
      expect(reg.issued!.count).toBeGreaterThan(state.issuedAtExpiry);
      // The same upload session went on with the fresh token: its next request was not refused.
      const session = /\/blobs\/uploads\/([0-9a-f-]{36})/.exec(trigger!.path)![1]!;
      const after = uploads.slice(uploads.indexOf(trigger!) + 1).filter((e) => e.path.includes(session));
      expect(after.length).toBeGreaterThanOrEqual(1);
      expect(after[0]!.status).not.toBe(401);
      expect(after.every((e) => e.status !== 401)).toBe(true);
      expect(after.at(-1)).toMatchObject({ method: "PUT", status: 201 });
      const stored = await fetchManifest(reg, c.repo, "1");
      expect(stored.status).toBe(200);
      expect(stored.body.equals(img.manifest)).toBe(true);
      for (const b of [img.config, ...img.layers]) expect(await fetchBlobDigest(c.repo, b.digest)).toBe(b.digest);
      console.log(
        `[load] token ${c.args[0]}: ${proxy.log.filter((e) => e.fault === "status").length} requests refused as expired (${proxy.log
          .filter((e) => e.fault === "status")
          .map((e) => e.method)
          .join(",")}); after the refused ${c.method}: ${after.map((e) => `${e.method} ${e.status}`).join(", ")}; ${reg.issued!.count - state.issuedAtExpiry} tokens fetched after the expiry`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("servers that ignore or misanswer Range on a resumed download", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: TestImage;

  beforeAll(async () => {
    reg = await startRegistry("open");
    proxy = await startFaultProxy(reg.url);
    img = await makeImage({ layers: 1, layerSize: 16 * MiB, seed: "range-faults" });
    await pushImage(reg, "range/app", "1", img);
  }, 60_000);
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  it("a resume answered 200 with the whole body (Range stripped) skips the bytes it has and verifies", async () => {
    const layer = img.layers[0]!;
    proxy.reset();
    proxy.rules = [
      { method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "reset-response", after: 6 * MiB } },
      { method: "GET", path: blobPath(layer.digest), nth: 2, fault: { kind: "strip-range" } },
    ];
    const home = await tempDir("regcli-range-");
    const r = ok(await regcli(["--plain-http", "pull", `${proxy.host}/range/app:1`], { env: { REGCLI_HOME: home } }));
    expect(r.stdout.trim()).toBe(img.manifestDigest);
    expect(r.stderr).not.toMatch(/retrying from the start/);
    expect(proxy.faultsInjected).toBe(2);
    const gets = proxy.log.filter((e) => e.method === "GET" && blobPath(layer.digest).test(e.path));
    expect(gets).toHaveLength(2);
    expect(gets[0]).toMatchObject({ status: 200, fault: "reset-response", responseBytes: 6 * MiB });
    // The resume asked for the rest, but the server sent everything from byte 0.
    const asked = /^bytes=(\d+)-$/.exec(gets[1]!.range ?? "");
    expect(asked).not.toBeNull();
    expect(Number(asked![1])).toBeGreaterThan(0);
    expect(Number(asked![1])).toBeLessThanOrEqual(6 * MiB);
    expect(gets[1]).toMatchObject({ status: 200, fault: "strip-range", responseBytes: layer.size });
    const report = await verifyStore(home);
    expect(report.blobs).toContain(layer.digest);
    expect(report.names.get(`${proxy.host}/range/app:1`)).toBe(img.manifestDigest);
  });

  it("a 206 whose Content-Range starts at another byte than asked is refused, never written; a re-run completes", async () => {
    const layer = img.layers[0]!;
    const answered: string[] = [];
    const lie: FaultRule = {
      method: "GET",
      path: blobPath(layer.digest),
      nth: 2,
      // Claim the body starts 64 KiB after the byte asked for (the body itself does start at the asked byte).
      when: (req) => {
        const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
        if (m) {
          const claimed = `bytes ${Number(m[1]) + 65536}-${layer.size - 1}/${layer.size}`;
          answered.push(claimed);
          lie.fault = { kind: "header", name: "content-range", value: claimed };
        }
        return true;
      },
      fault: { kind: "header", name: "content-range", value: undefined },
    };
    proxy.reset();
    proxy.rules = [{ method: "GET", path: blobPath(layer.digest), nth: 1, fault: { kind: "reset-response", after: 6 * MiB } }, lie];
    const home = await tempDir("regcli-range-");
    const first = await regcli(["--plain-http", "pull", `${proxy.host}/range/app:1`], { env: { REGCLI_HOME: home } });
    const gets = proxy.log.filter((e) => e.method === "GET" && blobPath(layer.digest).test(e.path));
    console.log(`[load] lying Content-Range: exit ${first.code}; blob GETs ${gets.map((e) => `${e.status}${e.range ? ` (${e.range})` : ""}${e.fault ? ` ${e.fault}` : ""}`).join(", ")}; stderr: ${first.stderr.trim().split("\n").pop()}`);
    expect(answered).toHaveLength(1);
    expect(gets[1]).toMatchObject({ status: 206, fault: "header" });
    // Refused: exit 5 naming the mismatch (regcli does not guess where the body really starts).
    expect(first.code, first.stderr).toBe(5);
    expect(first.stderr).toContain(`from byte ${/^bytes=(\d+)-$/.exec(gets[1]!.range!)![1]} with Content-Range "${answered[0]}"`);
    expect(await storedImages(home)).toEqual([]);
    // What was kept is the verified-so-far prefix from the first answer, never bytes from the lying one, and the
    // layer is not in the store as a finished blob.
    const dir = join(home, "store", "blobs", "sha256");
    const kept = await readFile(join(dir, `${layer.digest.slice(7)}.partial`));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(6 * MiB);
    expect(kept.equals(layer.data.subarray(0, kept.length))).toBe(true);
    expect(await readdir(dir)).not.toContain(layer.digest.slice(7));
    // The next pull resumes from that prefix and verifies the whole blob.
    proxy.reset();
    proxy.rules = [];
    const again = ok(await regcli(["--plain-http", "pull", `${proxy.host}/range/app:1`], { env: { REGCLI_HOME: home } }));
    expect(again.stdout.trim()).toBe(img.manifestDigest);
    const resumed = proxy.log.filter((e) => e.method === "GET" && blobPath(layer.digest).test(e.path));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ status: 206, range: `bytes=${kept.length}-`, responseBytes: layer.size - kept.length });
    const report = await verifyStore(home);
    expect(report.names.get(`${proxy.host}/range/app:1`)).toBe(img.manifestDigest);
  });
});
