// index create/add/rm, rebase and flatten through the CLI: real docker-registry and `regcli serve`, layouts and
// archives as targets, read back by skopeo and umoci.
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir, tool, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, makeTar, pushBlob, pushImage, pushIndex, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { differences, snapshot, type Node } from "../helpers/tree.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

interface IndexDoc {
  mediaType: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: Record<string, string> }>;
  annotations?: Record<string, string>;
}

/**
 * An index of `image` (already in `repo`) and an attestation manifest for it (platform unknown/unknown), as buildx
 * pushes them, under `tag`; returns the attestation's digest.
 */
async function pushAttested(reg: TestRegistry, repo: string, tag: string, image: { manifestDigest: string; manifest: Buffer; mediaType: string; platform?: object }): Promise<string> {
  const statement = Buffer.from(JSON.stringify({ _type: "https://in-toto.io/Statement/v0.1", subject: [{ digest: { sha256: image.manifestDigest.slice(7) } }] }));
  const config = Buffer.from(JSON.stringify({ architecture: "unknown", os: "unknown", config: {}, rootfs: { type: "layers", diff_ids: [sha256(statement)] } }));
  for (const data of [statement, config]) await pushBlob(reg, repo, { digest: sha256(data), data });
  const oci = "application/vnd.oci.image.manifest.v1+json";
  const att = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: oci, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [{ mediaType: "application/vnd.in-toto+json", digest: sha256(statement), size: statement.length }] }));
  await pushManifest(reg, repo, sha256(att), att, oci);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform: image.platform },
        { mediaType: oci, digest: sha256(att), size: att.length, platform: { os: "unknown", architecture: "unknown" }, annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image.manifestDigest } },
      ],
    }),
  );
  await pushManifest(reg, repo, tag, index, "application/vnd.oci.image.index.v1+json");
  return sha256(att);
}

