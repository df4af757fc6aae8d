#!/usr/bin/env node
// Benchmarks measured against a peer in the same run, never against absolute numbers.
// Scenario "ingest": the same `skopeo copy oci:LAYOUT docker://...` into `regcli serve` and into docker-registry,
// each timed run into a fresh, empty registry root, alternating, medians reported with the ratio.
//   node scripts/bench.mjs [--runs N] [--layers N] [--layer-mib N]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = flag("runs", 3);
const LAYERS = flag("layers", 8);
const LAYER_MIB = flag("layer-mib", 64);
const work = mkdtempSync(join(tmpdir(), "regcli-bench-"));
const sha256 = (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An OCI layout with LAYERS random (incompressible) layers, written blob by blob. */
function makeLayout(dir) {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const layers = [];
  for (let i = 0; i < LAYERS; i++) {
    const data = randomBytes(LAYER_MIB * 1024 * 1024);
    const digest = sha256(data);
    writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), data);
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: data.length });
  }
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } }));
  writeFileSync(join(dir, "blobs", "sha256", sha256(config).slice(7)), config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers }));
  writeFileSync(join(dir, "blobs", "sha256", sha256(manifest).slice(7)), manifest);
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "bench" } }] }));
}

async function startServer(kind) {
  const port = await freePort();
  const dir = mkdtempSync(join(work, `${kind}-`));
  const addr = `127.0.0.1:${port}`;
  let child;
  if (kind === "regcli-serve") {
    child = spawn(process.execPath, [join(root, "bin", "regcli.js"), "serve", "--addr", addr, "--root", join(dir, "data")], { stdio: "ignore" });
  } else {
    const config = join(dir, "config.yml");
    writeFileSync(config, `version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: ${join(dir, "data")}}\nhttp:\n  addr: ${addr}\n`);
    child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  }
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://${addr}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
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

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ingest(layout) {
  const results = { "regcli-serve": { times: [], rss: [] }, "docker-registry": { times: [], rss: [] } };
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? ["regcli-serve", "docker-registry"] : ["docker-registry", "regcli-serve"];
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

/** Run a command, returning seconds and the child's peak RSS (GNU time's %M). */
const GNU_TIME = existsSync("/usr/bin/time"); // Debian package "time"; without it, peak RSS reads NaN
function timed(cmd, cmdArgs) {
  const t0 = process.hrtime.bigint();
  const child = GNU_TIME
    ? spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...cmdArgs], { stdio: ["ignore", "ignore", "pipe"] })
    : spawnSync(cmd, cmdArgs, { stdio: ["ignore", "ignore", "pipe"] });
  if (child.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(" ")} failed: ${child.stderr.toString().slice(-500)}`);
  const out = child.stderr.toString();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = Number(out.trim().split("\n").pop()) / 1024;
  return { seconds, rss };
}

const regcliBin = join(root, "bin", "regcli.js");
const regcli = (...a) => [process.execPath, [regcliBin, "-q", ...a]];
const skopeoCmd = (...a) => ["skopeo", a];

/**
 * Alternate regcli and skopeo `runs` times; `fresh()` makes a new, empty destination for each timed run and
 * returns the two commands to time against it.
 */
async function compare(name, fresh) {
  const res = { regcli: { t: [], rss: [] }, skopeo: { t: [], rss: [] } };
  for (let run = 0; run < RUNS; run++) {
    for (const tool of run % 2 === 0 ? ["regcli", "skopeo"] : ["skopeo", "regcli"]) {
      const ctx = await fresh();
      try {
        const [cmd, cmdArgs] = ctx[tool];
        const r = timed(cmd, cmdArgs);
        res[tool].t.push(r.seconds);
        res[tool].rss.push(r.rss);
      } finally {
        await ctx.cleanup?.();
      }
    }
  }
  const m = (k) => median(res[k].t);
  console.log(`| ${name} | ${m("regcli").toFixed(2)} s | ${m("skopeo").toFixed(2)} s | **${(m("regcli") / m("skopeo")).toFixed(2)}** | ${median(res.regcli.rss).toFixed(0)} MiB | ${median(res.skopeo.rss).toFixed(0)} MiB |`);
}

async function clientScenarios(layout) {
  const src = await startServer("docker-registry");
  const s = ["--src-tls-verify=false", "--dest-tls-verify=false"];
  execFileSync("skopeo", ["copy", ...s, "--preserve-digests", `oci:${layout}:bench`, `docker://${src.addr}/big/app:1`], { stdio: "ignore" });
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

  console.log(`\n| client scenario (${RUNS} alternating runs, fresh destination each) | regcli | skopeo | ratio | regcli peak RSS | skopeo peak RSS |`);
  console.log("|---|---|---|---|---|---|");
  const freshDest = async (make) => {
    const dst = await startServer("docker-registry");
    return { ...make(dst.addr), cleanup: () => dst.stop() };
  };
  await compare(`copy ${LAYERS}x${LAYER_MIB} MiB registry -> registry`, () =>
    freshDest((d) => ({ regcli: regcli("copy", `${src.addr}/big/app:1`, `${d}/big/app:1`), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `docker://${d}/big/app:1`) })),
  );
  await compare(`pull ${LAYERS}x${LAYER_MIB} MiB registry -> OCI layout`, async () => {
    const dir = mkdtempSync(join(work, "pull-"));
    return { regcli: regcli("pull", "--preserve-digests", `${src.addr}/big/app:1`, "-o", join(dir, "r")), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `oci:${join(dir, "s")}:x`), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  });
  await compare(`push ${LAYERS}x${LAYER_MIB} MiB OCI layout -> registry`, () =>
    freshDest((d) => ({ regcli: regcli("push", `oci:${layout}:bench`, `${d}/big/app:1`), skopeo: skopeoCmd("copy", ...s, "--preserve-digests", `oci:${layout}:bench`, `docker://${d}/big/app:1`) })),
  );
  await compare("60 small tags, copy --all-tags vs skopeo sync", () =>
    freshDest((d) => ({ regcli: regcli("copy", "--all-tags", `${src.addr}/small/app`, `${d}/small/app`), skopeo: skopeoCmd("sync", ...s, "--src", "docker", "--dest", "docker", `${src.addr}/small/app`, `${d}/small`) })),
  );
  await compare("same-registry copy to a new repository (mount)", async () => {
    const n = randomBytes(4).toString("hex");
    return { regcli: regcli("copy", `${src.addr}/big/app:1`, `${src.addr}/m${n}/r:1`), skopeo: skopeoCmd("copy", ...s, `docker://${src.addr}/big/app:1`, `docker://${src.addr}/m${n}/s:1`) };
  });
  await compare("cold start: --version", async () => ({ regcli: [process.execPath, [regcliBin, "--version"]], skopeo: ["skopeo", ["--version"]] }));
  src.stop();
}

