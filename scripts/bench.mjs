#!/usr/bin/env node
// Benchmarks measured against a peer in the same run, never against absolute numbers.
// Scenario "ingest": the same `skopeo copy oci:LAYOUT docker://...` into `regcli serve` and into docker-registry,
// each timed run into a fresh, empty registry root, alternating, medians reported with the ratio.
// Client scenarios: regcli vs skopeo, alternating, fresh destination each run, plus a "raw limit" row (the big image's
// blobs streamed registry -> registry by parallel `curl GET | curl PUT` pairs) as the floor for the big copy.
// cold: start-up against skopeo's, then the standalone executable (npm run build:sea; with and without its startup
//   snapshot) against `node bin/regcli.cjs`.
// small: one-shot commands on a small 2-layer image (digest, manifest, ls, tag, copy, mount, pull) against skopeo's,
//   with `node -e 0` in the same alternation (the floor of any Node program on this machine).
//   node scripts/bench.mjs [--runs N] [--layers N] [--layer-mib N] [--big] [--ingest-only]
//                          [--scenarios copy,pull,push,tags,tags-delay,mount,raw,cold,small,sync,sync-shards] [--sync-repos N[,N...]]
//                          [--skopeo-runs N] (default: --runs)
//   sync, sync-shards (not in the default set; minutes each): a catalog of N repositories x 3 small tags behind the
//   25 ms-delay proxy, `regcli sync` vs `skopeo sync --src yaml` over the same list, then 4 `--shard i/4` workers at
//   once into one destination. --sync-repos: default 100,500 (RSS is printed per size). With only these (and small)
//   selected, the ingest scenario and the big layout are skipped.
//   proxy (not in the default set): pull-through caches. An upstream docker-registry holds the big image; skopeo pulls
//   it (docker:// -> oci:) directly, through a bare Node pass-through (scripts/lib/pass-through.mjs: the floor of any
//   Node hop), through a fresh `regcli serve --proxy` (cold, then warm) and through a fresh
//   docker-registry in proxy mode (proxy.remoteurl; cold, then warm), alternating, medians; every pull is checked
//   against the upstream's manifest digest and blob GETs reaching the upstream are counted.
//   build: `regcli append` of a 256 MiB directory (--build-mib N; the machine's /usr/lib and /usr/bin files) onto a
//   small base, pushed to a fresh registry,
//   alternating with its raw limit: `tar -c DIR | gzip > x.tar.gz`, sha256sum, and one curl PUT of that layer.
//   --big: 8 x 256 MiB (2 GiB) unless --layers/--layer-mib are given.
//   --workdir DIR: where registry roots and layouts go (default: the system temp dir). A tmpfs such as /dev/shm
//   takes the disk's writeback out of the timings, which otherwise adds seconds of noise between runs.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import http from "node:http";
import { freePort, registryUp } from "./lib/loopback.mjs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const has = (name) => args.includes(`--${name}`);
const option = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name, fallback) => {
  const v = option(name);
  return v === undefined ? fallback : Number(v);
};
const BIG = has("big");
const RUNS = flag("runs", 3);
const SKOPEO_RUNS = flag("skopeo-runs", RUNS); // fewer for the sync scenario, where one skopeo run takes minutes
const LAYERS = flag("layers", 8); // the same for --big
const LAYER_MIB = flag("layer-mib", BIG ? 256 : 64);
const DEFAULT_SCENARIOS = ["copy", "pull", "push", "tags", "tags-delay", "mount", "raw", "cold", "small", "build"];
const SYNC_SCENARIOS = ["sync", "sync-shards"];
const ALL_SCENARIOS = [...DEFAULT_SCENARIOS, ...SYNC_SCENARIOS, "proxy"];
const SCENARIOS = option("scenarios") === undefined ? DEFAULT_SCENARIOS : option("scenarios").split(",").map((x) => x.trim()).filter(Boolean);
for (const sc of SCENARIOS) if (!ALL_SCENARIOS.includes(sc)) throw new Error(`unknown scenario ${sc}; known: ${ALL_SCENARIOS.join(", ")}`);
const want = (sc) => SCENARIOS.includes(sc);
const SYNC_REPOS = (option("sync-repos") ?? "100,500").split(",").map(Number);
const NO_INGEST = SCENARIOS.every((sc) => [...SYNC_SCENARIOS, "small", "proxy", "build"].includes(sc)); // none of these needs the ingest run
const PROXY_DELAY_MS = 25;
const work = mkdtempSync(join(option("workdir") ?? tmpdir(), "regcli-bench-"));
const sha256 = (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Write `mib` MiB of random bytes to `blobs/sha256/<digest>` in 16 MiB pieces, hashing as it goes (never a whole layer in memory). */
function writeRandomBlob(dir, mib) {
  const PIECE = 16 * 1024 * 1024;
  const tmp = join(dir, "blobs", `tmp-${randomBytes(6).toString("hex")}`);
  const hash = createHash("sha256");
  const fd = openSync(tmp, "w");
  let left = mib * 1024 * 1024;
  try {
    while (left > 0) {
      const piece = randomBytes(Math.min(PIECE, left));
      hash.update(piece);
      for (let off = 0; off < piece.length; ) off += writeSync(fd, piece, off, piece.length - off);
      left -= piece.length;
    }
  } finally {
    closeSync(fd);
  }
  const digest = `sha256:${hash.digest("hex")}`;
  renameSync(tmp, join(dir, "blobs", "sha256", digest.slice(7)));
  return { digest, size: mib * 1024 * 1024 };
}

/** An OCI layout with LAYERS random (incompressible) layers, written blob by blob, piece by piece. */
function makeLayout(dir) {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const layers = [];
  for (let i = 0; i < LAYERS; i++) {
    const { digest, size } = writeRandomBlob(dir, LAYER_MIB);
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size });
  }
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } }));
  writeFileSync(join(dir, "blobs", "sha256", sha256(config).slice(7)), config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers }));
  writeFileSync(join(dir, "blobs", "sha256", sha256(manifest).slice(7)), manifest);
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "bench" } }] }));
}