describe("index create, add and rm", () => {
  let reg: TestRegistry;
  let serve: TestRegistry;
  let home: string;
  let amd64: TestImage;
  let arm64: TestImage;
  let armv7: TestImage;
  let amd64New: TestImage;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  const raw = async (ref: string): Promise<IndexDoc> => JSON.parse(ok(await skopeo(["inspect", "--raw", "--tls-verify=false", ref])).stdout) as IndexDoc;

  beforeAll(async () => {
    [reg, serve] = await Promise.all([startRegistry("open"), startRegistry("open", { server: "regcli" })]);
    home = await tempDir("regcli-home-");
    amd64 = await makeImage({ seed: "idx-amd64", layers: 1 });
    arm64 = await makeImage({ seed: "idx-arm64", layers: 1, platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    armv7 = await makeImage({ seed: "idx-armv7", layers: 1, format: "docker", platform: { os: "linux", architecture: "arm", variant: "v7" } });
    amd64New = await makeImage({ seed: "idx-amd64-new", layers: 1 });
    await pushImage(reg, "parts/app", "amd64", amd64);
    await pushImage(reg, "parts/app", "arm64", arm64);
    await pushImage(reg, "parts/app", "armv7", armv7);
    await pushImage(reg, "parts/app", "amd64-new", amd64New);
  });
  afterAll(async () => {
    await reg?.stop();
    await serve?.stop();
  });

  it("create: platforms from the configs, children copied to the target repository (and from an OCI layout)", async () => {
    const dir = await tempDir();
    ok(await cli(["copy", `${reg.host}/parts/app:arm64`, `oci:${dir}/arm:a`]));
    const r = ok(await cli(["index", "create", `${reg.host}/multi/app:1`, `${reg.host}/parts/app:amd64`, `oci:${dir}/arm:a`, "--annotation", "org.opencontainers.image.version=1"]));
    const index = await raw(`docker://${reg.host}/multi/app:1`);
    expect(r.stdout.trim()).toBe(sha256(ok(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/multi/app:1`])).stdoutBuffer));
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.annotations).toEqual({ "org.opencontainers.image.version": "1" });
    expect(index.manifests.map((m) => [m.digest, m.platform])).toEqual([
      [amd64.manifestDigest, { os: "linux", architecture: "amd64" }],
      [arm64.manifestDigest, { os: "linux", architecture: "arm64", variant: "v8" }],
    ]);
    // Each child is in the target repository, whole: skopeo copies the whole index out of it.
    const out = await tempDir();
    ok(await skopeo(["copy", "--all", "--src-tls-verify=false", `docker://${reg.host}/multi/app:1`, `oci:${out}:x`]));
    expect(r.stderr).toMatch(/Wrote the index .*multi\/app:1 \(2 images: linux\/amd64, linux\/arm64\/v8\)/);
  });

  it("create --format json; an index argument gives its children; two images of one platform are refused", async () => {
    await pushIndex(reg, "parts/pair", "1", makeIndex([amd64, arm64]));
    const r = ok(await cli(["index", "create", `${reg.host}/multi/three:1`, `${reg.host}/parts/pair:1`, `${reg.host}/parts/app:armv7`, "--format", "json"]));
    const out = JSON.parse(r.stdout) as { digest: string; manifests: Array<{ digest: string; platform: string }> };
    expect(out.digest).toBe((await fetchManifest(reg, "multi/three", "1")).digest);
    expect(out.manifests.map((m) => m.platform)).toEqual(["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]);
    const clash = await cli(["index", "create", `${reg.host}/multi/clash:1`, `${reg.host}/parts/app:amd64`, `${reg.host}/parts/app:amd64-new`]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/two images for linux\/amd64/);
    expect((await fetchManifest(reg, "multi/clash", "1")).status).toBe(404);
  });

  it("BuildKit attestations come along with their image, never clash as a platform, and go when it is replaced or removed", async () => {
    await pushImage(reg, "parts/attested", undefined, amd64);
    await pushImage(reg, "parts/attested", undefined, arm64);
    const attAmd = await pushAttested(reg, "parts/attested", "amd64", amd64);
    const attArm = await pushAttested(reg, "parts/attested", "arm64", arm64);
    const target = `${reg.host}/multi/attested:1`;
    ok(await cli(["index", "create", target, `${reg.host}/parts/attested:amd64`, `${reg.host}/parts/attested:arm64`]));
    expect((await raw(`docker://${target}`)).manifests.map((m) => m.digest)).toEqual([amd64.manifestDigest, attAmd, arm64.manifestDigest, attArm]);
    ok(await cli(["index", "add", target, `${reg.host}/parts/app:amd64-new`]));
    expect((await raw(`docker://${target}`)).manifests.map((m) => m.digest)).toEqual([amd64New.manifestDigest, arm64.manifestDigest, attArm]);
    const removed = ok(await cli(["index", "rm", target, "linux/arm64", "--format", "json"]));
    expect((JSON.parse(removed.stdout) as { removed: Array<{ digest: string }> }).removed.map((r) => r.digest)).toEqual([arm64.manifestDigest, attArm]);
    expect((await raw(`docker://${target}`)).manifests.map((m) => m.digest)).toEqual([amd64New.manifestDigest]);
  });

  it("create --media-type docker: a manifest list of Docker manifests only", async () => {
    const docker = await makeImage({ seed: "idx-docker-amd64", layers: 1, format: "docker" });
    await pushImage(reg, "parts/docker", "amd64", docker);
    ok(await cli(["index", "create", "--media-type", "docker", `${reg.host}/multi/list:1`, `${reg.host}/parts/docker:amd64`, `${reg.host}/parts/app:armv7`]));
    const list = await raw(`docker://${reg.host}/multi/list:1`);
    expect(list.mediaType).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
    expect(list.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm"]);
    const mixed = await cli(["index", "create", "--media-type", "docker", `${reg.host}/multi/list:2`, `${reg.host}/parts/app:amd64`]);
    expect(mixed.code).toBe(7);
    expect(mixed.stderr).toMatch(/Docker manifest list holds Docker image manifests only/);
  });

  it("add replaces the child of the same platform and says so; rm by platform and digest, never to an empty index", async () => {
    ok(await cli(["index", "create", `${serve.host}/edit/app:1`, `${reg.host}/parts/app:amd64`, `${reg.host}/parts/app:arm64`]));
    const before = (await fetchManifest(serve, "edit/app", "1")).digest!;
    const added = ok(await cli(["index", "add", `${serve.host}/edit/app:1`, `${reg.host}/parts/app:amd64-new`, `${reg.host}/parts/app:armv7`]));
    expect(added.stderr).toContain(`Replaced the linux/amd64 image ${amd64.manifestDigest} with ${amd64New.manifestDigest}`);
    expect(added.stderr).toContain(`previous index stays reachable by digest: ${before}`);
    let index = await raw(`docker://${serve.host}/edit/app:1`);
    expect(index.manifests.map((m) => m.digest)).toEqual([amd64New.manifestDigest, arm64.manifestDigest, armv7.manifestDigest]);
    // The old index is still there by digest.
    expect((await fetchManifest(serve, "edit/app", before)).status).toBe(200);

    const removed = ok(await cli(["index", "rm", `${serve.host}/edit/app:1`, "linux/arm64", armv7.manifestDigest]));
    expect(removed.stderr).toContain(`Removed linux/arm64/v8 ${arm64.manifestDigest}`);
    index = await raw(`docker://${serve.host}/edit/app:1`);
    expect(index.manifests.map((m) => m.digest)).toEqual([amd64New.manifestDigest]);

    const empty = await cli(["index", "rm", `${serve.host}/edit/app:1`, "linux/amd64"]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/would leave .* an empty index/);
    const missing = await cli(["index", "rm", `${serve.host}/edit/app:1`, "linux/s390x"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no child linux\/s390x/);
    const image = await cli(["index", "add", `${reg.host}/parts/app:amd64`, `${reg.host}/parts/app:arm64`]);
    expect(image.code).toBe(2);
    expect(image.stderr).toMatch(/is an image, not an index/);
    const absent = await cli(["index", "add", `${serve.host}/edit/nothing:1`, `${reg.host}/parts/app:arm64`]);
    expect(absent.code).toBe(4);
    expect(absent.stderr).toMatch(/index create/);
  });

  it("on an OCI layout, an oci-archive, a docker-archive and the store", async () => {
    const dir = await tempDir();
    // Layout: create, then add; skopeo reads the index and each child.
    ok(await cli(["index", "create", `oci:${dir}/layout:1`, `${reg.host}/parts/app:amd64`]));
    ok(await cli(["index", "add", `oci:${dir}/layout:1`, `${reg.host}/parts/app:arm64`, `${reg.host}/parts/app:armv7`]));
    const layoutIndex = await raw(`oci:${dir}/layout:1`);
    expect(layoutIndex.manifests.slice(0, 2).map((m) => m.digest)).toEqual([amd64.manifestDigest, arm64.manifestDigest]);
    // A Docker image goes into a layout's OCI index in its OCI form, as copy writes it there.
    expect(layoutIndex.manifests[2]).toMatchObject({ mediaType: "application/vnd.oci.image.manifest.v1+json", platform: { architecture: "arm", variant: "v7" } });
    expect(layoutIndex.manifests[2]!.digest).not.toBe(armv7.manifestDigest);
    // Another Docker arm/v7 image replaces it, and the message names the digests in the index.
    const armv7b = await makeImage({ seed: "idx-armv7b", layers: 1, format: "docker", platform: { os: "linux", architecture: "arm", variant: "v7" } });
    await pushImage(reg, "parts/app", "armv7b", armv7b);
    const again = ok(await cli(["index", "add", `oci:${dir}/layout:1`, `${reg.host}/parts/app:armv7b`]));
    const after = await raw(`oci:${dir}/layout:1`);
    expect(after.manifests).toHaveLength(3);
    expect(again.stderr).toContain(`Replaced the linux/arm/v7 image ${layoutIndex.manifests[2]!.digest} with ${after.manifests[2]!.digest}`);
    ok(await skopeo(["copy", "--all", `oci:${dir}/layout:1`, `oci:${dir}/by-skopeo:1`]));

    // Archives are rewritten whole: the children of the index come along.
    for (const flavour of ["oci-archive", "docker-archive"]) {
      const file = join(dir, `${flavour}.tar`);
      const name = flavour === "oci-archive" ? "1" : "example.com/app:1";
      ok(await cli(["index", "create", `${flavour}:${file}:${name}`, `${reg.host}/parts/app:amd64`, `${reg.host}/parts/app:arm64`]));
      ok(await cli(["index", "rm", `${flavour}:${file}:${name}`, "linux/arm64"]));
      const out = await tempDir();
      ok(await cli(["copy", `${flavour}:${file}:${name}`, `oci:${out}:x`]));
      expect((await raw(`oci:${out}:x`)).manifests.map((m) => m.digest)).toEqual([amd64.manifestDigest]);
    }

    ok(await cli(["index", "create", "store:example.com/multi:1", `${reg.host}/parts/app:amd64`, `${reg.host}/parts/app:arm64`]));
    // An archive holding other images keeps them when its index is edited.
    ok(await cli(["copy", `${reg.host}/parts/app:armv7`, "store:example.com/other:1"]));
    const both = join(dir, "both.tar");
    ok(await cli(["image", "save", "example.com/multi:1", "example.com/other:1", "-o", both]));
    ok(await cli(["index", "rm", `docker-archive:${both}:example.com/multi:1`, "linux/amd64"]));
    const fromArchive = await tempDir();
    ok(await cli(["copy", `docker-archive:${both}:example.com/multi:1`, `oci:${fromArchive}:multi`]));
    expect((await raw(`oci:${fromArchive}:multi`)).manifests.map((m) => m.digest)).toEqual([arm64.manifestDigest]);
    expect(ok(await cli(["manifest", `docker-archive:${both}:example.com/other:1`])).stdoutBuffer.equals(armv7.manifest)).toBe(true);

    ok(await cli(["index", "rm", "store:example.com/multi:1", amd64.manifestDigest]));
    const pushed = ok(await cli(["push", "store:example.com/multi:1", `${reg.host}/from-store/multi:1`]));
    expect((await raw(`docker://${reg.host}/from-store/multi:1`)).manifests.map((m) => m.digest)).toEqual([arm64.manifestDigest]);
    expect(pushed.stdout.trim()).toBe((await fetchManifest(reg, "from-store/multi", "1")).digest);
  });
});

/** An image of these layer tars (gzipped) with a real config (diff_ids, one history entry per layer), pushed under `tag`. */
async function pushLayered(reg: TestRegistry, repo: string, tag: string, tars: Buffer[], opts: { platform?: { os: string; architecture: string; variant?: string }; annotations?: Record<string, string>; base?: { layers: Buffer[]; tars: Buffer[]; history: unknown[] } } = {}): Promise<{ digest: string; manifest: Buffer; layers: Buffer[]; config: Record<string, unknown> }> {
  const layers = [...(opts.base?.layers ?? []), ...tars.map((t) => gzipSync(t))];
  const allTars = [...(opts.base?.tars ?? []), ...tars];
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const config = {
    ...platform,
    created: "2026-01-02T03:04:05Z",
    config: { Entrypoint: ["/usr/bin/tool"], Env: ["PATH=/usr/bin"] },
    rootfs: { type: "layers", diff_ids: allTars.map(sha256) },
    history: [...(opts.base?.history ?? []), { created_by: `ENV ${repo}`, empty_layer: true }, ...tars.map((_, i) => ({ created_by: `${repo} layer ${i}` }))],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  for (const data of [configBytes, ...layers]) await pushBlob(reg, repo, { digest: sha256(data), data });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(configBytes), size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    }),
  );
  await pushManifest(reg, repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
  return { digest: sha256(manifest), manifest, layers, config };
}

/** The tree's entries as "path type mode" lines (a file with its content digest, a symlink with its target). */
const listing = (nodes: Map<string, Node>): string[] => [...nodes].map(([path, n]) => `${path} ${n.type} ${n.mode.toString(8)}${n.content ? ` ${n.content}` : ""}${n.target ? ` -> ${n.target}` : ""}`);

const manifestOf = async (reg: TestRegistry, repo: string, ref: string): Promise<ImageManifestDoc> => JSON.parse((await fetchManifest(reg, repo, ref)).body.toString()) as ImageManifestDoc;
const blobOf = async (reg: TestRegistry, repo: string, digest: string): Promise<Buffer> => Buffer.from(await (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`)).arrayBuffer());

interface ImageManifestDoc {
  mediaType: string;
  config: { digest: string };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
  annotations?: Record<string, string>;
}

describe("flatten", () => {
  let reg: TestRegistry;
  let home: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  const layerTars = async () => [
    await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/os-release", data: "NAME=base\n" },
      { name: "etc/motd", data: "hello\n" },
      { name: "usr/", type: "directory" },
      { name: "usr/bin/", type: "directory" },
      { name: "usr/bin/tool", data: "#!/bin/sh\necho tool\n", mode: 0o4755 },
      { name: "usr/lib/", type: "directory" },
      { name: "usr/lib/libc.so", data: "libc" },
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "opt/", type: "directory" },
      { name: "opt/old/", type: "directory" },
      { name: "opt/old/a", data: "a" },
      { name: "tmp/", type: "directory", mode: 0o1777 },
    ]),
    await makeTar([
      { name: "etc/.wh.motd" },
      { name: "opt/old/", type: "directory" },
      { name: "opt/old/.wh..wh..opq" },
      { name: "opt/old/b", data: "b" },
      { name: "usr/bin/tool2", type: "link", linkname: "usr/bin/tool" },
    ]),
    await makeTar([{ name: "etc/os-release", data: "NAME=top\n" }]),
  ];

  beforeAll(async () => {
    reg = await startRegistry("open");
    home = await tempDir("regcli-home-");
    await pushLayered(reg, "flat/app", "1", await layerTars());
  });
  afterAll(async () => reg?.stop());

  it("one layer, whiteouts applied: diff_id is the tar's digest, one history entry, the same tree as export and umoci unpack", async () => {
    const r = ok(await cli(["flatten", `${reg.host}/flat/app:1`, "-t", `${reg.host}/flat/app:flat`]));
    const manifest = JSON.parse(ok(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/flat/app:flat`])).stdout) as ImageManifestDoc;
    expect(r.stdout.trim()).toBe((await fetchManifest(reg, "flat/app", "flat")).digest);
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    const config = JSON.parse(ok(await skopeo(["inspect", "--config", "--raw", "--tls-verify=false", `docker://${reg.host}/flat/app:flat`])).stdout) as { rootfs: { diff_ids: string[] }; history: Array<{ created_by: string }>; config: { Entrypoint: string[] }; created: string };
    const layer = await blobOf(reg, "flat/app", manifest.layers[0]!.digest);
    expect(config.rootfs.diff_ids).toEqual([sha256(gunzipSync(layer))]);
    expect(config.history).toHaveLength(1);
    expect(config.history[0]!.created_by).toMatch(/^regcli flatten sha256:/);
    expect(config.config.Entrypoint).toEqual(["/usr/bin/tool"]);
    expect(config.created).toBe("2026-01-02T03:04:05Z");

    // umoci unpacks the flattened image to the same tree regcli export makes of the original.
    const dir = await tempDir();
    ok(await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/flat/app:flat`, `oci:${dir}/layout:flat`]));
    ok(await tool("umoci", ["unpack", "--image", `${dir}/layout:flat`, `${dir}/bundle`]));
    ok(await cli(["export", `${reg.host}/flat/app:1`, "-o", `${dir}/exported/`, "--preserve-permissions"]));
    const unpacked = await snapshot(`${dir}/bundle/rootfs`);
    expect(differences(unpacked, await snapshot(`${dir}/exported`))).toEqual([]);
    expect(listing(unpacked)).toContain(`etc/os-release file 644 ${sha256("NAME=top\n")}`);
    expect(listing(unpacked)).toContain("usr/bin/tool file 4755 " + sha256("#!/bin/sh\necho tool\n"));
    expect(unpacked.get("usr/bin/tool2")!.links).toBe("usr/bin/tool usr/bin/tool2");
    expect([...unpacked.keys()].filter((p) => p === "etc/motd" || p.startsWith("opt/old/"))).toEqual(["opt/old/b"]);
  });

  it("is reproducible: to a registry, an OCI layout and the store, the same digest; --compress none", async () => {
    const dir = await tempDir();
    const first = ok(await cli(["flatten", `${reg.host}/flat/app:1`, "-t", `${reg.host}/flat/app:again`])).stdout.trim();
    const second = ok(await cli(["flatten", `${reg.host}/flat/app:1`, "-t", `oci:${dir}/layout:flat`])).stdout.trim();
    expect(second).toBe(first);
    const third = ok(await cli(["flatten", `${reg.host}/flat/app:1`, "-t", "store:example.com/flat:1"])).stdout.trim();
    expect(third).toBe(first);
    expect(ok(await cli(["cat", "store:example.com/flat:1", "/opt/old/b"])).stdout).toBe("b");
    expect(first).toBe((await fetchManifest(reg, "flat/app", "flat")).digest ?? first);
    const plain = ok(await cli(["flatten", `${reg.host}/flat/app:1`, "-t", `oci:${dir}/layout:plain`, "--compress", "none", "--format", "json"]));
    const manifest = JSON.parse(ok(await skopeo(["inspect", "--raw", `oci:${dir}/layout:plain`])).stdout) as ImageManifestDoc;
    expect(manifest.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
    const config = JSON.parse(ok(await skopeo(["inspect", "--config", "--raw", `oci:${dir}/layout:plain`])).stdout) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual([manifest.layers[0]!.digest]);
    expect((JSON.parse(plain.stdout) as { digest: string }).digest).toBe(sha256(ok(await skopeo(["inspect", "--raw", `oci:${dir}/layout:plain`])).stdoutBuffer));
  });

  it("keeps a Docker image's media types", async () => {
    const docker = await makeImage({ seed: "flat-docker", layers: 3, format: "docker" });
    await pushImage(reg, "flat/docker", "1", docker);
    ok(await cli(["flatten", `${reg.host}/flat/docker:1`, "-t", `${reg.host}/flat/docker:flat`]));
    const m = JSON.parse((await fetchManifest(reg, "flat/docker", "flat")).body.toString()) as ImageManifestDoc & { config: { mediaType: string } };
    expect(m.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(m.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    expect(m.layers.map((l) => l.mediaType)).toEqual(["application/vnd.docker.image.rootfs.diff.tar.gzip"]);
    const config = JSON.parse((await blobOf(reg, "flat/docker", m.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual([sha256(gunzipSync(await blobOf(reg, "flat/docker", m.layers[0]!.digest)))]);
    const files = ok(await cli(["export", `${reg.host}/flat/docker:flat`])).stdoutBuffer.toString("latin1");
    for (const i of [0, 1, 2]) expect(files).toContain(`layer${i}/data.bin`);
  });

  it("reads zstd layers and writes a zstd layer with --compress zstd (OCI images only)", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "add", "extra"), { recursive: true });
    await writeFile(join(dir, "add", "extra", "note"), "zstd layer\n");
    ok(await cli(["append", `${reg.host}/flat/app:1`, "--layer", join(dir, "add"), "--compress", "zstd", "-t", `${reg.host}/flat/app:zstd`]));
    ok(await cli(["flatten", `${reg.host}/flat/app:zstd`, "-t", `oci:${dir}/layout:z`, "--compress", "zstd"]));
    const manifest = JSON.parse(ok(await skopeo(["inspect", "--raw", `oci:${dir}/layout:z`])).stdout) as ImageManifestDoc;
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+zstd"]);
    const config = JSON.parse(ok(await skopeo(["inspect", "--config", "--raw", `oci:${dir}/layout:z`])).stdout) as { rootfs: { diff_ids: string[] } };
    const blob = join(dir, "layout", "blobs", ...manifest.layers[0]!.digest.split(":"));
    expect(config.rootfs.diff_ids).toEqual([sha256(execFileSync("zstd", ["-dc", blob], { maxBuffer: 64 * 1024 * 1024 }))]);
    ok(await cli(["export", `oci:${dir}/layout:z`, "-o", `${dir}/flat/`]));
    ok(await cli(["export", `${reg.host}/flat/app:zstd`, "-o", `${dir}/orig/`]));
    expect(differences(await snapshot(`${dir}/flat`), await snapshot(`${dir}/orig`))).toEqual([]);
    expect(ok(await cli(["cat", `oci:${dir}/layout:z`, "/extra/note"])).stdout).toBe("zstd layer\n");

    const docker = await makeImage({ seed: "flat-docker-zstd", layers: 1, format: "docker" });
    await pushImage(reg, "flat/docker", "z", docker);
    const refused = await cli(["flatten", `${reg.host}/flat/docker:z`, "-t", `${reg.host}/flat/docker:zflat`, "--compress", "zstd"]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/Docker schema 2 image has no zstd layer type/);
  });

  it("keeps a BuildKit attestation as it is while flattening its image", async () => {
    const image = await pushLayered(reg, "flat/attested", "image", await layerTars());
    const att = await pushAttested(reg, "flat/attested", "1", { manifestDigest: image.digest, manifest: image.manifest, mediaType: "application/vnd.oci.image.manifest.v1+json", platform: { os: "linux", architecture: "amd64" } });
    const r = ok(await cli(["flatten", `${reg.host}/flat/attested:1`, "-t", `${reg.host}/flat/attested:flat`, "--format", "json"]));
    expect((JSON.parse(r.stdout) as { images: unknown[] }).images).toHaveLength(1);
    const index = JSON.parse((await fetchManifest(reg, "flat/attested", "flat")).body.toString()) as IndexDoc;
    expect(index.manifests[1]!.digest).toBe(att);
    expect((await manifestOf(reg, "flat/attested", index.manifests[0]!.digest)).layers).toHaveLength(1);
  });

  it("each platform of an index, into a docker-archive", async () => {
    const tars = await layerTars();
    const amd = await pushLayered(reg, "flat/multi", "amd64", tars);
    const arm = await pushLayered(reg, "flat/multi", "arm64", tars.slice(0, 2), { platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd.digest, size: amd.manifest.length, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: arm.digest, size: arm.manifest.length, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        ],
      }),
    );
    await pushManifest(reg, "flat/multi", "1", index, "application/vnd.oci.image.index.v1+json");
    const dir = await tempDir();
    const file = join(dir, "flat.tar");
    ok(await cli(["flatten", `${reg.host}/flat/multi:1`, "-t", `docker-archive:${file}:example.com/flat:1`]));
    ok(await cli(["copy", `docker-archive:${file}:example.com/flat:1`, `${reg.host}/flat/back:1`]));
    const written = JSON.parse((await fetchManifest(reg, "flat/back", "1")).body.toString()) as IndexDoc;
    expect(written.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm64"]);
    for (const child of written.manifests) {
      const m = JSON.parse((await fetchManifest(reg, "flat/back", child.digest)).body.toString()) as ImageManifestDoc;
      expect(m.layers).toHaveLength(1);
    }
    // The arm64 image had no third layer: its os-release is the base's.
    const cat = ok(await cli(["cat", `${reg.host}/flat/back:1`, "/etc/os-release", "--platform", "linux/arm64"]));
    expect(cat.stdout).toBe("NAME=base\n");
  });
});

describe("rebase", () => {
  let reg: TestRegistry;
  let home: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  const manifestOf = async (repo: string, ref: string) => JSON.parse((await fetchManifest(reg, repo, ref)).body.toString()) as ImageManifestDoc;
  const configOf = async (repo: string, m: ImageManifestDoc) => JSON.parse((await blobOf(reg, repo, m.config.digest)).toString()) as { architecture: string; rootfs: { diff_ids: string[] }; history: Array<{ created_by: string; empty_layer?: boolean }>; config: { Entrypoint: string[] } };
  let base1: { tars: Buffer[]; layers: Buffer[]; history: unknown[]; digest: string };
  let base2: { tars: Buffer[]; layers: Buffer[]; history: unknown[]; digest: string };
  let appTar: Buffer;

  /** A base image of these tars pushed as rb/base:TAG (history: one entry per layer). */
  const pushBase = async (tag: string, tars: Buffer[], platform?: { os: string; architecture: string; variant?: string }) => {
    const pushed = await pushLayered(reg, "rb/base", tag, tars, { platform });
    return { tars, layers: pushed.layers, history: (pushed.config.history as unknown[]), digest: pushed.digest };
  };

  beforeAll(async () => {
    reg = await startRegistry("open");
    home = await tempDir("regcli-home-");
    base1 = await pushBase("1", [await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/os-release", data: "NAME=base1\n" }, { name: "etc/old-only", data: "old" }]), await makeTar([{ name: "usr/lib/libold.so", data: "old lib" }])]);
    base2 = await pushBase("2", [await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/os-release", data: "NAME=base2\n" }, { name: "usr/", type: "directory" }, { name: "usr/lib/", type: "directory" }, { name: "usr/lib/libnew.so", data: "new lib" }])]);
    appTar = await makeTar([{ name: "app/", type: "directory" }, { name: "app/run", data: "#!/bin/sh\n", mode: 0o755 }, { name: "etc/.wh.old-only" }]);
    await pushLayered(reg, "rb/app", "1", [appTar], { base: base1, annotations: { "org.opencontainers.image.base.name": `${reg.host}/rb/base:current`, "org.opencontainers.image.base.digest": base1.digest } });
  });
  afterAll(async () => reg?.stop());

  it("puts the image's own layers on the new base: layers, diff_ids and history stitched, base annotations updated", async () => {
    const r = ok(await cli(["rebase", `${reg.host}/rb/app:1`, "--old-base", `${reg.host}/rb/base:1`, "--new-base", `${reg.host}/rb/base:2`, "-t", `${reg.host}/rb/app:rebased`]));
    expect(r.stdout.trim()).toBe((await fetchManifest(reg, "rb/app", "rebased")).digest);
    const m = await manifestOf("rb/app", "rebased");
    expect(m.layers.map((l) => l.digest)).toEqual([sha256(base2.layers[0]!), sha256(gzipSync(appTar))]);
    const config = await configOf("rb/app", m);
    expect(config.rootfs.diff_ids).toEqual([sha256(base2.tars[0]!), sha256(appTar)]);
    // The new base's history, then the image's own after the old base's entries.
    expect(config.history.map((h) => h.created_by)).toEqual(["ENV rb/base", "rb/base layer 0", "ENV rb/app", "rb/app layer 0"]);
    expect(config.history.filter((h) => !h.empty_layer)).toHaveLength(2);
    expect(config.config.Entrypoint).toEqual(["/usr/bin/tool"]);
    expect(m.annotations).toEqual({ "org.opencontainers.image.base.name": `${reg.host}/rb/base:2`, "org.opencontainers.image.base.digest": base2.digest });

    // The file tree: the new base's, with the image's own layer on top; umoci and regcli export agree.
    const dir = await tempDir();
    ok(await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/rb/app:rebased`, `oci:${dir}/layout:r`]));
    ok(await tool("umoci", ["unpack", "--image", `${dir}/layout:r`, `${dir}/bundle`]));
    ok(await cli(["export", `${reg.host}/rb/app:rebased`, "-o", `${dir}/exported/`]));
    const unpacked = await snapshot(`${dir}/bundle/rootfs`);
    expect(differences(unpacked, await snapshot(`${dir}/exported`))).toEqual([]);
    expect([...unpacked.keys()].filter((p) => /^(etc|usr\/lib|app)\//.test(p))).toEqual(["app/run", "etc/os-release", "usr/lib/libnew.so"]);
    expect(ok(await cli(["cat", `${reg.host}/rb/app:rebased`, "/etc/os-release"])).stdout).toBe("NAME=base2\n");
  });

  it("takes the bases from the image's annotations (old: name@digest, new: the name as it is now), into an OCI layout", async () => {
    await pushBase("current", base2.tars); // the tag the image names has moved on to base2
    const dir = await tempDir();
    const r = ok(await cli(["rebase", `${reg.host}/rb/app:1`, "-t", `oci:${dir}/layout:r`]));
    const m = JSON.parse(ok(await skopeo(["inspect", "--raw", `oci:${dir}/layout:r`])).stdout) as ImageManifestDoc;
    expect(r.stdout.trim()).toBe(sha256(ok(await skopeo(["inspect", "--raw", `oci:${dir}/layout:r`])).stdoutBuffer));
    expect(m.layers.map((l) => l.digest)).toEqual([sha256(base2.layers[0]!), sha256(gzipSync(appTar))]);
    expect(m.annotations!["org.opencontainers.image.base.digest"]).toBe((await fetchManifest(reg, "rb/base", "current")).digest);
  });

  it("refuses an old base that is not the image's, a base of another platform, and an image without base annotations", async () => {
    const wrong = await cli(["rebase", `${reg.host}/rb/app:1`, "--old-base", `${reg.host}/rb/base:2`, "--new-base", `${reg.host}/rb/base:1`, "-t", `${reg.host}/rb/app:x`]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/is not based on .*rb\/base:2: layer 1 is sha256:\S+ in the image, sha256:\S+ in the old base/);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    // The same layer digests but other diff_ids in the config: not the old base's layers either.
    await pushLayered(reg, "rb/forged", "1", [appTar], { base: { ...base1, tars: [appTar, base1.tars[1]!] } });
    const forged = await cli(["rebase", `${reg.host}/rb/forged:1`, "--old-base", `${reg.host}/rb/base:1`, "--new-base", `${reg.host}/rb/base:2`, "-t", `${reg.host}/rb/app:x`]);
    expect(forged.code).toBe(2);
    expect(forged.stderr).toMatch(/is not based on .*: diff_id 1 is sha256:\S+ in the image's config, sha256:\S+ in the old base's/);
    await pushBase("arm", base2.tars, { os: "linux", architecture: "arm64" });
    const arm = await cli(["rebase", `${reg.host}/rb/app:1`, "--old-base", `${reg.host}/rb/base:1`, "--new-base", `${reg.host}/rb/base:arm`, "-t", `${reg.host}/rb/app:x`]);
    expect(arm.code).toBe(2);
    expect(arm.stderr).toMatch(/new base .* is a linux\/arm64 image, and .* is linux\/amd64/);
    const plain = await cli(["rebase", `${reg.host}/rb/base:1`, "-t", `${reg.host}/rb/app:x`]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/no org\.opencontainers\.image\.base\.name\/org\.opencontainers\.image\.base\.digest annotation .*--old-base/);
    expect((await fetchManifest(reg, "rb/app", "x")).status).toBe(404);
  });

  it("an index, per platform, on the bases' image of each platform", async () => {
    const arm = { os: "linux", architecture: "arm64", variant: "v8" };
    const oldArm = await pushLayered(reg, "rb/mbase", "old-arm", base1.tars, { platform: arm });
    const newArm = await pushLayered(reg, "rb/mbase", "new-arm", base2.tars, { platform: arm });
    const oldAmd = await pushLayered(reg, "rb/mbase", "old-amd", base1.tars);
    const newAmd = await pushLayered(reg, "rb/mbase", "new-amd", base2.tars);
    const appAmd = await pushLayered(reg, "rb/mapp", "amd", [appTar], { base: { ...base1, history: oldAmd.config.history as unknown[] } });
    const appArm = await pushLayered(reg, "rb/mapp", "arm", [appTar], { base: { ...base1, history: oldArm.config.history as unknown[] }, platform: arm });
    const indexOf = (children: Array<{ digest: string; manifest: Buffer; platform: object }>) =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: children.map((c) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: c.digest, size: c.manifest.length, platform: c.platform })) }));
    const amd = { os: "linux", architecture: "amd64" };
    await pushManifest(reg, "rb/mbase", "old", indexOf([{ ...oldAmd, platform: amd }, { ...oldArm, platform: arm }]), "application/vnd.oci.image.index.v1+json");
    await pushManifest(reg, "rb/mbase", "new", indexOf([{ ...newArm, platform: arm }, { ...newAmd, platform: amd }]), "application/vnd.oci.image.index.v1+json");
    await pushManifest(reg, "rb/mapp", "1", indexOf([{ ...appAmd, platform: amd }, { ...appArm, platform: arm }]), "application/vnd.oci.image.index.v1+json");
    const r = ok(await cli(["rebase", `${reg.host}/rb/mapp:1`, "--old-base", `${reg.host}/rb/mbase:old`, "--new-base", `${reg.host}/rb/mbase:new`, "-t", `${reg.host}/rb/mapp:rebased`, "--format", "json"]));
    const out = JSON.parse(r.stdout) as { images: Array<{ platform: string }> };
    expect(out.images.map((i) => i.platform).sort()).toEqual(["linux/amd64", "linux/arm64/v8"]);
    const index = JSON.parse((await fetchManifest(reg, "rb/mapp", "rebased")).body.toString()) as IndexDoc;
    for (const child of index.manifests) {
      const m = await manifestOf("rb/mapp", child.digest);
      const config = await configOf("rb/mapp", m);
      expect(config.architecture).toBe(child.platform!.architecture);
      expect(m.layers.map((l) => l.digest)).toEqual([sha256(base2.layers[0]!), sha256(gzipSync(appTar))]);
      expect(config.history.map((h) => h.created_by)).toEqual(["ENV rb/mbase", "rb/mbase layer 0", "ENV rb/mapp", "rb/mapp layer 0"]);
    }
  });
});
