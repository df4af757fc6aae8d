// index create/add/rm, rebase and flatten through the CLI: real docker-registry and `regcli serve`, layouts and
// archives as targets, read back by skopeo and umoci.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

interface IndexDoc {
  mediaType: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: Record<string, string> }>;
  annotations?: Record<string, string>;
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