/** `proxy`: the upstream's host:port, making the server a pull-through cache of it. */
async function startServer(kind, { proxy } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(work, `${kind}-`));
  const addr = `127.0.0.1:${port}`;
  let child;
  if (kind === "regcli-serve") {
    const proxyArgs = proxy ? ["--proxy", `http://${proxy}`] : [];
    child = spawn(process.execPath, [join(root, "bin", "regcli.cjs"), "serve", "--addr", addr, "--root", join(dir, "data"), ...proxyArgs], { stdio: "ignore" });
  } else if (kind === "node-pass-through") {
    child = spawn(process.execPath, [join(root, "scripts", "lib", "pass-through.mjs"), addr, proxy], { stdio: "ignore" });
  } else {
    const config = join(dir, "config.yml");
    const proxyConfig = proxy ? `proxy: {remoteurl: http://${proxy}}\n` : "";
    writeFileSync(config, `version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: ${join(dir, "data")}}\nhttp:\n  addr: ${addr}\n${proxyConfig}`);
    child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  }
  await registryUp(addr);
  return {
    addr,
    peakRssMiB() {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        return m ? Number(m[1]) / 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    stop() {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A reverse proxy to `upstream` (host:port) that waits `delayMs` before forwarding each request, then streams the
 * request body up and the response (status, headers, body) back unchanged, except that an absolute Location pointing
 * at the upstream is rewritten to the proxy. Runs in this process: the timed commands must be spawned asynchronously.
 */
async function startDelayProxy(upstream, delayMs) {
  const port = await freePort();
  const log = []; // "METHOD /path" of every request, for counting
  const addr = `127.0.0.1:${port}`;
  const [upHost, upPort] = upstream.split(":");
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    setTimeout(() => {
      const up = http.request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
        const headers = { ...ur.headers };
        if (typeof headers.location === "string") headers.location = headers.location.replace(new RegExp(`^(https?://)${upstream.replace(/\./g, "\\.")}(?=[/?#]|$)`), `$1${addr}`);
        res.writeHead(ur.statusCode, ur.statusMessage, headers);
        ur.pipe(res);
      });
      up.on("error", (e) => (res.headersSent ? res.destroy(e) : res.writeHead(502).end(String(e))));
      res.on("close", () => !res.writableFinished && up.destroy());
      req.pipe(up);
    }, delayMs);
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    addr,
    log,
    stop() {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Spawn without blocking the event loop (the delay proxy lives in this process); resolves with status, stdout, stderr. */
function run(cmd, cmdArgs, { stdout = "pipe" } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { stdio: ["ignore", stdout, "pipe"] });
    const out = [];
    const err = [];
    child.stdout?.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}
async function runOk(cmd, cmdArgs) {
  const r = await run(cmd, cmdArgs);
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(" ")} failed (${r.status}): ${r.stderr.slice(-500)}`);
  return r.stdout;
}

async function ingest(layout) {
  const results = { "regcli-serve": { times: [], rss: [] }, "docker-registry": { times: [], rss: [] } };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? ["regcli-serve", "docker-registry"] : ["docker-registry", "regcli-serve"];
    for (const kind of order) {
      const server = await startServer(kind);
      const t0 = process.hrtime.bigint();
      execFileSync("skopeo", ["copy", "--dest-tls-verify=false", "--preserve-digests", `oci:${layout}:bench`, `docker://${server.addr}/bench/app:1`], { stdio: "ignore" });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      results[kind].times.push(seconds);
      results[kind].rss.push(server.peakRssMiB());
      server.stop();
    }
  }
  return results;
}

