// Layer compression across locations: copy/push --compress gzip|zstd|none, zstd images made by podman, checked by
// outside readers (the zstd and gzip tools for diff_ids, skopeo; umoci unpack for the file tree of the gzip round trip).
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, readlink, lstat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podman, regcli, repoRoot, skopeo, tempDir, tool, type CliResult } from "../helpers/cli.js";
import { makeImage, makeIndex, makeTar, pushImage, pushIndex, seededBytes, sha256, type TestImage, type TestIndex } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

const ZSTD_MAGIC = "28b52ffd";
const GZIP_MAGIC = "1f8b";

interface LayoutImage {
  mediaType: string;
  layers: Array<{ mediaType: string; digest: string; size: number }>;
  diffIds: string[];
}

/** An image of an OCI layout, read as files: its manifest, and its config's diff_ids. */
async function layoutImage(dir: string, digest: string): Promise<LayoutImage> {
  const blob = async (d: string) => readFile(join(dir, "blobs", "sha256", d.slice(7)));
  const manifest = JSON.parse((await blob(digest)).toString());
  const config = JSON.parse((await blob(manifest.config.digest)).toString());
  return { mediaType: manifest.mediaType, layers: manifest.layers, diffIds: config.rootfs.diff_ids };
}

/** The layout's manifest under `tag` (index.json's ref.name annotation). */
async function layoutTag(dir: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
  return index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.["org.opencontainers.image.ref.name"] === tag).digest;
}

/** Each layer of a layout image: magic bytes as compressed, and the sha256 of its bytes as the zstd/gzip tools decompress them. */
async function checkLayers(dir: string, image: LayoutImage, magic: string): Promise<void> {
  for (const [i, layer] of image.layers.entries()) {
    const file = join(dir, "blobs", "sha256", layer.digest.slice(7));
    expect((await readFile(file)).subarray(0, magic.length / 2).toString("hex")).toBe(magic);
    const out = await tool("sh", ["-c", `${magic === ZSTD_MAGIC ? "zstd -dc" : "gzip -dc"} "$1" | sha256sum`, "sh", file]);
    expect(`sha256:${out.stdout.split(" ")[0]}`).toBe(image.diffIds[i]);
  }
}

