// docker-archive (docker save format) and oci-archive: written and read by regcli, and interop with skopeo.
import { createReadStream, createWriteStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip, gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podman, regcli, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex, seededBytes, sha256, type TestImage, type TestIndex } from "../helpers/images.js";
import { startContainerd } from "../helpers/containerd.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

async function tarEntries(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c) => void chunks.push(c as Buffer));
    stream.on("end", () => {
      out.set(header.name, Buffer.concat(chunks));
      next();
    });
  });
  await pipeline(createReadStream(file), extract);
  return out;
}

describe("archives", () => {
  let reg: TestRegistry;
  let app: TestImage;
  let multi: TestIndex;
  let busybox: TestImage; // docker.io/library/busybox:latest, served through the mirror setting
  let alpine: TestImage; // docker.io/library/alpine:latest: the same tag as busybox
  let hub: Record<string, string>;
  let home: string;
  let dir: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });

  beforeAll(async () => {
    reg = await startRegistry("open");
    app = await makeImage({ layers: 3, layerSize: 64 * 1024, format: "docker", seed: "archive-app" });
    await pushImage(reg, "team/app", "1.0", app);
    multi = makeIndex([
      await makeImage({ platform: { os: "linux", architecture: "amd64" }, seed: "a-amd" }),
      await makeImage({ platform: { os: "linux", architecture: "arm64", variant: "v8" }, seed: "a-arm" }),
    ]);
    await pushIndex(reg, "team/multi", "2.0", multi);
    busybox = await makeImage({ format: "docker", seed: "hub-busybox" });
    alpine = await makeImage({ format: "docker", seed: "hub-alpine" });
    await pushImage(reg, "library/busybox", "latest", busybox);
    await pushImage(reg, "library/alpine", "latest", alpine);
    home = await tempDir("regcli-home-");
    hub = { REGCLI_HOME: await tempDir("regcli-home-"), REGCLI_REGISTRY_MIRRORS: reg.url };
    dir = await tempDir("regcli-archives-");
  });
  afterAll(async () => reg?.stop());

  it("pull -o FILE.tar writes the docker save format with manifest.json, repositories, config and layers", async () => {
    const file = join(dir, "app.tar");
    ok(await cli(["pull", `${reg.host}/team/app:1.0`, "-o", file]));
    const entries = await tarEntries(file);
    const manifest = JSON.parse(entries.get("manifest.json")!.toString());
    expect(manifest).toEqual([
      {
        Config: `blobs/sha256/${app.config.digest.slice(7)}`,
        RepoTags: [`${reg.host}/team/app:1.0`],
        Layers: app.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      },
    ]);
    expect(JSON.parse(entries.get("repositories")!.toString())).toHaveProperty([`${reg.host}/team/app`, "1.0"]);
    expect(entries.get(manifest[0].Config)!.equals(app.config.data)).toBe(true);
    expect(entries.has("index.json")).toBe(true);
    expect((await readdir(dir)).filter((f) => f.includes(".partial"))).toEqual([]);
  });

  it("skopeo reads regcli's docker-archive; regcli pushes it back with the same digest", async () => {
    const file = join(dir, "app.tar");
    const r = await skopeo(["copy", "--dest-tls-verify=false", `docker-archive:${file}`, `docker://${reg.host}/via-skopeo/app:1`]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = await skopeo(["inspect", "--config", "--raw", "--tls-verify=false", `docker://${reg.host}/via-skopeo/app:1`]);
    expect(JSON.parse(cfg.stdout)).toEqual(JSON.parse(app.config.data.toString()));
    const pushed = ok(await cli(["push", file, `${reg.host}/via-regcli/app:1`]));
    expect(pushed.stdout.trim()).toBe(app.manifestDigest);
    expect((await fetchManifest(reg, "via-regcli/app", "1")).body.equals(app.manifest)).toBe(true);
  });

  it("regcli pushes skopeo's docker-archive (legacy layout, uncompressed layers) with gzipped layers, gzipped or not; --preserve-digests keeps them as they are", async () => {
    const text = await makeImage({ layers: 2, layerSize: 256 * 1024, format: "docker", seed: "legacy-text", compressible: true });
    await pushImage(reg, "team/text", "1", text);
    const file = join(dir, "by-skopeo.tar");
    const made = await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/team/text:1`, `docker-archive:${file}:team/text:1`]);
    expect(made.code, made.stderr).toBe(0);
    const diffIds: string[] = JSON.parse(text.config.data.toString()).rootfs.diff_ids;
    const tarSizes = new Map([...(await tarEntries(file)).values()].map((data) => [sha256(data), data.length]));
    const pushed = ok(await cli(["push", `docker-archive:${file}`, `${reg.host}/from-skopeo-archive/text:1`]));
    const manifest = JSON.parse((await fetchManifest(reg, "from-skopeo-archive/text", "1")).body.toString());
    expect(pushed.stdout.trim()).toBe(sha256((await fetchManifest(reg, "from-skopeo-archive/text", "1")).body));
    expect(manifest.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(manifest.config.digest).toBe(text.config.digest);
    expect(manifest.layers).toHaveLength(2);
    for (const [i, layer] of manifest.layers.entries()) {
      expect(layer.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
      const blob = Buffer.from(await (await fetch(`${reg.url}/v2/from-skopeo-archive/text/blobs/${layer.digest}`)).arrayBuffer());
      expect([blob.length, sha256(blob)]).toEqual([layer.size, layer.digest]);
      expect(sha256(gunzipSync(blob))).toBe(diffIds[i]);
      expect(blob.length).toBeLessThan(tarSizes.get(diffIds[i]!)! / 10);
    }
    const gz = `${file}.gz`;
    await pipeline(createReadStream(file), createGzip(), createWriteStream(gz));
    const again = ok(await cli(["push", gz, `${reg.host}/from-gz/text:1`]));
    expect(again.stdout.trim()).toBe(pushed.stdout.trim());
    // Back out through skopeo (a docker-archive holds the uncompressed layers) and through regcli.
    const back = join(dir, "back-by-skopeo.tar");
    const viaSkopeo = await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/from-gz/text:1`, `docker-archive:${back}:x/y:1`]);
    expect(viaSkopeo.code, viaSkopeo.stderr).toBe(0);
    const backDigests = [...(await tarEntries(back)).values()].map((data) => sha256(data));
    for (const id of diffIds) expect(backDigests).toContain(id);
    const data = ok(await cli(["cat", `${reg.host}/from-gz/text:1`, "/layer1/data.bin"]));
    expect(data.stdoutBuffer.equals(Buffer.alloc(256 * 1024, "legacy-text layer 1\n"))).toBe(true);
    const exact = ok(await cli(["push", "--preserve-digests", file, `${reg.host}/exact/text:1`]));
    const kept = JSON.parse((await fetchManifest(reg, "exact/text", "1")).body.toString());
    expect(kept.layers.map((l: { digest: string }) => l.digest)).toEqual(diffIds);
    expect(exact.stdout.trim()).not.toBe(pushed.stdout.trim());
  });

  it("oci-archive keeps a whole index; copy reads and writes every transport", async () => {
    const file = join(dir, "multi-oci.tar");
    ok(await cli(["pull", "--all-platforms", `${reg.host}/team/multi:2.0`, "-o", file, "--format", "oci-archive"]));
    const entries = await tarEntries(file);
    expect(entries.has("manifest.json")).toBe(false);
    expect(JSON.parse(entries.get("index.json")!.toString()).manifests[0].digest).toBe(multi.manifestDigest);
    const info = await skopeo(["inspect", "--raw", `oci-archive:${file}:2.0`]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdoutBuffer.equals(multi.manifest)).toBe(true);
    const back = ok(await cli(["copy", `oci-archive:${file}:2.0`, `${reg.host}/restored/multi:2.0`]));
    expect(back.stdout.trim()).toBe(multi.manifestDigest);
    const toDocker = ok(await cli(["copy", `oci-archive:${file}`, `docker-archive:${join(dir, "conv.tar")}:team/multi:2.0`]));
    expect(toDocker.stdout.trim()).toBe(multi.manifestDigest);
    const layout = join(dir, "layout");
    ok(await cli(["copy", `docker-archive:${join(dir, "conv.tar")}:team/multi:2.0`, `oci:${layout}:x`]));
    const skopeoOut = join(dir, "skopeo-oci.tar");
    expect((await skopeo(["copy", "--all", `oci:${layout}:x`, `oci-archive:${skopeoOut}:y`])).code).toBe(0);
    const fromSkopeo = ok(await cli(["copy", `oci-archive:${skopeoOut}:y`, `${reg.host}/restored/skopeo:y`]));
    expect(fromSkopeo.stdout.trim()).toBe(multi.manifestDigest);
  });

  it("image save and image load move images between the store and an archive", async () => {
    ok(await cli(["pull", `${reg.host}/team/app:1.0`]));
    ok(await cli(["pull", "--all-platforms", `${reg.host}/team/multi:2.0`]));
    const file = join(dir, "saved.tar");
    ok(await cli(["image", "save", `${reg.host}/team/app:1.0`, `${reg.host}/team/multi:2.0`, "-o", file]));
    const manifest = JSON.parse((await tarEntries(file)).get("manifest.json")!.toString());
    expect(manifest.flatMap((e: { RepoTags: string[] }) => e.RepoTags).sort()).toEqual([`${reg.host}/team/app:1.0`, `${reg.host}/team/multi:2.0`]);
    const other = await tempDir("regcli-home-");
    const loaded = ok(await regcli(["image", "load", "-i", file], { env: { REGCLI_HOME: other } }));
    expect(loaded.stdout).toContain(`${reg.host}/team/app:1.0 ${app.manifestDigest}`);
    expect(loaded.stdout).toContain(`${reg.host}/team/multi:2.0 ${multi.manifestDigest}`);
    const images = JSON.parse(ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: other } })).stdout);
    expect(images.map((i: { digest: string }) => i.digest).sort()).toEqual([app.manifestDigest, multi.manifestDigest].sort());
  });

  it("a corrupted archive is refused clearly and nothing is pushed", async () => {
    const file = join(dir, "app.tar");
    const entries = await tarEntries(file);
    const pack = tar.pack();
    for (const [name, data] of entries) {
      const body = name.endsWith(app.layers[0]!.digest.slice(7)) ? Buffer.from(data.map((b, i) => (i === 100 ? b ^ 0xff : b))) : data;
      pack.entry({ name }, body);
    }
    pack.finalize();
    const bad = join(dir, "bad.tar");
    await pipeline(pack, createWriteStream(bad));
    const r = await cli(["push", bad, `${reg.host}/never/app:1`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/does not match its digest/);
    expect((await fetchManifest(reg, "never/app", "1")).status).toBe(404);
    const missing = await cli(["push", join(dir, "nope.tar"), `${reg.host}/never/app:1`]);
    expect(missing.code).toBe(2);
    expect(await readFile(file)).toBeTruthy();
  });

  it("image save --format oci-archive names images in full (io.containerd.image.name, tag in ref.name); regcli, ctr import and podman load them by name", async () => {
    const env = hub;
    for (const name of ["busybox", "alpine", `${reg.host}/team/app:1.0`]) ok(await regcli(["pull", name], { env }));
    const file = join(dir, "saved-oci.tar");
    ok(await regcli(["image", "save", "busybox", "alpine", `${reg.host}/team/app:1.0`, "-o", file, "--format", "oci-archive"], { env }));
    const index = JSON.parse((await tarEntries(file)).get("index.json")!.toString());
    expect(index.manifests.map((d: { annotations: unknown }) => d.annotations)).toEqual([
      { "io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest" },
      { "io.containerd.image.name": "docker.io/library/alpine:latest", "org.opencontainers.image.ref.name": "latest" },
      { "io.containerd.image.name": `${reg.host}/team/app:1.0`, "org.opencontainers.image.ref.name": "1.0" },
    ]);
    const other = { REGCLI_HOME: await tempDir("regcli-home-") };
    ok(await regcli(["image", "load", "-i", file], { env: other }));
    const images = JSON.parse(ok(await regcli(["images", "--format", "json"], { env: other })).stdout);
    expect(Object.fromEntries(images.map((i: { name: string; digest: string }) => [i.name, i.digest]))).toEqual({
      "docker.io/library/busybox:latest": busybox.manifestDigest,
      "docker.io/library/alpine:latest": alpine.manifestDigest,
      [`${reg.host}/team/app:1.0`]: app.manifestDigest,
    });
    const containerd = await startContainerd();
    try {
      const imported = await containerd.ctr(["images", "import", "--no-unpack", file]);
      expect(imported.code, imported.stderr).toBe(0);
      const listed = (await containerd.ctr(["images", "ls", "-q"])).stdout.trim().split("\n");
      expect(listed.sort()).toEqual(["docker.io/library/alpine:latest", "docker.io/library/busybox:latest", `${reg.host}/team/app:1.0`].sort());
    } finally {
      await containerd.stop();
    }
    // podman (4.3 loads one image per oci-archive) names them by io.containerd.image.name, not localhost/TAG.
    const storage = await tempDir("regcli-podman-");
    const one = join(dir, "busybox-oci.tar");
    ok(await regcli(["image", "save", "busybox", "-o", one, "--format", "oci-archive"], { env }));
    const pulled = join(dir, "pulled-oci.tar");
    ok(await cli(["pull", `${reg.host}/team/app:1.0`, "-o", pulled, "--format", "oci-archive"]));
    for (const [archive, name] of [[one, "docker.io/library/busybox:latest"], [pulled, `${reg.host}/team/app:1.0`]] as const) {
      const loaded = await podman(storage, ["load", "-q", "-i", archive]);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect(loaded.stdout).toContain(`Loaded image: ${name}`);
    }
    const names = await podman(storage, ["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(names.stdout.trim().split("\n").sort()).toEqual(["docker.io/library/busybox:latest", `${reg.host}/team/app:1.0`].sort());
    // An archive that names an image by a tag alone (skopeo oci-archive:FILE:TAG) has no repository to load it as.
    const tagOnly = join(dir, "tag-only.tar");
    expect((await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/team/app:1.0`, `oci-archive:${tagOnly}:v1`])).code).toBe(0);
    const third = { REGCLI_HOME: await tempDir("regcli-home-") };
    const refused = await regcli(["image", "load", "-i", tagOnly], { env: third });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/tag v1 \(sha256:[a-f0-9]{64}\) has no repository name, so it was not loaded/);
    expect(JSON.parse(ok(await regcli(["images", "--format", "json"], { env: third })).stdout)).toEqual([]);
  });

  it("a docker-archive's Docker Hub images are found by every form of their name, in copy, push and cat", async () => {
    const env = hub;
    for (const name of ["busybox", "alpine"]) ok(await regcli(["pull", name], { env }));
    const file = join(dir, "two.tar");
    ok(await regcli(["image", "save", "busybox", "alpine", "-o", file], { env }));
    const entries = await tarEntries(file);
    expect(JSON.parse(entries.get("manifest.json")!.toString()).map((e: { RepoTags: string[] }) => e.RepoTags)).toEqual([["busybox:latest"], ["alpine:latest"]]);
    // docker save before Docker 25 writes no index.json: the same archive without it.
    const legacy = join(dir, "two-legacy.tar");
    const pack = tar.pack();
    for (const [name, data] of entries) if (name !== "index.json" && name !== "oci-layout") pack.entry({ name }, data);
    pack.finalize();
    await pipeline(pack, createWriteStream(legacy));
    for (const archive of [file, legacy]) {
      for (const name of ["busybox:latest", "busybox", "library/busybox:latest", "docker.io/library/busybox:latest"]) {
        const r = ok(await regcli(["copy", "--preserve-digests", `docker-archive:${archive}:${name}`, `oci:${join(dir, "hub-layout")}:x`], { env }));
        expect(r.stdout.trim()).toBe(busybox.manifestDigest);
      }
      const pushed = ok(await regcli(["push", `docker-archive:${archive}:busybox`, `${reg.host}/pushed/busybox:1`], { env }));
      expect(pushed.stdout.trim()).toBe(busybox.manifestDigest);
      const data = ok(await regcli(["cat", `docker-archive:${archive}:library/alpine`, "/layer0/data.bin"], { env }));
      expect(data.stdoutBuffer.equals(seededBytes("hub-alpine:0", 4096))).toBe(true);
      const ambiguous = await regcli(["copy", `docker-archive:${archive}:latest`, `oci:${join(dir, "hub-layout")}:y`], { env });
      expect(ambiguous.code).toBe(2);
      expect(ambiguous.stderr).toMatch(/latest names 2 different images .*names: busybox:latest, alpine:latest/);
      const missing = await regcli(["cat", `docker-archive:${archive}:nginx`, "/x"], { env });
      expect(missing.code).toBe(4);
      expect(missing.stderr).toContain("names: busybox:latest, alpine:latest");
    }
  });

  it("a docker-archive's RepoTags are name:tag from the layout's full name, or none: never a bare tag", async () => {
    const named = join(dir, "named-layout");
    ok(await cli(["copy", "--preserve-digests", `${reg.host}/team/app:1.0`, `oci:${named}:v1`]));
    ok(await cli(["copy", `oci:${named}:v1`, `docker-archive:${join(dir, "v1.tar")}`]));
    const v1 = await tarEntries(join(dir, "v1.tar"));
    expect(JSON.parse(v1.get("manifest.json")!.toString())[0].RepoTags).toEqual([`${reg.host}/team/app:v1`]);
    const bySkopeo = join(dir, "skopeo-layout");
    expect((await skopeo(["copy", "--all", "--src-tls-verify=false", `docker://${reg.host}/team/multi:2.0`, `oci:${bySkopeo}:multi`])).code).toBe(0);
    const unnamed = join(dir, "unnamed.tar");
    ok(await cli(["copy", `oci:${bySkopeo}:multi`, `docker-archive:${unnamed}`]));
    const entries = await tarEntries(unnamed);
    expect(JSON.parse(entries.get("manifest.json")!.toString())[0].RepoTags).toEqual([]);
    expect(JSON.parse(entries.get("repositories")!.toString())).toEqual({});
    const inspected = await skopeo(["inspect", `docker-archive:${unnamed}`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    // A name given in docker-archive:FILE:NAME is an image name; in oci-archive:FILE:TAG a bare word is a tag.
    ok(await cli(["copy", `oci:${bySkopeo}:multi`, `docker-archive:${join(dir, "given.tar")}:team/multi`]));
    expect(JSON.parse((await tarEntries(join(dir, "given.tar"))).get("manifest.json")!.toString())[0].RepoTags).toEqual(["team/multi:latest"]);
    ok(await cli(["copy", `${reg.host}/team/app:1.0`, `oci-archive:${join(dir, "stable.tar")}:stable`]));
    const stable = JSON.parse((await tarEntries(join(dir, "stable.tar"))).get("index.json")!.toString());
    expect(stable.manifests[0].annotations).toEqual({ "io.containerd.image.name": `${reg.host}/team/app:stable`, "org.opencontainers.image.ref.name": "stable" });
  });

  it("copying a Docker image into an OCI layout says that the digest changed; --preserve-digests keeps it", async () => {
    const r = ok(await cli(["copy", `${reg.host}/team/app:1.0`, `oci:${join(dir, "converted")}:1`]));
    const to = r.stdout.trim();
    expect(to).not.toBe(app.manifestDigest);
    expect(r.stderr).toContain(`digest changed from ${app.manifestDigest} to ${to} (converted to OCI media types); use --preserve-digests to keep the original bytes`);
    const json = ok(await cli(["--progress", "json", "pull", `${reg.host}/team/app:1.0`, "-o", join(dir, "converted-json")]));
    const events = json.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(events).toContainEqual(expect.objectContaining({ type: "digest-changed", from: app.manifestDigest, to }));
    expect(json.stderr).not.toMatch(/^digest changed/m);
    const quiet = ok(await cli(["-q", "copy", `${reg.host}/team/app:1.0`, `oci:${join(dir, "converted-quiet")}:1`]));
    expect(quiet.stderr.trim()).toBe(`digest changed from ${app.manifestDigest} to ${to} (converted to OCI media types); use --preserve-digests to keep the original bytes`);
    const kept = ok(await cli(["copy", "--preserve-digests", `${reg.host}/team/app:1.0`, `oci:${join(dir, "kept")}:1`]));
    expect(kept.stdout.trim()).toBe(app.manifestDigest);
    expect(kept.stderr).not.toContain("digest changed");
  });
});