/** Run a command, returning seconds, the child's peak RSS and its CPU seconds (GNU time's %M, %U + %S). */
const GNU_TIME = existsSync("/usr/bin/time"); // Debian package "time"; without it, peak RSS and CPU read NaN
async function timed(cmd, cmdArgs) {
  const t0 = process.hrtime.bigint();
  const child = GNU_TIME ? await run("/usr/bin/time", ["-f", "%M %U %S", cmd, ...cmdArgs], { stdout: "ignore" }) : await run(cmd, cmdArgs, { stdout: "ignore" });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (child.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(" ")} failed: ${child.stderr.slice(-500)}`);
  const [kib, user, sys] = child.stderr.trim().split("\n").pop().split(" ").map(Number);
  return { seconds, rss: kib / 1024, cpu: user + sys };
}

const regcliBin = join(root, "bin", "regcli.cjs");
const regcli = (...a) => [process.execPath, [regcliBin, "-q", ...a]];
const skopeoCmd = (...a) => ["skopeo", a];

/**
 * Alternate regcli and skopeo `runs` times; `fresh()` makes a new, empty destination for each timed run and
 * returns the two commands to time against it. Prints the row and returns the medians. `extra`
 * (name -> async (ctx) => seconds) joins the same alternation, so a reference such as the raw limit is measured side
 * by side with the tools, not minutes later on a machine whose speed has drifted; its median comes back under its name.
 */
async function compare(name, fresh, extra = {}, runs = RUNS, { ms = false } = {}) {
  const res = { regcli: { t: [], rss: [] }, skopeo: { t: [], rss: [] } };
  const extraTimes = Object.fromEntries(Object.keys(extra).map((k) => [k, []]));
  const order = ["regcli", "skopeo", ...Object.keys(extra)];
  for (let i = 0; i < runs; i++) {
    for (const tool of [...order.slice(i % order.length), ...order.slice(0, i % order.length)]) {
      if (tool === "skopeo" && res.skopeo.t.length >= SKOPEO_RUNS) continue;
      const ctx = await fresh();
      try {
        if (tool in extra) {
          extraTimes[tool].push(await extra[tool](ctx));
          continue;
        }
        const [cmd, cmdArgs] = ctx[tool];
        const r = await timed(cmd, cmdArgs);
        res[tool].t.push(r.seconds);
        res[tool].rss.push(r.rss);
      } finally {
        await ctx.cleanup?.(tool);
      }
    }
  }
  const m = { regcli: median(res.regcli.t), skopeo: median(res.skopeo.t), regcliRss: median(res.regcli.rss), skopeoRss: median(res.skopeo.rss) };
  for (const [k, times] of Object.entries(extraTimes)) m[k] = median(times);
  m.runs = res;
  const t = (x) => (ms ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);
  console.log(`| ${name} | ${t(m.regcli)} | ${t(m.skopeo)} | **${(m.regcli / m.skopeo).toFixed(2)}** | ${m.regcliRss.toFixed(0)} MiB | ${m.skopeoRss.toFixed(0)} MiB |`);
  return m;
}

/**
 * The floor for a registry -> registry copy of `repo:tag`: read the manifest, open one upload per blob, stream every
 * blob with its own `curl GET | curl PUT` pipeline (all started together), then PUT the manifest. Returns seconds.
 */
async function rawCopy(srcAddr, dstAddr, repo, tag) {
  const t0 = process.hrtime.bigint();
  const mediaType = "application/vnd.oci.image.manifest.v1+json";
  const manifest = await runOk("curl", ["-sSf", "-H", `Accept: ${mediaType}`, `http://${srcAddr}/v2/${repo}/manifests/${tag}`]);
  const m = JSON.parse(manifest.toString());
  const blobs = [m.config.digest, ...m.layers.map((l) => l.digest)];
  const base = `http://${dstAddr}`;
  const uploads = await Promise.all(
    blobs.map(async (digest) => {
      const r = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
      await r.arrayBuffer();
      if (r.status !== 202) throw new Error(`POST upload for ${digest}: HTTP ${r.status}`);
      const loc = new URL(r.headers.get("location"), base).toString();
      return { digest, put: `${loc}${loc.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}` };
    }),
  );
  const pipeline = 'set -o pipefail; curl -sSf "$1" | curl -sSf -o /dev/null -T - -X PUT -H "Content-Type: application/octet-stream" "$2"';
  await Promise.all(uploads.map(({ digest, put }) => runOk("bash", ["-c", pipeline, "_", `http://${srcAddr}/v2/${repo}/blobs/${digest}`, put])));
  const r = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { "Content-Type": mediaType }, body: manifest });
  await r.arrayBuffer();
  if (r.status !== 201) throw new Error(`PUT manifest: HTTP ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function clientScenarios(layout) {
  const src = await startServer("docker-registry");
  const s = ["--src-tls-verify=false", "--dest-tls-verify=false"];
  const needBig = ["copy", "pull", "mount", "raw"].some(want);
  const needSmall = ["tags", "tags-delay"].some(want);
  if (needBig) execFileSync("skopeo", ["copy", ...s, "--preserve-digests", `oci:${layout}:bench`, `docker://${src.addr}/big/app:1`], { stdio: "ignore" });
  if (needSmall) {
    // 60 small images sharing a 4 MiB base layer
    const base = randomBytes(4 * 1024 * 1024);
    const small = join(work, "small");
    mkdirSync(join(small, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(small, "blobs", "sha256", sha256(base).slice(7)), base);
    writeFileSync(join(small, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const index = { schemaVersion: 2, manifests: [] };
    for (let i = 0; i < 60; i++) {
      const own = randomBytes(16 * 1024);
      const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(base), sha256(own)] }, n: i }));
      for (const b of [own, config]) writeFileSync(join(small, "blobs", "sha256", sha256(b).slice(7)), b);
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [base, own].map((b) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(b), size: b.length })) }));
      writeFileSync(join(small, "blobs", "sha256", sha256(manifest).slice(7)), manifest);
      index.manifests.push({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": `t${i}` } });
    }
    writeFileSync(join(small, "index.json"), JSON.stringify(index));
    execFileSync(process.execPath, [regcliBin, "-q", "push", `oci:${small}:t0`, `${src.addr}/small/app:t0`], { stdio: "ignore" });
    for (let i = 1; i < 60; i++) execFileSync(process.execPath, [regcliBin, "-q", "push", `oci:${small}:t${i}`, `${src.addr}/small/app:t${i}`], { stdio: "ignore" });
  }

  if (SCENARIOS.some((sc) => !["small", "proxy", "build"].includes(sc))) {
    console.log(`\n| client scenario (${RUNS} alternating runs, fresh destination each) | regcli | skopeo | ratio | regcli peak RSS | skopeo peak RSS |`);
    console.log("|---|---|---|---|---|---|");
  }
  const notes = [];
  const freshDest = async (make) => {
    const dst = await startServer("docker-registry");
    return { ...make(dst.addr), dstAddr: dst.addr, cleanup: () => dst.stop() };
  };
  let bigCopy;
  if (want("copy")) {
    // With "raw" too, the raw limit takes its turn in the copy's alternation.
    const extra = want("raw") ? { raw: (ctx) => rawCopy(src.addr, ctx.dstAddr, "big/app", "1") } : {};
    bigCopy = await compare(
      `copy ${LAYERS}x${LAYER_MIB} MiB registry -> registry`,
      () => freshDest((d) => ({ regcli: regcli("copy", `${src.addr}/big/app:1`, `${d}/big/app:1`), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `docker://${d}/big/app:1`) })),
      extra,
    );
  }
  if (want("raw") && bigCopy?.raw !== undefined) {
    console.log(`| raw limit: parallel curl GET \\| curl PUT (alternated with the copy runs) | ${bigCopy.raw.toFixed(2)} s | | | | |`);
    notes.push(`regcli copy / raw limit: ${(bigCopy.regcli / bigCopy.raw).toFixed(2)}  (skopeo copy / raw limit: ${(bigCopy.skopeo / bigCopy.raw).toFixed(2)})`);
  } else if (want("raw")) {
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const dst = await startServer("docker-registry");
      try {
        times.push(await rawCopy(src.addr, dst.addr, "big/app", "1"));
      } finally {
        dst.stop();
      }
    }
    console.log(`| raw limit: parallel curl GET \\| curl PUT | ${median(times).toFixed(2)} s | | | | |`);
  }
  if (want("pull")) {
    await compare(`pull ${LAYERS}x${LAYER_MIB} MiB registry -> OCI layout`, async () => {
      const dir = mkdtempSync(join(work, "pull-"));
      return { regcli: regcli("pull", "--preserve-digests", `${src.addr}/big/app:1`, "-o", join(dir, "r")), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `oci:${join(dir, "s")}:x`), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    });
  }
  if (want("push")) {
    await compare(`push ${LAYERS}x${LAYER_MIB} MiB OCI layout -> registry`, () =>
      freshDest((d) => ({ regcli: regcli("push", `oci:${layout}:bench`, `${d}/big/app:1`), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `oci:${layout}:bench`, `docker://${d}/big/app:1`) })),
    );
  }
  const smallTags = (name, from) =>
    compare(name, () =>
      freshDest((d) => ({ regcli: regcli("copy", "--all-tags", `${from}/small/app`, `${d}/small/app`), skopeo: skopeoCmd("sync", ...s, "--src", "docker", "--dest", "docker", `${from}/small/app`, `${d}/small`) })),
    );
  if (want("tags")) await smallTags("60 small tags, copy --all-tags vs skopeo sync", src.addr);
  if (want("tags-delay")) {
    const proxy = await startDelayProxy(src.addr, PROXY_DELAY_MS);
    try {
      await smallTags(`60 small tags through a ${PROXY_DELAY_MS} ms-delay proxy, copy --all-tags vs skopeo sync`, proxy.addr);
    } finally {
      proxy.stop();
    }
  }
  if (want("mount")) {
    await compare("same-registry copy to a new repository (mount)", async () => {
      const n = randomBytes(4).toString("hex");
      return { regcli: regcli("copy", `${src.addr}/big/app:1`, `${src.addr}/m${n}/r:1`), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `docker://${src.addr}/m${n}/s:1`) };
    });
  }
  if (want("cold")) {
    // Start-up is a few tens of milliseconds, so it gets more runs than the transfers, and Node's own start-up
    // (`node -e 0`) is timed in the same alternation: the floor any Node program has on this machine.
    const node = async () => (await timed(process.execPath, ["-e", "0"])).seconds;
    const cold = await compare("cold start: --version", async () => ({ regcli: [process.execPath, [regcliBin, "--version"]], skopeo: ["skopeo", ["--version"]] }), { node }, Math.max(RUNS, 21));
    notes.push(`cold start: regcli --version ${(cold.regcli * 1000).toFixed(0)} ms median, node -e 0 ${(cold.node * 1000).toFixed(0)} ms median in the same runs`);
    await seaStartup(src.addr, Math.max(RUNS, 21));
  }
  if (want("small")) notes.push(...(await smallScenarios(s)));
  if (want("build")) notes.push(...(await buildScenario()));
  if (want("sync") || want("sync-shards")) for (const repos of SYNC_REPOS) notes.push(...(await syncScenarios(repos)));
  if (notes.length) console.log(`\n${notes.join("\n")}`);
  src.stop();
}

