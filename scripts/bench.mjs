#!/usr/bin/env node
// Benchmarks measured against a peer in the same run, never against absolute numbers.
// Scenario "ingest": the same `skopeo copy oci:LAYOUT docker://...` into `regcli serve` and into docker-registry,
// each timed run into a fresh, empty registry root, alternating, medians reported with the ratio.
//   node scripts/bench.mjs [--runs N] [--layers N] [--layer-mib N]
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
} finally {
  rmSync(work, { recursive: true, force: true });
}
