// docker-archive (docker save format) and oci-archive: written and read by regcli, and interop with skopeo.
import { createReadStream, createWriteStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex, type TestImage, type TestIndex } from "../helpers/images.js";
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
    stream.on("data", (c: Buffer) => chunks.push(c));
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
    home = await tempDir("regcli-home-");
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

  it("regcli pushes skopeo's docker-archive (legacy layout, uncompressed layers), gzipped or not", async () => {
    const file = join(dir, "by-skopeo.tar");
    const made = await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/team/app:1.0`, `docker-archive:${file}:team/app:1.0`]);
    expect(made.code, made.stderr).toBe(0);
    const pushed = ok(await cli(["push", `docker-archive:${file}`, `${reg.host}/from-skopeo-archive/app:1`]));
    const manifest = JSON.parse((await fetchManifest(reg, "from-skopeo-archive/app", "1")).body.toString());
    expect(manifest.config.digest).toBe(app.config.digest);
    expect(pushed.stdout.trim()).toMatch(/^sha256:/);
    const gz = `${file}.gz`;
    await pipeline(createReadStream(file), createGzip(), createWriteStream(gz));
    const again = ok(await cli(["push", gz, `${reg.host}/from-gz/app:1`]));
    expect(again.stdout.trim()).toBe(pushed.stdout.trim());
    const viaSkopeo = await skopeo(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", `docker://${reg.host}/from-gz/app:1`, `oci:${join(dir, "check")}:x`]);
    expect(viaSkopeo.code, viaSkopeo.stderr).toBe(0);
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
});