/**
 * Start-up of the standalone executable (scripts/sea.mjs, built here twice: with its startup snapshot, the default,
 * and with --no-snapshot) against `node bin/regcli.cjs`, alternating, medians: `--version` (which bin/regcli.cjs
 * answers without loading the CLI; the executables always start it), `version` (the whole CLI loaded in all) and an
 * `ls` of a loopback registry (one request, so undici and the HTTP set-up too).
 */
async function seaStartup(srcAddr, runs) {
  const variants = { node: [process.execPath, [regcliBin]], plain: [join(work, "regcli-sea-plain"), []], snapshot: [join(work, "regcli-sea"), []] };
  execFileSync(process.execPath, [join(root, "scripts", "sea.mjs"), "--output", variants.snapshot[0]], { stdio: "ignore" });
  execFileSync(process.execPath, [join(root, "scripts", "sea.mjs"), "--no-snapshot", "--output", variants.plain[0]], { stdio: "ignore" });
  const names = Object.keys(variants);
  // CPU time (user + sys) is printed too: on a shared machine it moves less than wall time.
  console.log(`\n| start-up (${runs} alternating runs) | node bin/regcli.cjs | executable, --no-snapshot | executable, snapshot | snapshot / node | CPU: node / no-snapshot / snapshot | peak RSS: node / no-snapshot / snapshot |`);
  console.log("|---|---|---|---|---|---|---|");
  for (const [label, a] of [["--version", ["--version"]], ["version (loads the CLI)", ["version"]], ["ls of a loopback registry", ["--plain-http", "ls", srcAddr]]]) {
    const r = Object.fromEntries(names.map((v) => [v, { t: [], rss: [], cpu: [] }]));
    for (let i = 0; i < runs; i++) {
      for (const v of [...names.slice(i % names.length), ...names.slice(0, i % names.length)]) {
        const [cmd, pre] = variants[v];
        const x = await timed(cmd, [...pre, ...a]);
        for (const k of ["rss", "cpu"]) r[v][k].push(x[k]);
        r[v].t.push(x.seconds);
      }
    }
    const ms = (s) => `${(s * 1000).toFixed(0)} ms`;
    const m = (v, k) => median(r[v][k]);
    console.log(`| ${label} | ${ms(m("node", "t"))} | ${ms(m("plain", "t"))} | ${ms(m("snapshot", "t"))} | **${(m("snapshot", "t") / m("node", "t")).toFixed(2)}** | ${names.map((v) => ms(m(v, "cpu"))).join(" / ")} | ${names.map((v) => `${m(v, "rss").toFixed(0)} MiB`).join(" / ")} |`);
  }
}