try {
  const layout = join(work, "layout");
  makeLayout(layout);
  const mib = LAYERS * LAYER_MIB;
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${execFileSync("skopeo", ["--version"]).toString().trim()}`);
  console.log(`ingest: skopeo copy of ${LAYERS} x ${LAYER_MIB} MiB (${mib} MiB) from an OCI layout into each registry, ${RUNS} alternating runs, fresh root each\n`);
  const r = await ingest(layout);
  const row = (k) => `| ${k} | ${median(r[k].times).toFixed(2)} s | ${(mib / median(r[k].times)).toFixed(0)} MiB/s | ${median(r[k].rss).toFixed(0)} MiB | ${r[k].times.map((t) => t.toFixed(2)).join(", ")} |`;
  console.log("| destination | median | throughput | server peak RSS | runs |");
  console.log("|---|---|---|---|---|");
  console.log(row("regcli-serve"));
  console.log(row("docker-registry"));
  const ratio = median(r["regcli-serve"].times) / median(r["docker-registry"].times);
  console.log(`\nratio regcli-serve / docker-registry (time): ${ratio.toFixed(2)}  (target: <= 1.00)`);
  if (!args.includes("--ingest-only")) await clientScenarios(layout);
} finally {
  rmSync(work, { recursive: true, force: true });
}
