// Building images without a daemon: append and mutate on every location, single images and indexes, checked by
// outside readers (skopeo inspect, umoci unpack) and regcli export.
import { execFile } from "node:child_process";
import { chmod, copyFile, link, mkdir, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, repoRoot, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, makeTar, pushBlob, pushImage, pushIndex, pushManifest, sha256 } from "../helpers/images.js";
import { startRegistry, type RegistryServer, type TestRegistry } from "../helpers/registry.js";
import { differences, snapshot } from "../helpers/tree.js";

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

interface Config {
  created?: string;
  config: { Env?: string[]; Labels?: Record<string, string>; Entrypoint?: string[] | null; Cmd?: string[] | null; User?: string; WorkingDir?: string; ExposedPorts?: Record<string, unknown> };
  rootfs: { diff_ids: string[] };
  history: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
}

describe.each<RegistryServer>(["docker-registry", "regcli"])("mutate against %s", (server) => {
  let reg: TestRegistry;
  let home: string;
  const cli = (args: string[], env: Record<string, string> = {}) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home, ...env } });
  const config = async (ref: string, platform?: string): Promise<Config> => JSON.parse(ok(await cli(["config", ref, ...(platform ? ["--platform", platform] : [])])).stdout) as Config;

  beforeAll(async () => {
    reg = await startRegistry("open", { server });
    home = await tempDir("regcli-home-");
    const amd = await makeImage({ seed: "amd", platform: { os: "linux", architecture: "amd64" } });
    const arm = await makeImage({ seed: "arm", platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    await pushIndex(reg, "build/multi", "1", makeIndex([amd, arm]));
    await pushImage(reg, "build/docker", "1", await makeImage({ seed: "docker", format: "docker" }));
  });
  afterAll(async () => reg?.stop());

  it("changes every platform of an index, keeping layers, merging env by key, one empty_layer history entry", async () => {
    const before = await config(`${reg.host}/build/multi:1`, "linux/arm64");
    const r = ok(await cli(["mutate", `${reg.host}/build/multi:1`, "-t", `${reg.host}/build/multi:2`, "--env", "PATH=/app", "--env", "MODE=prod", "--label", "a=b", "--user", "65532", "--expose", "8080", "--annotation", "org.example=yes", "--created", "2026-01-01T00:00:00Z"]));
    const digest = r.stdout.trim();
    const index = await fetchManifest(reg, "build/multi", "2");
    expect(`sha256:${(await import("node:crypto")).createHash("sha256").update(index.body).digest("hex")}`).toBe(digest);
    const doc = JSON.parse(index.body.toString()) as { annotations?: Record<string, string>; manifests: Array<{ platform: { architecture: string } }> };
    expect(doc.annotations).toEqual({ "org.example": "yes" });
    expect(doc.manifests.map((m) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    for (const platform of ["linux/amd64", "linux/arm64"]) {
      const c = await config(`${reg.host}/build/multi:2`, platform);
      expect(c.config.Env).toEqual(["PATH=/app", "MODE=prod"]);
      expect(c.config.Labels).toEqual({ a: "b" });
      expect(c.config.User).toBe("65532");
      expect(c.config.ExposedPorts).toEqual({ "8080/tcp": {} });
      expect(c.created).toBe("2026-01-01T00:00:00Z");
      expect(c.history.at(-1)).toMatchObject({ created: "2026-01-01T00:00:00Z", empty_layer: true });
      expect(c.history.at(-1)!.created_by).toContain("ENV PATH=/app");
    }
    const after = await config(`${reg.host}/build/multi:2`, "linux/arm64");
    expect(after.rootfs).toEqual(before.rootfs);
  });

  it("--platform changes that child only; the index keeps the other's digest", async () => {
    const digestOf = async (ref: string, platform: string) => ok(await cli(["digest", ref, "--platform", platform])).stdout.trim();
    ok(await cli(["mutate", `${reg.host}/build/multi:1`, "-t", `${reg.host}/build/multi:arm`, "--platform", "linux/arm64", "--label", "only=arm"]));
    expect(await digestOf(`${reg.host}/build/multi:arm`, "linux/amd64")).toBe(await digestOf(`${reg.host}/build/multi:1`, "linux/amd64"));
    expect((await config(`${reg.host}/build/multi:arm`, "linux/arm64")).config.Labels).toEqual({ only: "arm" });
    const missing = await cli(["mutate", `${reg.host}/build/multi:1`, "-t", `${reg.host}/build/multi:x`, "--platform", "linux/s390x", "--label", "a=b"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("linux/amd64, linux/arm64");
  });

  it("sets entrypoint and cmd as Docker does, keeping a Docker base's media types", async () => {
    ok(await cli(["mutate", `${reg.host}/build/docker:1`, "-t", `${reg.host}/build/docker:entry`, "--entrypoint", '["/app","--serve"]', "--workdir", "/srv"], { SOURCE_DATE_EPOCH: "1700000000" }));
    let c = await config(`${reg.host}/build/docker:entry`);
    // A new entrypoint resets the inherited cmd (["--serve"] in the base), as a Dockerfile's ENTRYPOINT does.
    expect(c.config).toMatchObject({ Entrypoint: ["/app", "--serve"], Cmd: null, WorkingDir: "/srv" });
    expect(c.created).toBe("2023-11-14T22:13:20Z");
    expect(c.history.at(-1)).toEqual({ created: "2023-11-14T22:13:20Z", created_by: 'regcli mutate ENTRYPOINT ["/app","--serve"] WORKDIR /srv', comment: "regcli", empty_layer: true });
    ok(await cli(["mutate", `${reg.host}/build/docker:entry`, "--cmd", "echo hi"]));
    c = await config(`${reg.host}/build/docker:entry`);
    expect(c.config).toMatchObject({ Entrypoint: ["/app", "--serve"], Cmd: ["/bin/sh", "-c", "echo hi"] });
    const m = JSON.parse(ok(await cli(["manifest", `${reg.host}/build/docker:entry`])).stdout) as { mediaType: string; config: { mediaType: string } };
    expect(m.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(m.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
  });

  it("annotations alone leave the config as it is; nothing to change, or no tag to write back to, is a usage error", async () => {
    const base = JSON.parse(ok(await cli(["manifest", `${reg.host}/build/docker:1`])).stdout) as { config: { digest: string } };
    ok(await cli(["mutate", `${reg.host}/build/docker:1`, "-t", `${reg.host}/build/docker:annotated`, "--annotation", "org.opencontainers.image.source=https://example.com/app"]));
    const m = JSON.parse(ok(await cli(["manifest", `${reg.host}/build/docker:annotated`])).stdout) as { config: { digest: string }; annotations: Record<string, string> };
    expect(m.config.digest).toBe(base.config.digest);
    expect(m.annotations).toEqual({ "org.opencontainers.image.source": "https://example.com/app" });
    expect((await cli(["mutate", `${reg.host}/build/docker:1`, "-t", `${reg.host}/build/docker:x`])).code).toBe(2);
    const digest = ok(await cli(["digest", `${reg.host}/build/docker:1`])).stdout.trim();
    const byDigest = await cli(["mutate", `${reg.host}/build/docker@${digest}`, "--env", "A=1"]);
    expect(byDigest.code).toBe(2);
    expect(byDigest.stderr).toContain("give the target with -t");
  });
});

interface Manifest {
  mediaType: string;
  config: { mediaType: string; digest: string };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

const DOC_NAMES = ["README", "a.txt", "b-1", "b.txt", "b_2", "c", "changelog", "x", "Y", "z0", "z10", "z9"];

/**
 * A small application tree, its files written in `order` (creation order must not matter): a binary, a config, a
 * symlink, a hard link, an empty directory, mtimes `later` (after SOURCE_DATE_EPOCH), modes of its own.
 */
async function appTree(dir: string, order: "forward" | "backward" = "forward", later = new Date("2030-01-01T00:00:00Z")): Promise<string> {
  const steps = [
    async () => {
      await mkdir(join(dir, "app/bin"), { recursive: true });
      await writeFile(join(dir, "app/bin/server"), "#!/bin/true\nstatic binary\n");
      await chmod(join(dir, "app/bin/server"), 0o755);
      await link(join(dir, "app/bin/server"), join(dir, "app/bin/server-hardlink"));
    },
    async () => {
      await mkdir(join(dir, "etc/app"), { recursive: true });
      await writeFile(join(dir, "etc/app/config.yaml"), "listen: 8080\n");
      await chmod(join(dir, "etc/app/config.yaml"), 0o640);
      await symlink("app/config.yaml", join(dir, "etc/app.yaml"));
    },
    async () => mkdir(join(dir, "var/empty"), { recursive: true }),
    async () => {
      // Enough names that the order the file system lists them in is not sorted by chance.
      await mkdir(join(dir, "doc"), { recursive: true });
      for (const name of order === "forward" ? DOC_NAMES : [...DOC_NAMES].reverse()) await writeFile(join(dir, "doc", name), name);
    },
  ];
  for (const step of order === "forward" ? steps : steps.reverse()) await step();
  for (const p of [...DOC_NAMES.map((n) => `doc/${n}`), "doc", "app/bin/server", "etc/app/config.yaml", "var/empty", "etc/app", "app/bin", "app", "etc", "var"]) await utimes(join(dir, p), later, later);
  return dir;
}

describe.each<RegistryServer>(["docker-registry", "regcli"])("append against %s", (server) => {
  let reg: TestRegistry;
  let home: string;
  let work: string;
  let tree: string;
  const cli = (args: string[], env: Record<string, string> = {}) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home, ...env }, timeoutMs: 120_000 });
  const config = async (ref: string, platform?: string): Promise<Config> => JSON.parse(ok(await cli(["config", ref, ...(platform ? ["--platform", platform] : [])])).stdout) as Config;
  const manifest = async (ref: string, platform?: string): Promise<Manifest> => JSON.parse(ok(await cli(["manifest", ref, ...(platform ? ["--platform", platform] : [])])).stdout) as Manifest;

  beforeAll(async () => {
    reg = await startRegistry("open", { server });
    home = await tempDir("regcli-home-");
    work = await tempDir("regcli-build-");
    tree = await appTree(join(work, "tree"));
    const amd = await makeImage({ seed: "base-amd", platform: { os: "linux", architecture: "amd64" } });
    const arm = await makeImage({ seed: "base-arm", platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    await pushIndex(reg, "build/base", "1", makeIndex([amd, arm]));
    await pushImage(reg, "build/docker", "1", await makeImage({ seed: "docker-base", format: "docker" }));
  });
  afterAll(async () => reg?.stop());

  it("appends a directory to every platform of an index: one upload, valid configs, skopeo and umoci read it as regcli export does", async () => {
    const r = ok(await cli(["append", `${reg.host}/build/base:1`, "--layer", tree, "-t", `${reg.host}/build/app:1`, "--format", "json"], { SOURCE_DATE_EPOCH: "1700000000" }));
    const result = JSON.parse(r.stdout) as { digest: string; images: unknown[]; layers: Array<{ digest: string; diffId: string }>; stats: { blobsUploaded: number; blobsMounted: number } };
    expect(result.images).toHaveLength(2);
    const layer = result.layers[0]!;
    for (const platform of ["linux/amd64", "linux/arm64"]) {
      const m = await manifest(`${reg.host}/build/app:1`, platform);
      const c = await config(`${reg.host}/build/app:1`, platform);
      expect(m.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
      expect(m.layers).toHaveLength(3);
      expect(m.layers.at(-1)).toMatchObject({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer.digest });
      // diff_ids are the sha256 of each decompressed layer; one non-empty history entry per layer.
      const diffIds: string[] = [];
      for (const l of m.layers) diffIds.push(sha256(gunzipSync(ok(await cli(["blob", `${reg.host}/build/app@${l.digest}`])).stdoutBuffer)));
      expect(c.rootfs.diff_ids).toEqual(diffIds);
      expect(c.history.filter((h) => !h.empty_layer)).toHaveLength(3);
      expect(c.history.at(-1)).toEqual({ created: "2023-11-14T22:13:20Z", created_by: "regcli append", comment: "layer from a directory" });
      expect(c.created).toBe("2023-11-14T22:13:20Z");
    }
    // The layer's tar: sorted entries, 0:0 without names, the hard link a tar link, mtimes clamped.
    const entries: string[] = [];
    const extract = tar.extract();
    extract.on("entry", (h, stream, next) => {
      entries.push(`${h.name} ${h.type} ${h.uid}:${h.gid}${h.uname || h.gname ? ` ${h.uname}:${h.gname}` : ""} ${h.mtime!.getTime() / 1000}${h.linkname ? ` -> ${h.linkname}` : ""}`);
      stream.on("end", next).resume();
    });
    extract.end(gunzipSync(ok(await cli(["blob", `${reg.host}/build/app@${layer.digest}`])).stdoutBuffer));
    await new Promise<void>((resolve) => extract.on("finish", resolve));
    expect(entries).toEqual([
      "app/ directory 0:0 1700000000",
      "app/bin/ directory 0:0 1700000000",
      "app/bin/server file 0:0 1700000000",
      "app/bin/server-hardlink link 0:0 1700000000 -> app/bin/server",
      "doc/ directory 0:0 1700000000",
      ...DOC_NAMES.slice().sort().map((n) => `doc/${n} file 0:0 1700000000`),
      "etc/ directory 0:0 1700000000",
      "etc/app/ directory 0:0 1700000000",
      "etc/app/config.yaml file 0:0 1700000000",
      "etc/app.yaml symlink 0:0 1700000000 -> app/config.yaml",
      "var/ directory 0:0 1700000000",
      "var/empty/ directory 0:0 1700000000",
    ]);
    // The new layer crossed the wire once; the base's layers were mounted from build/base.
    expect(result.stats.blobsUploaded).toBe(3); // the layer and two configs
    expect(result.stats.blobsMounted).toBe(4);
    // skopeo reads the same config and layers.
    const skopeoArgs = ["--tls-verify=false", "--override-arch", "amd64", "--override-os", "linux", `docker://${reg.host}/build/app:1`];
    const rawConfig = ok(await skopeo(["inspect", "--raw", "--config", ...skopeoArgs])).stdout;
    const amd = await manifest(`${reg.host}/build/app:1`, "linux/amd64");
    expect(sha256(rawConfig)).toBe(amd.config.digest);
    expect((JSON.parse(ok(await skopeo(["inspect", ...skopeoArgs])).stdout) as { Layers: string[] }).Layers).toEqual(amd.layers.map((l) => l.digest));
    // umoci's unpack of the result and regcli export agree, and hold the tree as packed: 0:0, mtimes clamped.
    ok(await cli(["copy", `${reg.host}/build/app:1`, `oci:${join(work, "layout")}:app`, "--platform", "linux/amd64"]));
    await run("umoci", ["unpack", ...(asRoot ? [] : ["--rootless"]), "--image", `${join(work, "layout")}:app`, join(work, "bundle")]);
    ok(await cli(["export", `${reg.host}/build/app:1`, "--platform", "linux/amd64", "-o", join(work, "exported")]));
    const exported = await snapshot(join(work, "exported"));
    expect(differences(exported, await snapshot(join(work, "bundle", "rootfs")))).toEqual([]);
    expect(exported.get("app/bin/server")).toMatchObject({ type: "file", mode: 0o755, mtime: 1700000000, ...(asRoot ? { uid: 0, gid: 0 } : {}) });
    expect(exported.get("app/bin/server")!.links).toBe("app/bin/server app/bin/server-hardlink");
    expect(exported.get("etc/app.yaml")).toMatchObject({ type: "symlink", target: "app/config.yaml" });
    expect(exported.get("etc/app/config.yaml")).toMatchObject({ mode: 0o640 });
    expect(exported.get("var/empty")).toMatchObject({ type: "dir" });
    expect(exported.get("layer0/data.bin")).toMatchObject({ type: "file" });
  }, 180_000);

  it("keeps a Docker schema 2 base's media types", async () => {
    ok(await cli(["append", `${reg.host}/build/docker:1`, "--layer", tree, "-t", `${reg.host}/build/docker:2`]));
    const m = await manifest(`${reg.host}/build/docker:2`);
    expect(m.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(m.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    expect(m.layers.map((l) => l.mediaType)).toEqual(Array(3).fill("application/vnd.docker.image.rootfs.diff.tar.gzip"));
  }, 120_000);

  it("with --platform appends to that child only and keeps the other as it was", async () => {
    const before = await manifest(`${reg.host}/build/base:1`, "linux/amd64");
    ok(await cli(["append", `${reg.host}/build/base:1`, "--layer", tree, "--platform", "linux/arm64", "-t", `${reg.host}/build/app:arm-only`]));
    expect(await manifest(`${reg.host}/build/app:arm-only`, "linux/amd64")).toEqual(before);
    expect((await manifest(`${reg.host}/build/app:arm-only`, "linux/arm64")).layers).toHaveLength(3);
  }, 120_000);
});

describe("append on every location", () => {
  let reg: TestRegistry;
  let home: string;
  let work: string;
  const cli = (args: string[], env: Record<string, string> = {}) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home, ...env }, timeoutMs: 120_000 });

  beforeAll(async () => {
    reg = await startRegistry("open");
    home = await tempDir("regcli-home-");
    work = await tempDir("regcli-build-");
    await pushIndex(reg, "loc/base", "1", makeIndex([await makeImage({ seed: "loc-amd" }), await makeImage({ seed: "loc-arm", platform: { os: "linux", architecture: "arm64" } })]));
  });
  afterAll(async () => reg?.stop());

  it("is reproducible: the same tree in another directory, written in another order at another time, gives the same digests", async () => {
    const a = await appTree(join(work, "checkout-one", "src"), "forward");
    const b = await appTree(join(work, "elsewhere", "other-name"), "backward", new Date("2031-06-01T00:00:00Z"));
    const env = { SOURCE_DATE_EPOCH: "1700000000" };
    const digests = [];
    for (const [dir, target] of [[a, "one"], [a, "two"], [b, "three"]] as const) {
      digests.push(ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", dir, "-t", `oci:${join(work, target)}:app`], env)).stdout.trim());
    }
    expect(new Set(digests).size).toBe(1);
    // And to a registry: the same digest again.
    expect(ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", b, "-t", `${reg.host}/loc/app:repro`], env)).stdout.trim()).toBe(digests[0]);
  }, 180_000);

  it("reads and writes the store, OCI layouts and archives; a tar.gz layer is uploaded as it is", async () => {
    const tree = await appTree(join(work, "tree"));
    const tgz = join(work, "extra.tar.gz");
    await mkdir(join(work, "extra/opt"), { recursive: true });
    await writeFile(join(work, "extra/opt/extra.txt"), "extra\n");
    await run("tar", ["-czf", tgz, "-C", join(work, "extra"), "opt"]);
    const layout = join(work, "chain");
    ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", tree, "-t", "store:chain/app:1"]));
    ok(await cli(["append", "store:chain/app:1", "--layer", tgz, "-t", `oci:${layout}:2`]));
    // Without -t the new image replaces the base's tag, and says so.
    const back = ok(await cli(["mutate", `oci:${layout}:2`, "--env", "STAGE=3"]));
    expect(back.stderr).toContain(`replaces oci:${layout}:2`);
    ok(await cli(["append", `oci:${layout}:2`, "--layer", tree, "-t", `oci-archive:${join(work, "app.oci.tar")}:4`]));
    ok(await cli(["append", `oci-archive:${join(work, "app.oci.tar")}:4`, "--layer", tree, "--platform", "linux/amd64", "-t", `docker-archive:${join(work, "app.docker.tar")}:app:5`]));
    const m = JSON.parse(ok(await cli(["manifest", `oci:${layout}:2`, "--platform", "linux/amd64"])).stdout) as Manifest;
    expect(m.layers.at(-1)!.digest).toBe(sha256(await readFile(tgz)));
    const c = JSON.parse(ok(await cli(["config", `docker-archive:${join(work, "app.docker.tar")}`])).stdout) as Config;
    expect(c.rootfs.diff_ids).toHaveLength(6);
    expect(c.config.Env).toContain("STAGE=3");
    expect(ok(await cli(["cat", `docker-archive:${join(work, "app.docker.tar")}`, "/opt/extra.txt"])).stdout).toBe("extra\n");
    expect(ok(await cli(["cat", `docker-archive:${join(work, "app.docker.tar")}`, "/etc/app.yaml"])).stdout).toBe("listen: 8080\n");
    // A registry target from an archive base: the image is pushed whole.
    ok(await cli(["append", `docker-archive:${join(work, "app.docker.tar")}`, "--layer", tgz, "-t", `${reg.host}/loc/from-archive:6`]));
    expect((JSON.parse(ok(await cli(["config", `${reg.host}/loc/from-archive:6`])).stdout) as Config).rootfs.diff_ids).toHaveLength(7);
  }, 240_000);

  it("zstd: --compress zstd writes an OCI zstd layer, a .tar.zst is read (and kept as it is when zstd is asked), a Docker base refuses it", async () => {
    const tree = await appTree(join(work, "zstd-tree"));
    const zst = join(work, "extra.tar.zst");
    await run("bash", ["-c", `tar -C "${join(work, "zstd-tree")}" -c etc | zstd -q -o "${zst}"`]);
    const target = `oci:${join(work, "zstd-layout")}`;
    ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", tree, "--layer", zst, "--compress", "zstd", "-t", `${target}:zstd`]));
    const m = JSON.parse(ok(await cli(["manifest", `${target}:zstd`, "--platform", "linux/amd64"])).stdout) as Manifest;
    expect(m.layers.slice(-2).map((l) => l.mediaType)).toEqual(Array(2).fill("application/vnd.oci.image.layer.v1.tar+zstd"));
    expect(m.layers.at(-1)!.digest).toBe(sha256(await readFile(zst)));
    const c = JSON.parse(ok(await cli(["config", `${target}:zstd`, "--platform", "linux/amd64"])).stdout) as Config;
    for (const [i, layer] of m.layers.slice(-2).entries()) {
      const blob = join(work, `zstd-blob-${i}`);
      ok(await cli(["blob", `${target}@${layer.digest}`, "-o", blob]));
      expect(c.rootfs.diff_ids.at(i - 2)).toBe(sha256((await run("zstd", ["-dc", blob], { encoding: "buffer", maxBuffer: 64 << 20 })).stdout));
    }
    expect(ok(await cli(["cat", `${target}:zstd`, "/etc/app.yaml", "--platform", "linux/amd64"])).stdout).toBe("listen: 8080\n");
    // A .tar.zst onto the default gzip: recompressed, its diff_id the same.
    ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", zst, "-t", `${target}:gzip`]));
    const g = JSON.parse(ok(await cli(["config", `${target}:gzip`, "--platform", "linux/amd64"])).stdout) as Config;
    expect(g.rootfs.diff_ids.at(-1)).toBe(c.rootfs.diff_ids.at(-1));
    await pushImage(reg, "loc/docker", "1", await makeImage({ seed: "loc-docker", format: "docker" }));
    const refused = await cli(["append", `${reg.host}/loc/docker:1`, "--layer", tree, "--compress", "zstd", "-t", `${reg.host}/loc/docker:zstd`]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain("no zstd layer type");
  }, 180_000);

  it("written back into the archive it came from, the archive keeps its other images", async () => {
    await pushImage(reg, "loc/one", "1", await makeImage({ seed: "loc-one" }));
    await pushImage(reg, "loc/two", "1", await makeImage({ seed: "loc-two" }));
    const archive = join(work, "two-images.tar");
    ok(await cli(["pull", `${reg.host}/loc/one:1`]));
    ok(await cli(["pull", `${reg.host}/loc/two:1`]));
    ok(await cli(["image", "save", `${reg.host}/loc/one:1`, `${reg.host}/loc/two:1`, "-o", archive]));
    const two = ok(await cli(["digest", `docker-archive:${archive}:${reg.host}/loc/two:1`])).stdout.trim();
    const r = ok(await cli(["mutate", `docker-archive:${archive}:${reg.host}/loc/one:1`, "--env", "CHANGED=yes"]));
    expect(r.stderr).toContain("replaces");
    const c = JSON.parse(ok(await cli(["config", `docker-archive:${archive}:${reg.host}/loc/one:1`])).stdout) as Config;
    expect(c.config.Env).toContain("CHANGED=yes");
    expect(ok(await cli(["digest", `docker-archive:${archive}:${reg.host}/loc/two:1`])).stdout.trim()).toBe(two);
  }, 120_000);

  it("refuses device files and fifos unless asked, and what is not a directory or a tar", async () => {
    const dir = join(work, "with-fifo");
    await mkdir(dir, { recursive: true });
    await run("mkfifo", [join(dir, "pipe")]);
    const refused = await cli(["append", `${reg.host}/loc/base:1`, "--layer", dir, "-t", `${reg.host}/loc/app:fifo`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${join(dir, "pipe")} is a fifo`);
    if (asRoot) {
      // Root asks for them: a fifo and /dev/null's twin (character device 1:3) are in the layer, as export shows.
      await run("mknod", [join(dir, "null"), "c", "1", "3"]);
      ok(await cli(["append", `${reg.host}/loc/base:1`, "--layer", dir, "--allow-devices", "-t", `${reg.host}/loc/app:fifo`]));
      ok(await cli(["export", `${reg.host}/loc/app:fifo`, "--platform", "linux/amd64", "--devices", "-o", join(work, "devices")]));
      const exported = await snapshot(join(work, "devices"));
      expect(exported.get("pipe")).toMatchObject({ type: "fifo" });
      expect(exported.get("null")).toMatchObject({ type: "chr", rdev: (await snapshot(dir)).get("null")!.rdev });
    }
    const missing = await cli(["append", `${reg.host}/loc/base:1`, "--layer", join(work, "nothing-here"), "-t", `${reg.host}/loc/app:x`]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toContain("nothing-here");
  }, 120_000);
});

/** A distroless-like base (as gcr.io/distroless/static:nonroot): passwd and group files, /tmp, a home, no shell. */
async function pushDistrolessLike(reg: TestRegistry, repo: string, tag: string): Promise<void> {
  const rootfs = await makeTar([
    { name: "etc/", type: "directory" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" },
    { name: "etc/group", data: "root:x:0:\nnonroot:x:65532:\n" },
    { name: "home/", type: "directory" },
    { name: "home/nonroot/", type: "directory", mode: 0o700 },
    { name: "tmp/", type: "directory", mode: 0o1777 },
  ]);
  const layer = gzipSync(rootfs);
  const config = Buffer.from(JSON.stringify({
    architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
    config: { User: "65532", Env: ["PATH=/usr/local/bin:/usr/bin:/bin"], WorkingDir: "/home/nonroot" },
    rootfs: { type: "layers", diff_ids: [sha256(rootfs)] },
    history: [{ created: "1970-01-01T00:00:00Z", created_by: "bazel build @distroless//static:nonroot" }],
  }));
  for (const data of [config, layer]) await pushBlob(reg, repo, { digest: sha256(data), data });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length }],
  }));
  await pushManifest(reg, repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
}

describe("the README's ko-style example (Building images), against regcli serve", () => {
  let reg: TestRegistry;
  let home: string;

  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    home = await tempDir("regcli-home-");
    await pushDistrolessLike(reg, "distroless/static", "nonroot");
  });
  afterAll(async () => reg?.stop());

  /** The example exactly as the README shows it, its registry moved to the test's, in a fresh checkout. */
  async function runExample(): Promise<{ checkout: string; digest: string; stderr: string }> {
    const readme = await readFile(join(repoRoot, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Building images"));
    const script = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    expect(script).toContain("regcli append localhost:5000/distroless/static:nonroot --layer ./ko");
    const checkout = await tempDir("regcli-ko-");
    // A static binary to ship (catatonit, from podman's dependencies), committed at a fixed time.
    await mkdir(join(checkout, "out"));
    await copyFile("/usr/bin/catatonit", join(checkout, "out/hello"));
    const git = (args: string[]) => run("git", ["-c", "user.name=ci", "-c", "user.email=ci@example.com", ...args], { cwd: checkout, env: { ...process.env, GIT_COMMITTER_DATE: "1700000000 +0000", GIT_AUTHOR_DATE: "1700000000 +0000" } });
    await git(["init", "-q"]);
    await git(["add", "out"]);
    await git(["commit", "-q", "-m", "hello"]);
    const config = await dockerConfigDir();
    const env = { PATH: process.env.PATH, HOME: checkout, REGCLI_HOME: home, DOCKER_CONFIG: config, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: config, NO_COLOR: "1" };
    const prelude = `regcli() { "${process.execPath}" "${join(repoRoot, "bin", "regcli.cjs")}" "$@"; }\nset -e\n`;
    const { stdout, stderr } = await run("bash", ["-c", prelude + script.replaceAll("localhost:5000", reg.host)], { cwd: checkout, env, maxBuffer: 16 << 20 });
    return { checkout, digest: stdout.trim().split("\n").at(-1)!, stderr };
  }

  it("builds, pushes and runs; the same commit gives the same digest", async () => {
    const first = await runExample();
    const cli = (args: string[]) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home } });
    expect(ok(await cli(["digest", `${reg.host}/hello:1.0`])).stdout.trim()).toBe(first.digest);
    const c = JSON.parse(ok(await cli(["config", `${reg.host}/hello:1.0`])).stdout) as Config;
    expect(c.config).toMatchObject({ Entrypoint: ["/ko-app/hello"], User: "65532", WorkingDir: "/home/nonroot" });
    expect(c.created).toBe("2023-11-14T22:13:20Z");
    expect(c.rootfs.diff_ids).toHaveLength(2);
    expect(c.history.map((h) => h.created_by)).toEqual(["bazel build @distroless//static:nonroot", "regcli append", 'regcli mutate ENTRYPOINT ["/ko-app/hello"]']);
    // The binary runs from the unpacked image, with no shell in it.
    const layout = join(first.checkout, "verify");
    ok(await cli(["copy", `${reg.host}/hello:1.0`, `oci:${layout}:hello`]));
    await run("umoci", ["unpack", ...(asRoot ? [] : ["--rootless"]), "--image", `${layout}:hello`, join(first.checkout, "bundle")]);
    const rootfs = join(first.checkout, "bundle", "rootfs");
    expect((await readFile(join(rootfs, "ko-app/hello"))).equals(await readFile("/usr/bin/catatonit"))).toBe(true);
    if (asRoot) expect((await run("chroot", [rootfs, "/ko-app/hello", "--version"])).stdout).toContain("catatonit");
    // Another checkout of the same commit, another day: the same image.
    expect((await runExample()).digest).toBe(first.digest);
  }, 240_000);
});