/**
 * small: the one-shot commands scripts and CI run most, on a small 2-layer image (4 MiB + 16 KiB layers) in a loopback
 * docker-registry, regcli vs skopeo, alternating, medians. Equivalent work: regcli is given no --plain-http, so on a
 * loopback host it tries HTTPS first and falls back to plain HTTP, as skopeo does with --tls-verify=false; one more row
 * times `regcli --plain-http digest` (no probe). Pairings: digest / `skopeo inspect --format {{.Digest}}`; manifest /
 * `skopeo inspect --raw`; ls REPO / `skopeo list-tags`; tag / `skopeo copy` of the same manifest to a new tag in the
 * same repository (both check the blobs are there, then PUT the manifest); copy to a fresh repository on a second
 * registry; copy to a fresh repository on the same registry (mount); pull -o DIR / `skopeo copy docker:// oci:`.
 * A wrong answer (digest or manifest not the registry's) fails the run; a missed ratio does not. Returns the notes.
 */
async function smallScenarios(s) {
  const src = await startServer("docker-registry");
  const dst = await startServer("docker-registry");
  try {
    const dir = mkdtempSync(join(work, "small-layout-"));
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    const layers = [randomBytes(4 * 1024 * 1024), randomBytes(16 * 1024)];
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map(sha256) } }));
    for (const b of [...layers, config]) writeFileSync(join(dir, "blobs", "sha256", sha256(b).slice(7)), b);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: layers.map((b) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(b), size: b.length })) }));
    writeFileSync(join(dir, "blobs", "sha256", sha256(manifest).slice(7)), manifest);
    writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "1" } }] }));
    const image = `${src.addr}/small/app:1`;
    execFileSync("skopeo", ["copy", "--dest-tls-verify=false", "--preserve-digests", `oci:${dir}:1`, `docker://${image}`], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });

    // A run that answers wrongly is broken, not slow.
    const digest = (await runOk(...regcli("digest", image))).toString().trim();
    const skopeoDigest = (await runOk("skopeo", ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${image}`])).toString().trim();
    if (digest !== sha256(manifest) || skopeoDigest !== digest) throw new Error(`small: digest ${digest} (regcli), ${skopeoDigest} (skopeo), pushed ${sha256(manifest)}`);
    if (!(await runOk(...regcli("manifest", image))).equals(manifest)) throw new Error("small: regcli manifest differs from the manifest pushed");

    console.log(`\n| small 2-layer image (4 MiB + 16 KiB), ${RUNS} alternating runs, loopback docker-registry | regcli | skopeo | ratio | regcli peak RSS | skopeo peak RSS |`);
    console.log("|---|---|---|---|---|---|");
    const same = (regcliCmd, skopeoArgs) => async () => ({ regcli: regcliCmd, skopeo: skopeoCmd(...skopeoArgs) });
    const opt = { ms: true };
    const node = async () => (await timed(process.execPath, ["-e", "0"])).seconds;
    const d = await compare("`digest` / `skopeo inspect --format {{.Digest}}`", same(regcli("digest", image), ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${image}`]), { node }, RUNS, opt);
    const dp = await compare("`--plain-http digest` (no HTTPS probe) / `skopeo inspect --format {{.Digest}}`", same(regcli("--plain-http", "digest", image), ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${image}`]), {}, RUNS, opt);
    const rows = [
      ["digest", d],
      ["digest --plain-http", dp],
      ["manifest", await compare("`manifest` / `skopeo inspect --raw`", same(regcli("manifest", image), ["inspect", "--tls-verify=false", "--raw", `docker://${image}`]), {}, RUNS, opt)],
      ["ls REPO", await compare("`ls REPO` / `skopeo list-tags`", same(regcli("ls", `${src.addr}/small/app`), ["list-tags", "--tls-verify=false", `docker://${src.addr}/small/app`]), {}, RUNS, opt)],
      [
        "tag",
        await compare("`tag` / `skopeo copy` to a new tag, same repository", async () => {
          const n = randomBytes(4).toString("hex");
          return { regcli: regcli("tag", image, `r${n}`), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `docker://${image}`, `docker://${src.addr}/small/app:s${n}`) };
        }, {}, RUNS, opt),
      ],
      [
        "copy",
        await compare("`copy` to a fresh repository on another registry / `skopeo copy`", async () => {
          const n = randomBytes(4).toString("hex");
          return { regcli: regcli("copy", image, `${dst.addr}/c${n}/r:1`), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `docker://${image}`, `docker://${dst.addr}/c${n}/s:1`) };
        }, {}, RUNS, opt),
      ],
      [
        "mount",
        await compare("same-registry `copy` to a fresh repository (mount) / `skopeo copy`", async () => {
          const n = randomBytes(4).toString("hex");
          return { regcli: regcli("copy", image, `${src.addr}/m${n}/r:1`), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `docker://${image}`, `docker://${src.addr}/m${n}/s:1`) };
        }, {}, RUNS, opt),
      ],
      [
        "pull -o layout",
        await compare("`pull -o DIR` / `skopeo copy docker:// oci:`", async () => {
          const out = mkdtempSync(join(work, "small-pull-"));
          return { regcli: regcli("pull", "--preserve-digests", image, "-o", join(out, "r")), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `docker://${image}`, `oci:${join(out, "s")}:1`), cleanup: () => rmSync(out, { recursive: true, force: true }) };
        }, {}, RUNS, opt),
      ],
    ];
    const ms = (x) => `${(x * 1000).toFixed(0)} ms`;
    console.log(`| \`node -e 0\` (alternated with the digest runs) | ${ms(d.node)} | | | | |`);
    return [
      `small: ratios regcli / skopeo (target <= 1.5): ${rows.map(([k, m]) => `${k} ${(m.regcli / m.skopeo).toFixed(2)}`).join(", ")}`,
      `small: digest above node -e 0 (target <= 40 ms): ${ms(d.regcli - d.node)} (digest ${ms(d.regcli)}, node -e 0 ${ms(d.node)}); --plain-http digest above node -e 0 (not alternated with it): ${ms(dp.regcli - d.node)}; node -e 0 / skopeo digest ${(d.node / d.skopeo).toFixed(2)} (a Node program's floor for the ratio); load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`,
    ];
  } finally {
    src.stop();
    dst.stop();
  }
}

