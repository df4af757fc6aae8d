// Every remote command, driven through the built binary, against a real docker-registry in each auth mode.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, repoRoot, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushBlob, pushImage, pushIndex, pushManifest, type TestImage, type TestIndex } from "../helpers/images.js";
import { startRegistry, type RegistryMode, type RegistryServer, type TestRegistry } from "../helpers/registry.js";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`regcli exited ${r.code}: ${r.stderr}`);
  return r;
}

// The same suite against CNCF Distribution and against regcli's own registry, so both stay honest.
const targets: Array<[RegistryServer, RegistryMode]> = [
  ["docker-registry", "open"],
  ["docker-registry", "basic"],
  ["docker-registry", "token"],
  ["docker-registry", "tls"],
  ["regcli", "open"],
  ["regcli", "basic"],
  ["regcli", "tls"],
];

describe.each(targets)("remote commands against %s (%s)", (server, mode) => {
  let reg: TestRegistry;
  let env: Record<string, string>;
  let flags: string[];
  let dockerImage: TestImage;
  let ociImage: TestImage;
  let index: TestIndex;
  const cli = (args: string[], extraEnv: Record<string, string> = {}) => regcli([...flags, ...args], { env: { ...env, ...extraEnv } });

  beforeAll(async () => {
    reg = await startRegistry(mode, { server });
    const auths = reg.admin ? { [reg.host]: reg.admin } : undefined;
    env = { DOCKER_CONFIG: await dockerConfigDir(auths) };
    flags = reg.caFile ? ["--ca-file", reg.caFile] : [];
    dockerImage = await makeImage({ layers: 3, layerSize: 64 * 1024, format: "docker", seed: `docker-${mode}`, labels: { team: "core" } });
    ociImage = await makeImage({ layers: 2, layerSize: 32 * 1024, format: "oci", seed: `oci-${mode}` });
    index = makeIndex(
      [
        await makeImage({ layers: 2, layerSize: 16 * 1024, platform: { os: "linux", architecture: "amd64" }, seed: `amd64-${mode}` }),
        await makeImage({ layers: 2, layerSize: 16 * 1024, platform: { os: "linux", architecture: "arm64", variant: "v8" }, seed: `arm64-${mode}` }),
      ],
      "oci",
    );
    await pushImage(reg, "app/docker", "1.0", dockerImage);
    await pushImage(reg, "app/oci", "1.0", ociImage);
    await pushIndex(reg, "app/multi", "1.0", index);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("ls lists repositories and tags, text and json", async () => {
    const repos = ok(await cli(["ls", reg.host]));
    expect(repos.stdout.split("\n").filter(Boolean)).toEqual(expect.arrayContaining(["app/docker", "app/oci", "app/multi"]));
    const tags = ok(await cli(["ls", `${reg.host}/app/docker`, "--format", "json"]));
    expect(JSON.parse(tags.stdout)).toEqual({ repository: `${reg.host}/app/docker`, tags: ["1.0"] });
  });

  it("ls follows Link pagination to the end", async () => {
    for (const t of ["a", "b", "c", "d", "e"]) await pushImage(reg, "app/paged", t, ociImage);
    // Distribution 2.8 ignores n= on tag lists (one page, no Link); it pages the catalog. Tag-list paging is
    // covered against a server that pages it, in network.test.ts.
    const r = ok(await cli(["ls", `${reg.host}/app/paged`, "--page-size", "2"]));
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["a", "b", "c", "d", "e"]);
    // With 1 per page, only following every Link header yields all four repositories.
    const repos = ok(await cli(["--debug", "ls", reg.host, "--page-size", "1", "--format", "json"]));
    expect(JSON.parse(repos.stdout).repositories.sort()).toEqual(["app/docker", "app/multi", "app/oci", "app/paged"]);
    expect(repos.stderr.match(/> GET \S+\/_catalog/g)!.length).toBeGreaterThanOrEqual(4);
  });

  it("manifest prints the bytes exactly as served", async () => {
    const r = ok(await cli(["manifest", `${reg.host}/app/docker:1.0`]));
    expect(r.stdoutBuffer.equals(dockerImage.manifest)).toBe(true);
    const idx = ok(await cli(["manifest", `${reg.host}/app/multi:1.0`]));
    expect(idx.stdoutBuffer.equals(index.manifest)).toBe(true);
    const json = JSON.parse(ok(await cli(["manifest", `${reg.host}/app/oci@${ociImage.manifestDigest}`, "--format", "json"])).stdout);
    expect(json.digest).toBe(ociImage.manifestDigest);
    expect(json.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
  });

  it("digest prints the manifest digest", async () => {
    expect(ok(await cli(["digest", `${reg.host}/app/docker:1.0`])).stdout.trim()).toBe(dockerImage.manifestDigest);
    expect(ok(await cli(["digest", `${reg.host}/app/multi:1.0`])).stdout.trim()).toBe(index.manifestDigest);
  });

  it("config prints the config blob, picking a platform from an index", async () => {
    expect(ok(await cli(["config", `${reg.host}/app/docker:1.0`])).stdoutBuffer.equals(dockerImage.config.data)).toBe(true);
    const arm = ok(await cli(["config", `${reg.host}/app/multi:1.0`, "--platform", "linux/arm64"]));
    expect(arm.stdoutBuffer.equals(index.images[1]!.config.data)).toBe(true);
    const amd = JSON.parse(ok(await cli(["config", `${reg.host}/app/multi:1.0`, "--format", "json"])).stdout);
    expect(amd.architecture).toBe("amd64");
  });

  it("inspect summarizes an image and an index", async () => {
    const text = ok(await cli(["inspect", `${reg.host}/app/docker:1.0`])).stdout;
    expect(text).toContain(dockerImage.manifestDigest);
    expect(text).toContain("application/vnd.docker.distribution.manifest.v2+json");
    expect(text).toContain("team=core");
    for (const l of dockerImage.layers) expect(text).toContain(l.digest);
    const json = JSON.parse(ok(await cli(["inspect", `${reg.host}/app/multi:1.0`, "--format", "json", "--platform", "linux/arm64"])).stdout);
    expect(json.digest).toBe(index.manifestDigest);
    expect(json.platforms.map((p: { platform: string }) => p.platform)).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(json.image.digest).toBe(index.images[1]!.manifestDigest);
    const arm = index.images[1]!;
    expect(json.image.totalSize).toBe(arm.config.size + arm.layers.reduce((n, l) => n + l.size, 0));
    expect(json.image.layers).toEqual(arm.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, compression: "gzip" })));
  });

  it("inspect text shows Env and each layer's media type; an artifact shows its artifactType and config type", async () => {
    const text = ok(await cli(["inspect", `${reg.host}/app/docker:1.0`])).stdout;
    expect(text).toMatch(/^Env:\n {2}PATH=\/usr\/bin$/m);
    for (const l of dockerImage.layers) expect(text).toMatch(new RegExp(`${l.digest}\\s+\\S+ \\S+\\s+application/vnd\\.docker\\.image\\.rootfs\\.diff\\.tar\\.gzip`));
    const empty = Buffer.from("{}");
    const sbom = Buffer.from('{"spdxVersion":"SPDX-2.3"}');
    for (const data of [empty, sbom]) await pushBlob(reg, "app/sbom", { digest: sha256(data), data });
    const artifact = (extra: Record<string, unknown>, configType: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...extra,
          config: { mediaType: configType, digest: sha256(empty), size: empty.length },
          layers: [{ mediaType: "application/spdx+json", digest: sha256(sbom), size: sbom.length }],
        }),
      );
    const typed = artifact({ artifactType: "application/vnd.example.sbom.v1" }, "application/vnd.oci.empty.v1+json");
    await pushManifest(reg, "app/sbom", "typed", typed, "application/vnd.oci.image.manifest.v1+json");
    await pushManifest(reg, "app/sbom", "config", artifact({}, "application/vnd.example.config.v1+json"), "application/vnd.oci.image.manifest.v1+json");
    const shown = ok(await cli(["inspect", `${reg.host}/app/sbom:typed`])).stdout;
    expect(shown).toMatch(/^Artifact: +application\/vnd\.example\.sbom\.v1$/m);
    expect(shown).toMatch(/^Config type: +application\/vnd\.oci\.empty\.v1\+json$/m);
    expect(shown).not.toContain("unknown");
    const json = JSON.parse(ok(await cli(["inspect", `${reg.host}/app/sbom:config`, "--format", "json"])).stdout);
    expect(json.image).toMatchObject({ artifactType: "application/vnd.example.config.v1+json", configMediaType: "application/vnd.example.config.v1+json" });
    expect(json.image.platform).toBeUndefined();
    expect(json.image.layers).toEqual([{ digest: sha256(sbom), size: sbom.length, mediaType: "application/spdx+json", compression: "unknown" }]);
  });

  it("blob streams a verified blob to stdout and to a file", async () => {
    const layer = dockerImage.layers[1]!;
    const out = ok(await cli(["blob", `${reg.host}/app/docker@${layer.digest}`]));
    expect(sha256(out.stdoutBuffer)).toBe(layer.digest);
    const dir = await tempDir();
    const file = join(dir, "layer.tgz");
    ok(await cli(["blob", `${reg.host}/app/docker@${layer.digest}`, "-o", file]));
    expect(sha256(await readFile(file))).toBe(layer.digest);
  });

  it("tag retags in place with the same digest", async () => {
    const r = ok(await cli(["tag", `${reg.host}/app/docker:1.0`, "stable"]));
    expect(r.stdout.trim()).toBe(dockerImage.manifestDigest);
    const served = await fetchManifest(reg, "app/docker", "stable");
    expect(served.body.equals(dockerImage.manifest)).toBe(true);
    expect(ok(await cli(["ls", `${reg.host}/app/docker`])).stdout.split("\n").filter(Boolean).sort()).toEqual(["1.0", "stable"]);
  });

  it("copy within the registry keeps digests for images and indexes", async () => {
    const r = ok(await cli(["copy", `${reg.host}/app/docker:1.0`, `${reg.host}/copies/docker:1.0`]));
    expect(r.stdout.trim()).toBe(dockerImage.manifestDigest);
    expect(r.stderr).toMatch(/mounted/i);
    expect((await fetchManifest(reg, "copies/docker", "1.0")).body.equals(dockerImage.manifest)).toBe(true);
    ok(await cli(["copy", `${reg.host}/app/multi:1.0`, `${reg.host}/copies/multi:1.0`]));
    expect((await fetchManifest(reg, "copies/multi", "1.0")).body.equals(index.manifest)).toBe(true);
    for (const img of index.images) {
      expect((await fetchManifest(reg, "copies/multi", img.manifestDigest)).body.equals(img.manifest)).toBe(true);
    }
  });

  it("copy --platform copies one image of an index", async () => {
    const r = ok(await cli(["copy", "--platform", "linux/arm64", `${reg.host}/app/multi:1.0`, `${reg.host}/copies/arm:1.0`]));
    expect(r.stdout.trim()).toBe(index.images[1]!.manifestDigest);
    expect((await fetchManifest(reg, "copies/arm", "1.0")).body.equals(index.images[1]!.manifest)).toBe(true);
  });

  it("copy --all-tags copies a whole repository", async () => {
    ok(await cli(["copy", "--all-tags", `${reg.host}/app/docker`, `${reg.host}/mirror/docker`]));
    const tags = ok(await cli(["ls", `${reg.host}/mirror/docker`])).stdout.split("\n").filter(Boolean).sort();
    expect(tags).toEqual(["1.0", "stable"]);
    const again = ok(await cli(["copy", "--all-tags", `${reg.host}/app/docker`, `${reg.host}/mirror/docker`]));
    expect(again.stderr).toMatch(/0 blobs .* uploaded/);
  });

  it("delete resolves a tag and removes the manifest", async () => {
    ok(await cli(["copy", `${reg.host}/app/oci:1.0`, `${reg.host}/trash/oci:old`]));
    const r = ok(await cli(["delete", `${reg.host}/trash/oci:old`]));
    expect(r.stdout.trim()).toBe(ociImage.manifestDigest);
    expect((await fetchManifest(reg, "trash/oci", ociImage.manifestDigest)).status).toBe(404);
    const gone = await cli(["manifest", `${reg.host}/trash/oci:old`]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/not found/);
    expect(gone.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("a missing image is exit 4 with one clear line", async () => {
    const r = await cli(["inspect", `${reg.host}/app/docker:nope`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`${reg.host}/app/docker:nope`);
    expect(r.stderr).toMatch(/MANIFEST_UNKNOWN/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("skopeo reads what regcli copied, byte for byte", async () => {
    const skopeoFlags = ["--tls-verify=false", ...(reg.admin ? ["--creds", `${reg.admin.username}:${reg.admin.password}`] : [])];
    const raw = await skopeo(["inspect", "--raw", ...skopeoFlags, `docker://${reg.host}/copies/docker:1.0`]);
    expect(raw.code).toBe(0);
    expect(raw.stdoutBuffer.equals(dockerImage.manifest)).toBe(true);
    const dir = await tempDir();
    const pulled = await skopeo(["copy", "--src-tls-verify=false", ...(reg.admin ? ["--src-creds", `${reg.admin.username}:${reg.admin.password}`] : []), `docker://${reg.host}/copies/multi:1.0`, `oci:${dir}:x`]);
    expect(pulled.code, pulled.stderr).toBe(0);
  });
});

describe("interop with skopeo across two registries", () => {
  let a: TestRegistry;
  let b: TestRegistry;
  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry("open"), startRegistry("open")]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("an image pushed by skopeo is copied by regcli with identical manifest bytes", async () => {
    const img = await makeImage({ layers: 4, layerSize: 128 * 1024, format: "docker", seed: "skopeo-src" });
    await pushImage(a, "staging/src", "v1", img);
    const dir = await tempDir();
    const viaSkopeo = ["--src-tls-verify=false", "--dest-tls-verify=false"];
    expect((await skopeo(["copy", ...viaSkopeo, `docker://${a.host}/staging/src:v1`, `oci:${dir}:v1`])).code).toBe(0);
    const pushed = await skopeo(["copy", ...viaSkopeo, `oci:${dir}:v1`, `docker://${a.host}/by-skopeo/img:v1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const source = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${a.host}/by-skopeo/img:v1`]);
    const r = await regcli(["copy", `${a.host}/by-skopeo/img:v1`, `${b.host}/by-regcli/img:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/uploaded/);
    const copy = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${b.host}/by-regcli/img:v1`]);
    expect(copy.stdoutBuffer.equals(source.stdoutBuffer)).toBe(true);
    const tags = await skopeo(["list-tags", "--tls-verify=false", `docker://${b.host}/by-regcli/img`]);
    expect(JSON.parse(tags.stdout).Tags).toEqual(["v1"]);
  });

  it("copy of a multi-platform index to another registry keeps every digest", async () => {
    const idx = makeIndex(
      [
        await makeImage({ platform: { os: "linux", architecture: "amd64" }, seed: "x-amd" }),
        await makeImage({ platform: { os: "linux", architecture: "arm", variant: "v7" }, seed: "x-arm" }),
      ],
      "docker",
    );
    await pushIndex(a, "multi/list", "2.0", idx);
    const r = await regcli(["copy", `${a.host}/multi/list:2.0`, `${b.host}/multi/list:2.0`, "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.digest).toBe(idx.manifestDigest);
    expect(result.stats.manifests).toBe(3);
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${b.host}/multi/list:2.0`]);
    expect(raw.stdoutBuffer.equals(idx.manifest)).toBe(true);
  });
});

describe("output into a pipe that closes early", () => {
  let reg: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open");
    image = await makeImage({ layers: 1, layerSize: 4 * 1024 * 1024, format: "oci", seed: "epipe" });
    await pushImage(reg, "pipe/app", "1.0", image);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("`blob | head -c 10` and `ls | head -1` end quietly with 0, not with an EPIPE stack trace", async () => {
    const bin = join(repoRoot, "bin", "regcli.cjs");
    const layer = image.layers[0]!;
    const script = [
      "set -o pipefail",
      `"${process.execPath}" "${bin}" --plain-http blob ${reg.host}/pipe/app@${layer.digest} | head -c 10 | wc -c`,
      `"${process.execPath}" "${bin}" --plain-http ls ${reg.host}/pipe/app | head -c 0`,
    ].join("\n");
    const child = spawn("bash", ["-c", script], { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(err).toBe("");
    expect(out.trim()).toBe("10");
    expect(code).toBe(0);
  });
});

describe("start-up", () => {
  it("the built CLI runs from the code cache the build recorded, and --version answers without loading it", async () => {
    const r = await regcli(["--debug", "--help"]);
    expect(r.stderr.split("\n")[0]).toBe("debug: code cache accepted");
    expect(r.stdout).toContain("Usage: regcli");
    expect(r.code).toBe(0);
    const version = await regcli(["--version"]);
    const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
    expect(version.stdout).toBe(`${pkg.version}\n`);
  });
});
