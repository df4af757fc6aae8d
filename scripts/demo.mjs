#!/usr/bin/env node
// The main job on an embedded default: start `regcli serve` on loopback, build a small image as an OCI layout,
// and walk the tutorial over it: push, list, inspect, copy, tag, pull back, read a file, delete.
// No Docker engine, no other registry, no internet.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { freePort, registryUp } from "./lib/loopback.mjs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "regcli.cjs");
const work = mkdtempSync(join(tmpdir(), "regcli-demo-"));
const env = { ...process.env, REGCLI_HOME: join(work, "home"), DOCKER_CONFIG: join(work, "docker") };

const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function layerTar(files) {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o755, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks = [];
  for await (const c of pack) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A two-layer OCI image written as an OCI layout directory, tagged 1.0. */
async function writeExampleLayout(dir) {
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
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  for (const blob of [config, ...layers, manifest]) writeFileSync(join(dir, "blobs", "sha256", sha256(blob).slice(7)), blob);
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "1.0" } }],
    }),
  );
}

function run(args) {
  console.log(`\n$ regcli ${args.join(" ")}`);
  const res = spawnSync(process.execPath, [bin, ...args], { stdio: "inherit", env });
  if (res.status !== 0) throw new Error(`regcli ${args.join(" ")} exited with ${res.status}`);
}

const port = await freePort();
const host = `127.0.0.1:${port}`;
const server = spawn(process.execPath, [bin, "serve", "--addr", host, "--root", join(work, "registry"), "--delete"], { stdio: "ignore", env });
try {
  if (!(await registryUp(host, { tries: 100, everyMs: 100 }))) throw new Error("regcli serve did not start");
  console.log(`$ regcli serve --addr ${host} --root ${join(work, "registry")} --delete &   (started)`);
  const layout = join(work, "hello-layout");
  await writeExampleLayout(layout);
  console.log(`\nBuilt an example image as an OCI layout: ${layout}`);

  run(["push", `oci:${layout}:1.0`, `${host}/demo/hello:1.0`]);
  run(["ls", host]);
  run(["inspect", `${host}/demo/hello:1.0`]);
  run(["copy", `${host}/demo/hello:1.0`, `${host}/team/hello:1.0`]);
  run(["tag", `${host}/team/hello:1.0`, "stable"]);
  run(["ls", `${host}/team/hello`]);
  run(["pull", `${host}/team/hello:stable`]);
  run(["images"]);
  run(["cat", `${host}/team/hello:stable`, "/hello.txt"]);
  run(["delete", `${host}/demo/hello:1.0`]);
  run(["ls", `${host}/demo/hello`]);
  console.log("\nDemo finished: the registry, the local store and their data are removed.");
} finally {
  server.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