/** Run `fn` over `items`, `n` at a time. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** Upload `body` as a blob of `repo` on `addr` (POST, then one PUT), or mount it from the repository `from`. */
async function putBlob(addr, repo, body, from) {
  const digest = sha256(body);
  const base = `http://${addr}`;
  const mount = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : "";
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/${mount}`, { method: "POST" });
  await r.arrayBuffer();
  if (r.status === 201) return digest;
  if (r.status !== 202) throw new Error(`POST upload to ${repo}: HTTP ${r.status}`);
  const loc = new URL(r.headers.get("location"), base).toString();
  const p = await fetch(`${loc}${loc.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body });
  await p.arrayBuffer();
  if (p.status !== 201) throw new Error(`PUT blob to ${repo}: HTTP ${p.status}`);
  return digest;
}

const SYNC_TAGS = ["1", "2", "3"];
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** `repos` repositories bench/rNNNN x 3 tags of small images sharing a 1 MiB base layer, pushed straight over HTTP. */
async function populateCatalog(addr, repos) {
  const base = randomBytes(1024 * 1024);
  const names = Array.from({ length: repos }, (_, i) => `bench/r${String(i).padStart(4, "0")}`);
  await putBlob(addr, names[0], base);
  await pool(names, 16, async (repo) => {
    if (repo !== names[0]) await putBlob(addr, repo, base, names[0]);
    for (const tag of SYNC_TAGS) {
      const own = randomBytes(1024);
      const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(base), sha256(own)] } }));
      await putBlob(addr, repo, own);
      await putBlob(addr, repo, config);
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [base, own].map((b) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(b), size: b.length })) });
      const r = await fetch(`http://${addr}/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: manifest });
      await r.arrayBuffer();
      if (r.status !== 201) throw new Error(`PUT manifest ${repo}:${tag}: HTTP ${r.status}`);
    }
  });
  return names;
}

/** The manifest digest of each `repo:tag` on `addr` (HEAD), or null where missing. */
async function digests(addr, names) {
  const out = new Map();
  await pool(names.flatMap((repo) => SYNC_TAGS.map((tag) => `${repo}:${tag}`)), 16, async (ref) => {
    const [repo, tag] = ref.split(":");
    const r = await fetch(`http://${addr}/v2/${repo}/manifests/${tag}`, { method: "HEAD", headers: { Accept: OCI_MANIFEST } });
    out.set(ref, r.status === 200 ? r.headers.get("docker-content-digest") : null);
  });
  return out;
}

/**
 * sync: `repos` x 3 small images behind the delay proxy, `regcli sync 'PROXY/bench/*' DST/mirror` vs skopeo sync of
 * the same repository list (a YAML source), alternating, fresh destination each; requests per image counted at the
 * proxy. sync-shards: 4 `--shard i/4` workers at once into one fresh destination behind a counting proxy, then every
 * image checked on the destination and the manifest PUTs counted. Returns the note lines.
 */
