#!/usr/bin/env node
// The main job on an embedded default: start a loopback registry, push a small image this script builds
// itself, and walk regcli's remote commands over it. No internet, no Docker engine.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import tar from "tar-stream";
import { RegistryContext, registryDestination } from "../dist/index.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "regcli.js");

function ensureRegistryBinary() {
  if (spawnSync("sh", ["-c", "command -v docker-registry"]).status === 0) return;
  if (process.getuid?.() !== 0) {
    console.error("demo: docker-registry is not installed; run: sudo apt-get install -y docker-registry");
    process.exit(1);
  }
  console.error("demo: installing docker-registry (Debian package) ...");
  execFileSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null"], { stdio: "inherit" });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startRegistry() {
  const dir = mkdtempSync(join(tmpdir(), "regcli-demo-"));
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: ${dir}/data}\n  delete: {enabled: true}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200) return { host, stop: () => (child.kill(), rmSync(dir, { recursive: true, force: true })) };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error("docker-registry did not start");
}

const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function layerTar(files) {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks = [];
  for await (const c of pack) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A two-layer OCI image: a greeting and a small script. */
async function exampleImage() {
  const tars = [
    await layerTar({ "hello.txt": "Hello from regcli!\n" }),
    await layerTar({ "usr/local/bin/hello": "#!/bin/sh\ncat /hello.txt\n" }),
  ];
  const layers = tars.map((t) => gzipSync(t, { level: 9 }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: "2026-01-01T00:00:00Z",
      config: { Entrypoint: ["/usr/local/bin/hello"], Labels: { "org.opencontainers.image.title": "regcli demo" } },
      rootfs: { type: "layers", diff_ids: tars.map(sha256) },
      history: [{ created_by: "regcli demo: hello.txt" }, { created_by: "regcli demo: hello script" }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
    }),
  );
  return { config, layers, manifest };
}

function run(args) {
  console.log(`\n$ regcli ${args.join(" ")}`);
  const res = spawnSync(process.execPath, [bin, ...args], { stdio: "inherit", env: { ...process.env, DOCKER_CONFIG: tmpdir() } });
  if (res.status !== 0) throw new Error(`regcli ${args.join(" ")} exited with ${res.status}`);
}

ensureRegistryBinary();
const registry = await startRegistry();
try {
  const host = registry.host;
  console.log(`Started a loopback registry at ${host} (docker-registry, temporary storage)`);
  const image = await exampleImage();
  const ctx = new RegistryContext();
  const repo = registryDestination(ctx, { registry: host, repository: "demo/hello" });
  for (const blob of [image.config, ...image.layers]) {
    await repo.putBlob({ mediaType: "application/octet-stream", digest: sha256(blob), size: blob.length }, async () => {
      const { Readable } = await import("node:stream");
      return Readable.from([blob]);
    });
  }
  await repo.client.putManifest("demo/hello", "1.0", {
    bytes: image.manifest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha256(image.manifest),
  });
  await ctx.close();
  console.log(`Pushed ${host}/demo/hello:1.0 (${sha256(image.manifest)}), built by this script`);

  run(["ls", host]);
  run(["inspect", `${host}/demo/hello:1.0`]);
  run(["copy", `${host}/demo/hello:1.0`, `${host}/team/hello:1.0`]);
  run(["tag", `${host}/team/hello:1.0`, "stable"]);
  run(["ls", `${host}/team/hello`]);
  run(["digest", `${host}/team/hello:stable`]);
  run(["delete", `${host}/demo/hello:1.0`]);
  run(["ls", `${host}/demo/hello`]);
  console.log("\nDemo finished: the registry and its data are removed.");
} finally {
  registry.stop();
}