/** A directory tree as "path type mode [content digest|link target]" lines, sorted. */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      const rel = relative(root, path);
      if (st.isDirectory()) {
        out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`);
        await walk(path);
      } else if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(path)}`);
      else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(await readFile(path)).digest("hex")}`);
    }
  };
  await walk(root);
  return out.sort();
}

describe("layer compression", () => {
  let reg: TestRegistry; // docker-registry
  let serve: TestRegistry; // regcli serve
  let docker: TestImage;
  let multi: TestIndex;
  const cli = (args: string[], opts: { env?: Record<string, string> } = {}) => regcli(["--plain-http", ...args], { timeoutMs: 300_000, ...opts });

  beforeAll(async () => {
    [reg, serve] = await Promise.all([startRegistry("open"), startRegistry("open", { server: "regcli" })]);
    docker = await makeImage({ format: "docker", layers: 2, layerSize: 300_000, compressible: true, seed: "docker" });
    multi = makeIndex([
      await makeImage({ seed: "amd", layerSize: 200_000, platform: { os: "linux", architecture: "amd64" } }),
      await makeImage({ seed: "arm", layerSize: 200_000, platform: { os: "linux", architecture: "arm64" } }),
    ]);
    await pushImage(reg, "src/docker", "1", docker);
    await pushIndex(reg, "src/multi", "1", multi);
  });
  afterAll(async () => Promise.all([reg?.stop(), serve?.stop()]));

  it("copy --compress zstd of a Docker image: OCI media types, zstd layers whose diff_ids hold, new digest reported; export, skopeo + umoci agree; back to gzip keeps the tree", async () => {
    const dir = await tempDir();
    const zstd = await cli(["copy", "--compress", "zstd", `${reg.host}/src/docker:1`, `${serve.host}/app:zstd`]);
    ok(zstd);
    const digest = zstd.stdout.trim();
    expect(digest).not.toBe(docker.manifestDigest);
    expect(zstd.stderr).toContain(`digest changed from ${docker.manifestDigest} to ${digest} (layers re-compressed to zstd, OCI media types)`);
    expect(zstd.stderr).toMatch(/re-compressed to zstd as sha256:/);

    // An outside reader: skopeo copies it as it is into a layout; the zstd tool decompresses each layer.
    const layout = join(dir, "layout");
    ok(await skopeo(["copy", "--src-tls-verify=false", `docker://${serve.host}/app:zstd`, `oci:${layout}:zstd`]));
    const image = await layoutImage(layout, await layoutTag(layout, "zstd"));
    expect(image.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(image.layers.map((l) => l.mediaType)).toEqual(Array(2).fill("application/vnd.oci.image.layer.v1.tar+zstd"));
    expect(image.diffIds).toEqual(JSON.parse(docker.config.data.toString()).rootfs.diff_ids);
    await checkLayers(layout, image, ZSTD_MAGIC);

    ok(await cli(["export", `${serve.host}/app:zstd`, "-o", `${join(dir, "exported")}/`]));
    const files = await tree(join(dir, "exported"));
    expect(files.length).toBeGreaterThan(2);
    expect(ok(await cli(["cat", `${serve.host}/app:zstd`, "/layer1/data.bin"])).stdoutBuffer.subarray(0, 6).toString()).toBe("docker");

    // Round trip to gzip: same tree, gzip layers (OCI types: the image is OCI now), same diff_ids.
    const back = ok(await cli(["copy", "--compress", "gzip", `${serve.host}/app:zstd`, `oci:${join(dir, "gz")}:gz`]));
    const gz = await layoutImage(join(dir, "gz"), back.stdout.trim());
    expect(gz.layers.map((l) => l.mediaType)).toEqual(Array(2).fill("application/vnd.oci.image.layer.v1.tar+gzip"));
    await checkLayers(join(dir, "gz"), gz, GZIP_MAGIC);
    ok(await cli(["export", `oci:${join(dir, "gz")}:gz`, "-o", `${join(dir, "exported-gz")}/`]));
    expect(await tree(join(dir, "exported-gz"))).toEqual(files);
    // umoci (0.4.7 reads no zstd) unpacks the gzip round trip into the files regcli exported from the zstd image.
    ok(await tool("umoci", ["unpack", "--rootless", "--image", `${join(dir, "gz")}:gz`, join(dir, "bundle")]));
    expect(await tree(join(dir, "bundle", "rootfs"))).toEqual(files);

    // Registry to registry, the OCI image stays OCI: gzip layers under OCI's media type.
    const regGz = ok(await cli(["copy", "--compress", "gzip", `${serve.host}/app:zstd`, `${reg.host}/dst/app:gz`]));
    expect(regGz.stderr).toContain("(layers re-compressed to gzip); leave out --compress");
    const regGzJson = JSON.parse(ok(await cli(["inspect", `${reg.host}/dst/app:gz`, "--format", "json"])).stdout);
    expect(regGzJson.image.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(2).fill("application/vnd.oci.image.layer.v1.tar+gzip"));

    // Layers already in the asked compression pass untouched: same digest, no warning.
    const again = ok(await cli(["copy", "--compress", "zstd", `${serve.host}/app:zstd`, `${reg.host}/dst/app:zstd`]));
    expect(again.stdout.trim()).toBe(digest);
    expect(again.stderr).not.toMatch(/digest changed|re-compressed/);
  });

  it("copy --compress zstd of a multi-platform index to a layout, an archive and a registry: each child and the index rewritten, each new digest reported", async () => {
    const dir = await tempDir();
    const layout = join(dir, "multi");
    const r = ok(await cli(["copy", "--compress", "zstd", `${reg.host}/src/multi:1`, `oci:${layout}:1`]));
    const top = r.stdout.trim();
    expect(top).not.toBe(multi.manifestDigest);
    const index = JSON.parse((await readFile(join(layout, "blobs", "sha256", top.slice(7)))).toString());
    expect(index.manifests).toHaveLength(2);
    for (const [i, child] of index.manifests.entries()) {
      expect(child.digest).not.toBe(multi.images[i]!.manifestDigest);
      expect(child.platform).toEqual(multi.images[i]!.platform);
      expect(r.stderr).toContain(`digest changed from ${multi.images[i]!.manifestDigest} to ${child.digest}`);
      await checkLayers(layout, await layoutImage(layout, child.digest), ZSTD_MAGIC);
    }
    expect(r.stderr).toContain(`digest changed from ${multi.manifestDigest} to ${top}`);
    // The layout's zstd index on to an oci-archive and to a registry uncompressed, and read back by digest.
    const archive = join(dir, "multi.tar");
    ok(await cli(["copy", `oci:${layout}:1`, `oci-archive:${archive}:1`]));
    const plain = ok(await cli(["copy", "--compress", "none", `oci-archive:${archive}:1`, `${serve.host}/multi:plain`]));
    for (const platform of ["linux/amd64", "linux/arm64"]) {
      const json = JSON.parse(ok(await cli(["inspect", `${serve.host}/multi@${plain.stdout.trim()}`, "--platform", platform, "--format", "json"])).stdout);
      expect(json.image.layers.map((l: { compression: string }) => l.compression)).toEqual(["none", "none"]);
      expect(ok(await cli(["cat", `${serve.host}/multi:plain`, "/layer0/data.bin", "--platform", platform])).stdoutBuffer.length).toBe(200_000);
    }
  });

  it("push --compress zstd from a layout; --compress with --preserve-digests is a usage error", async () => {
    const dir = await tempDir();
    ok(await cli(["copy", `${reg.host}/src/docker:1`, `oci:${join(dir, "l")}:1`]));
    const pushed = ok(await cli(["push", "--compress", "zstd", `oci:${join(dir, "l")}:1`, `${serve.host}/pushed:1`]));
    const json = JSON.parse(ok(await cli(["inspect", `${serve.host}/pushed:1`, "--format", "json"])).stdout);
    expect(json.image.layers.map((l: { compression: string }) => l.compression)).toEqual(["zstd", "zstd"]);
    expect(pushed.stderr).toMatch(/digest changed from sha256:[0-9a-f]{64} to sha256:[0-9a-f]{64} \(layers re-compressed to zstd/);
    const both = await cli(["copy", "--compress", "zstd", "--preserve-digests", `${reg.host}/src/docker:1`, `oci:${join(dir, "x")}:1`]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--compress changes layer and manifest digests: it cannot go with --preserve-digests/);
  });

  it("zstd and zstd:chunked images pushed by podman: regcli exports them, and re-compresses them to gzip with the same files", async () => {
    const storage = await tempDir("regcli-podman-");
    const authfile = join(storage, "auth.json");
    await writeFile(authfile, "{}");
    const src = `${reg.host}/src/docker:1`;
    const pulled = await podman(storage, ["pull", "-q", "--tls-verify=false", "--authfile", authfile, src]);
    expect(pulled.code, pulled.stderr).toBe(0);
    // zstd:chunked first: podman's blob-info cache would otherwise reuse the plain zstd layers for it.
    const chunked = await podman(storage, ["push", "--tls-verify=false", "--authfile", authfile, "--compression-format", "zstd:chunked", src, `docker://${serve.host}/podman/chunked:1`]);
    expect(chunked.code, chunked.stderr).toBe(0);
    const pushed = await podman(storage, ["push", "--tls-verify=false", "--authfile", authfile, "--compression-format", "zstd", src, `docker://${serve.host}/podman/zstd:1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const json = JSON.parse(ok(await cli(["inspect", `${serve.host}/podman/zstd:1`, "--format", "json"])).stdout);
    expect(json.image.layers.map((l: { compression: string }) => l.compression)).toEqual(["zstd", "zstd"]);
    const dir = await tempDir();
    ok(await cli(["export", `${serve.host}/podman/zstd:1`, "-o", `${join(dir, "podman")}/`]));
    ok(await cli(["export", src, "-o", `${join(dir, "source")}/`]));
    const files = await tree(join(dir, "source"));
    expect(await tree(join(dir, "podman"))).toEqual(files);
    ok(await cli(["copy", "--compress", "gzip", `${serve.host}/podman/zstd:1`, `oci:${join(dir, "gz")}:1`]));
    const gz = await layoutImage(join(dir, "gz"), await layoutTag(join(dir, "gz"), "1"));
    await checkLayers(join(dir, "gz"), gz, GZIP_MAGIC);
    ok(await cli(["export", `oci:${join(dir, "gz")}:1`, "-o", `${join(dir, "gz-tree")}/`]));
    expect(await tree(join(dir, "gz-tree"))).toEqual(files);

    // zstd:chunked: skippable frames and a table of contents named by layer annotations, which re-compression drops.
    const raw = JSON.parse(ok(await cli(["manifest", `${serve.host}/podman/chunked:1`])).stdout);
    expect(Object.keys(raw.layers[0].annotations ?? {}).some((k) => /^io\.(github\.)?containers\.zstd-chunked\./.test(k))).toBe(true);
    ok(await cli(["export", `${serve.host}/podman/chunked:1`, "-o", `${join(dir, "chunked")}/`]));
    expect(await tree(join(dir, "chunked"))).toEqual(files);
    ok(await cli(["copy", "--compress", "gzip", `${serve.host}/podman/chunked:1`, `oci:${join(dir, "chunked-gz")}:1`]));
    const chunkedGz = JSON.parse((await readFile(join(dir, "chunked-gz", "blobs", "sha256", (await layoutTag(join(dir, "chunked-gz"), "1")).slice(7)))).toString());
    for (const layer of chunkedGz.layers) expect(layer.annotations).toBeUndefined();
    await checkLayers(join(dir, "chunked-gz"), await layoutImage(join(dir, "chunked-gz"), await layoutTag(join(dir, "chunked-gz"), "1")), GZIP_MAGIC);
  });

  it("re-compressing a 512 MiB layer keeps memory flat", async () => {
    const dir = await tempDir();
    const layout = join(dir, "big");
    await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
    // A plain tar of one 512 MiB file, written in 1 MiB pieces (half random, half text) and hashed on the way.
    const size = 512 * 1024 * 1024;
    const header = await makeTar([{ name: "big.bin", data: Buffer.alloc(0) }]);
    const tarHeader = Buffer.from(header.subarray(0, 512));
    tarHeader.write(size.toString(8).padStart(11, "0"), 124, "ascii");
    tarHeader.fill(" ", 148, 156);
    let sum = 0;
    for (const b of tarHeader) sum += b;
    tarHeader.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    const hash = createHash("sha256");
    const temp = join(layout, "layer.tmp");
    const out = createWriteStream(temp);
    const write = (b: Buffer) => {
      hash.update(b);
      return new Promise<void>((resolve) => (out.write(b) ? resolve() : out.once("drain", resolve)));
    };
    await write(tarHeader);
    const piece = Buffer.concat([seededBytes("big", 512 * 1024), Buffer.alloc(512 * 1024, "text of a big layer ")]);
    for (let i = 0; i < size / piece.length; i++) await write(piece);
    await write(Buffer.alloc(1024));
    await new Promise((resolve) => out.end(resolve));
    const layerDigest = `sha256:${hash.digest("hex")}`;
    const layerSize = 512 + size + 1024;
    await tool("mv", [temp, join(layout, "blobs", "sha256", layerDigest.slice(7))]);
    const put = async (data: Buffer) => {
      await writeFile(join(layout, "blobs", "sha256", sha256(data).slice(7)), data);
      return sha256(data);
    };
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layerDigest] } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await put(config), size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layerSize }],
      }),
    );
    const manifestDigest = await put(manifest);
    await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: manifestDigest, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "big" } }] }));

    const timed = await regcli(["-f", "peak-rss-kib=%M", process.execPath, join(repoRoot, "bin", "regcli.cjs"), "--plain-http", "copy", "--compress", "zstd", `oci:${layout}:big`, `${serve.host}/big:zstd`], { bin: "/usr/bin/time", timeoutMs: 600_000 });
    ok(timed);
    const peak = Number(/peak-rss-kib=(\d+)/.exec(timed.stderr)![1]) / 1024;
    console.log(`copy --compress zstd of a 512 MiB layer: peak RSS ${peak.toFixed(0)} MiB`);
    expect(peak).toBeLessThan(200);
    const json = JSON.parse(ok(await cli(["inspect", `${serve.host}/big:zstd`, "--format", "json"])).stdout);
    expect(json.image.layers[0].compression).toBe("zstd");
    expect(json.image.layers[0].size).toBeLessThan(size * 0.6);
  }, 900_000);
});