async function syncScenarios(repos) {
  const notes = [];
  const src = await startServer("docker-registry");
  const t0 = process.hrtime.bigint();
  const names = await populateCatalog(src.addr, repos);
  const images = repos * SYNC_TAGS.length;
  console.error(`sync: ${images} images in ${repos} repositories pushed in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
  const proxy = await startDelayProxy(src.addr, PROXY_DELAY_MS);
  const srcImages = await digests(src.addr, names);
  try {
    if (want("sync")) {
      const yaml = join(work, `skopeo-sync-${repos}.yaml`);
      writeFileSync(yaml, `${proxy.addr}:\n  tls-verify: false\n  images:\n${names.map((n) => `    ${n}: []\n`).join("")}`);
      const requests = { regcli: [], skopeo: [] };
      const m = await compare(`sync ${repos} repositories x 3 small tags through a ${PROXY_DELAY_MS} ms-delay proxy, regcli sync vs skopeo sync`, async () => {
        const dst = await startServer("docker-registry");
        proxy.log.length = 0;
        return {
          regcli: regcli("sync", `${proxy.addr}/bench/*`, `${dst.addr}/mirror`),
          skopeo: skopeoCmd("sync", "--dest-tls-verify=false", "--src", "yaml", "--dest", "docker", yaml, `${dst.addr}/mirror`),
          cleanup: (tool) => {
            requests[tool].push(proxy.log.length / images);
            dst.stop();
          },
        };
      });
      notes.push(`sync ${repos} repositories (${images} images): ratio ${(m.regcli / m.skopeo).toFixed(2)} (target <= 0.2); regcli peak RSS ${m.regcliRss.toFixed(0)} MiB (target < 200 MB, flat across sizes); source requests per image: regcli ${median(requests.regcli).toFixed(2)}, skopeo ${median(requests.skopeo).toFixed(2)}; regcli runs: ${m.runs.regcli.t.map((t, i) => `${t.toFixed(2)} s ${m.runs.regcli.rss[i].toFixed(0)} MiB`).join(", ")}; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    }
    if (want("sync-shards")) {
      const dst = await startServer("docker-registry");
      const dstProxy = await startDelayProxy(dst.addr, 0);
      try {
        const t1 = process.hrtime.bigint();
        const workers = await Promise.all([0, 1, 2, 3].map((i) => timed(...regcli("sync", "--shard", `${i}/4`, `${proxy.addr}/bench/*`, `${dstProxy.addr}/mirror`))));
        const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
        const mirrored = await digests(dst.addr, names.map((n) => n.replace(/^bench\//, "mirror/")));
        const missing = [...srcImages].filter(([ref, digest]) => mirrored.get(ref.replace(/^bench\//, "mirror/")) !== digest).length;
        const puts = new Map();
        for (const line of dstProxy.log) if (/^PUT \/v2\/.+\/manifests\//.test(line)) puts.set(line, (puts.get(line) ?? 0) + 1);
        const twice = [...puts.values()].filter((n) => n > 1).length;
        if (missing || twice) process.exitCode = 1; // the shards' contract broken: not a timing, a failure
        console.log(`| sync ${repos} repositories, 4 \`--shard i/4\` workers at once | ${seconds.toFixed(2)} s | | | ${Math.max(...workers.map((w) => w.rss)).toFixed(0)} MiB (largest worker) | |`);
        notes.push(`sync-shards ${repos} repositories: ${seconds.toFixed(2)} s for 4 workers; ${images - missing}/${images} images on the destination with the source's digest; ${puts.size} manifest PUTs, ${twice} manifest(s) PUT more than once`);
      } finally {
        dstProxy.stop();
        dst.stop();
      }
    }
  } finally {
    proxy.stop();
    src.stop();
  }
  return notes;
}

try {
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${execFileSync("skopeo", ["--version"]).toString().trim()}; work dir ${work}`);
  const layout = join(work, "layout");
  if (!NO_INGEST) await ingestScenario(layout);
  if (!has("ingest-only")) await clientScenarios(layout);
  if (want("proxy")) await proxyScenario(layout);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * A directory of `mib` MiB of what images hold: the machine's own shared libraries and executables (/usr/lib, /usr/bin:
 * ELF code gzip shrinks to about a third), copied file by file in name order; random bytes if they run out.
 */
function makeTree(dir, mib) {
  let left = mib * 2 ** 20;
  const walk = (from, to) => {
    for (const entry of readdirSync(from, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (left <= 0) return;
      const src = join(from, entry.name);
      if (entry.isDirectory()) walk(src, join(to, entry.name));
      else if (entry.isFile()) {
        const size = statSync(src).size;
        if (size === 0 || size > left) continue;
        mkdirSync(to, { recursive: true });
        copyFileSync(src, join(to, entry.name));
        left -= size;
      }
    }
  };
  for (const from of ["/usr/lib", "/usr/bin"]) if (existsSync(from)) walk(from, join(dir, from.slice(1)));
  if (left > 0) writeFileSync(join(dir, "random.bin"), randomBytes(left));
}

/** A small OCI base image (one layer holding etc/) in `repo:1` of the registry at `addr`. */
async function pushSmallBase(addr, repo) {
  const layout = mkdtempSync(join(work, "base-"));
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  mkdirSync(join(layout, "rootfs", "etc"), { recursive: true });
  const tar = execFileSync("tar", ["-C", join(layout, "rootfs"), "-c", "etc"]);
  const layer = execFileSync("gzip", ["-n"], { input: tar });
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha256(tar)] }, history: [{ created_by: "base" }] }));
  for (const b of [layer, config]) writeFileSync(join(layout, "blobs", "sha256", sha256(b).slice(7)), b);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length }] }));
  writeFileSync(join(layout, "blobs", "sha256", sha256(manifest).slice(7)), manifest);
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "1" } }] }));
  await runOk(process.execPath, [regcliBin, "-q", "push", `oci:${layout}:1`, `${addr}/${repo}:1`]);
}

/** The raw limit of an append: tar | gzip of the directory to a file, its digest, and one monolithic PUT of it. */
async function rawAppend(dir, addr, repo, gzipArgs = []) {
  const file = join(work, "raw-layer.tar.gz");
  const t0 = process.hrtime.bigint();
  const digest = `sha256:${(await runOk("bash", ["-c", 'set -o pipefail; tar -C "$1" -c . | gzip "${@:3}" > "$2" && sha256sum "$2"', "_", dir, file, ...gzipArgs])).toString().split(" ")[0]}`;
  const r = await fetch(`http://${addr}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await r.arrayBuffer();
  const loc = new URL(r.headers.get("location"), `http://${addr}`).toString();
  await runOk("curl", ["-sSf", "-o", "/dev/null", "-T", file, "-X", "PUT", "-H", "Content-Type: application/octet-stream", `${loc}${loc.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(file, { force: true });
  return seconds;
}

async function buildScenario() {
  const mib = flag("build-mib", 256);
  const tree = join(work, "tree");
  makeTree(tree, mib);
  const times = { regcli: [], raw: [], raw1: [], rss: [] };
  const kinds = ["regcli", "raw", "raw1"];
  for (let i = 0; i < RUNS; i++) {
    for (const kind of [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)]) {
      const reg = await startServer("docker-registry");
      try {
        if (kind === "raw") times.raw.push(await rawAppend(tree, reg.addr, "app"));
        else if (kind === "raw1") times.raw1.push(await rawAppend(tree, reg.addr, "app", ["-1"]));
        else {
          await pushSmallBase(reg.addr, "base");
          const r = await timed(process.execPath, [regcliBin, "-q", "append", `${reg.addr}/base:1`, "--layer", tree, "-t", `${reg.addr}/app:1`]);
          times.regcli.push(r.seconds);
          times.rss.push(r.rss);
        }
      } finally {
        reg.stop();
      }
    }
  }
  const m = { regcli: median(times.regcli), raw: median(times.raw), raw1: median(times.raw1), rss: median(times.rss) };
  console.log(`\n| build scenario (${RUNS} alternating runs, fresh registry each) | median | runs | peak RSS |`);
  console.log("|---|---|---|---|");
  console.log(`| regcli append of a ${mib} MiB directory onto a base, pushed | ${m.regcli.toFixed(2)} s | ${times.regcli.map((t) => t.toFixed(2)).join(", ")} | ${m.rss.toFixed(0)} MiB |`);
  console.log(`| raw limit: tar -c \\| gzip > x.tar.gz, sha256sum, curl PUT | ${m.raw.toFixed(2)} s | ${times.raw.map((t) => t.toFixed(2)).join(", ")} | |`);
  console.log(`| the same with gzip -1 (regcli's level) | ${m.raw1.toFixed(2)} s | ${times.raw1.map((t) => t.toFixed(2)).join(", ")} | |`);
  return [`build: regcli append / raw limit: ${(m.regcli / m.raw).toFixed(2)} (target <= 1.2), / raw limit with gzip -1: ${(m.regcli / m.raw1).toFixed(2)}; regcli peak RSS ${m.rss.toFixed(0)} MiB`];
}

async function ingestScenario(layout) {
  makeLayout(layout);
  const mib = LAYERS * LAYER_MIB;
  console.log(`ingest: skopeo copy of ${LAYERS} x ${LAYER_MIB} MiB (${mib} MiB) from an OCI layout into each registry, ${RUNS} alternating runs, fresh root each\n`);
  const r = await ingest(layout);
  const row = (k) => `| ${k} | ${median(r[k].times).toFixed(2)} s | ${(mib / median(r[k].times)).toFixed(0)} MiB/s | ${median(r[k].rss).toFixed(0)} MiB | ${r[k].times.map((t) => t.toFixed(2)).join(", ")} |`;
  console.log("| destination | median | throughput | server peak RSS | runs |");
  console.log("|---|---|---|---|---|");
  console.log(row("regcli-serve"));
  console.log(row("docker-registry"));
  const ratio = median(r["regcli-serve"].times) / median(r["docker-registry"].times);
  console.log(`\nratio regcli-serve / docker-registry (time): ${ratio.toFixed(2)}  (target: <= 1.00)`);
}

/**
 * proxy: skopeo pulls the big image (docker:// -> oci:, --preserve-digests) from an upstream docker-registry directly,
 * through a fresh `regcli serve --proxy` (cold: empty cache; warm: the same pull again) and through a fresh
 * docker-registry in proxy mode the same way, in an alternating order, medians. The upstream sits behind a counting
 * (0 ms) proxy for all three, so each cold pull's upstream blob GETs are counted and the direct pull pays the same hop.
 * A pull whose manifest digest is not the upstream's fails the run.
 */
async function proxyScenario(layout) {
  if (!existsSync(join(layout, "index.json"))) makeLayout(layout);
  const upstream = await startServer("docker-registry");
  const counter = await startDelayProxy(upstream.addr, 0);
  const image = "big/app:1";
  execFileSync("skopeo", ["copy", "--dest-tls-verify=false", "--preserve-digests", `oci:${layout}:bench`, `docker://${upstream.addr}/${image}`], { stdio: "ignore" });
  const expected = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests[0].digest;
  const blobGets = () => counter.log.filter((l) => /^GET \/v2\/.+\/blobs\/sha256:/.test(l)).length;
  const pull = async (from) => {
    const dir = mkdtempSync(join(work, "proxy-pull-"));
    try {
      const r = await timed("skopeo", ["copy", "--src-tls-verify=false", "--preserve-digests", `docker://${from}/${image}`, `oci:${dir}:x`]);
      const got = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")).manifests[0].digest;
      if (got !== expected) throw new Error(`proxy: pull from ${from} gave manifest ${got}, upstream has ${expected}`);
      return r;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // node-pass-through: one bare Node process relaying every byte (scripts/lib/pass-through.mjs), no cache: the
  // floor under any cache written in Node, which must receive, hash, store and send the same bytes.
  const rows = { direct: [], "node-pass-through cold": [], "regcli-serve cold": [], "regcli-serve warm": [], "docker-registry cold": [], "docker-registry warm": [] };
  const serverRss = { "node-pass-through": [], "regcli-serve": [], "docker-registry": [] };
  const upstreamGets = { "node-pass-through": [], "regcli-serve": [], "docker-registry": [] };
  const order = ["direct", "node-pass-through", "regcli-serve", "docker-registry"];
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const kind of [...order.slice(i % order.length), ...order.slice(0, i % order.length)]) {
        if (kind === "direct") {
          rows.direct.push((await pull(counter.addr)).seconds);
          continue;
        }
        const cache = await startServer(kind, { proxy: counter.addr });
        try {
          const before = blobGets();
          rows[`${kind} cold`].push((await pull(cache.addr)).seconds);
          upstreamGets[kind].push(blobGets() - before);
          if (kind !== "node-pass-through") rows[`${kind} warm`].push((await pull(cache.addr)).seconds);
          serverRss[kind].push(cache.peakRssMiB());
        } finally {
          cache.stop();
        }
      }
    }
  } finally {
    counter.stop();
    upstream.stop();
  }
  const direct = median(rows.direct);
  console.log(`\n| skopeo pull of ${LAYERS}x${LAYER_MIB} MiB (${RUNS} alternating runs, fresh cache each) | median | / direct | target | cache peak RSS | upstream blob GETs (cold) | runs |`);
  console.log("|---|---|---|---|---|---|---|");
  const target = { direct: "", "node-pass-through cold": "(floor)", "regcli-serve cold": "<= 1.1", "regcli-serve warm": "<= 0.8", "docker-registry cold": "(anchor)", "docker-registry warm": "(anchor)" };
  for (const [name, times] of Object.entries(rows)) {
    if (!times.length) continue;
    const kind = name.split(" ")[0];
    const rss = serverRss[kind] ? `${median(serverRss[kind]).toFixed(0)} MiB` : "";
    const gets = name.endsWith("cold") ? upstreamGets[kind].join(", ") : "";
    console.log(`| ${name === "direct" ? "direct from upstream" : `through ${name}`} | ${median(times).toFixed(2)} s | **${(median(times) / direct).toFixed(2)}** | ${target[name]} | ${rss} | ${gets} | ${times.map((t) => t.toFixed(2)).join(", ")} |`);
  }
  console.log(`\nproxy: ${LAYERS + 1} blobs in the image; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
}
