// OCI 1.1 artifacts: artifact push/pull and attach through every location (regcli serve, docker-registry, OCI
// layouts, the store), pull's safety (hostile titles, symlinks, overwrite, atomicity), and artifacts refused as images.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, pushBlob, pushImage, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const EMPTY = { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256("{}"), size: 2 };
const TITLE = "org.opencontainers.image.title";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`regcli exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Files to push, written into a fresh directory. */
async function files(contents: Record<string, string | Buffer>): Promise<string> {
  const dir = await tempDir("regcli-art-files-");
  for (const [name, data] of Object.entries(contents)) writeFileSync(join(dir, name), data);
  return dir;
}

/** An artifact manifest whose layers carry the given titles, pushed straight to a registry (a hostile publisher). */
async function pushRawArtifact(reg: TestRegistry, repo: string, tag: string, titles: Array<string | undefined>): Promise<void> {
  await pushBlob(reg, repo, { digest: EMPTY.digest, data: Buffer.from("{}") });
  const layers = [];
  for (const [i, title] of titles.entries()) {
    const data = Buffer.from(`payload ${i}\n`);
    await pushBlob(reg, repo, { digest: sha256(data), data });
    layers.push({ mediaType: "text/plain", digest: sha256(data), size: data.length, ...(title !== undefined ? { annotations: { [TITLE]: title } } : {}) });
  }
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "application/vnd.test.hostile", config: EMPTY, layers };
  await pushManifest(reg, repo, tag, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
}

describe("artifact push, pull and attach on regcli serve (referrers API)", () => {
  let reg: TestRegistry;
  let home: string;
  let src: string;
  let image: TestImage;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    home = await tempDir("regcli-art-home-");
    src = await files({ "notes.txt": "hello artifact\n", "sbom.spdx.json": '{"spdxVersion":"SPDX-2.3"}\n' });
    image = await makeImage({ layers: 1, layerSize: 4096, seed: "artifact-subject" });
    await pushImage(reg, "art/app", "1.0", image);
  });
  afterAll(async () => reg?.stop());

  it("push makes an OCI 1.1 artifact (artifactType, empty config, titled layers, media types), and pull writes the same files", async () => {
    const r = ok(await cli(["artifact", "push", `${reg.host}/art/files:1`, join(src, "notes.txt"), `${join(src, "sbom.spdx.json")}:application/spdx+json`, "--artifact-type", "application/vnd.example.docs", "--annotation", "purpose=test"]));
    const digest = r.stdout.trim();
    const got = await fetchManifest(reg, "art/files", "1");
    expect(sha256(got.body)).toBe(digest);
    const m = JSON.parse(got.body.toString());
    expect(m).toMatchObject({ mediaType: OCI_MANIFEST, artifactType: "application/vnd.example.docs", config: EMPTY, annotations: { purpose: "test" } });
    expect(m.subject).toBeUndefined();
    expect(m.layers).toEqual([
      { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256("hello artifact\n"), size: 15, annotations: { [TITLE]: "notes.txt" } },
      { mediaType: "application/spdx+json", digest: sha256('{"spdxVersion":"SPDX-2.3"}\n'), size: 27, annotations: { [TITLE]: "sbom.spdx.json" } },
    ]);
    // The empty config blob is there too.
    const blob = await request(`${reg.url}/v2/art/files/blobs/${EMPTY.digest}`);
    expect(await blob.body.text()).toBe("{}");

    const out = join(await tempDir("regcli-art-out-"), "new", "dir");
    const pulled = ok(await cli(["artifact", "pull", `${reg.host}/art/files:1`, "-o", out]));
    expect(pulled.stdout.trim().split("\n")).toEqual(["notes.txt", "sbom.spdx.json"]);
    expect(readdirSync(out).sort()).toEqual(["notes.txt", "sbom.spdx.json"]);
    expect(readFileSync(join(out, "notes.txt"), "utf8")).toBe("hello artifact\n");
    expect(readFileSync(join(out, "sbom.spdx.json"), "utf8")).toBe('{"spdxVersion":"SPDX-2.3"}\n');

    // No overwrite without --force; with it, the file is replaced.
    writeFileSync(join(out, "notes.txt"), "mine");
    const again = await cli(["artifact", "pull", `${reg.host}/art/files:1`, "-o", out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/notes\.txt already exists.*--force/);
    expect(readFileSync(join(out, "notes.txt"), "utf8")).toBe("mine");
    ok(await cli(["artifact", "pull", `${reg.host}/art/files:1`, "-o", out, "--force"]));
    expect(readFileSync(join(out, "notes.txt"), "utf8")).toBe("hello artifact\n");
    expect(readdirSync(out).sort()).toEqual(["notes.txt", "sbom.spdx.json"]);
  });

  it("push into a layout resumes a file's partial blob from its end, never writing the whole file after it", async () => {
    const dir = await tempDir();
    const data = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
    writeFileSync(join(dir, "data.bin"), data);
    const hex = sha256(data).slice("sha256:".length);
    const layout = join(dir, "layout");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(layout, "blobs", "sha256", `${hex}.partial`), data.subarray(0, 1024 * 1024)); // a cut run's bytes
    ok(await cli(["artifact", "push", `oci:${layout}:1`, join(dir, "data.bin")]));
    const stored = readFileSync(join(layout, "blobs", "sha256", hex));
    expect(stored.length).toBe(data.length);
    expect(sha256(stored)).toBe(sha256(data));
  });

  it("pull, export and cat of an artifact say it is one and point to artifact pull (exit 2)", async () => {
    ok(await cli(["artifact", "push", `${reg.host}/art/refuse:1`, join(src, "notes.txt"), "--artifact-type", "application/vnd.example.docs"]));
    const ref = `${reg.host}/art/refuse:1`;
    for (const args of [["pull", ref], ["export", ref, "-o", join(await tempDir(), "x.tar")], ["cat", ref, "/etc/os-release"]]) {
      const r = await cli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toBe(`regcli: error: ${ref} is an artifact (application/vnd.example.docs), not a container image; get its files with: regcli artifact pull ${ref} -o DIR\n`);
    }
    // pull -o DIR: a layout the refused pull created is removed again; one that was there keeps what it held.
    const fresh = join(await tempDir(), "layout");
    expect((await cli(["pull", ref, "-o", fresh])).code).toBe(2);
    expect(existsSync(fresh)).toBe(false);
    const kept = join(await tempDir(), "kept");
    ok(await cli(["pull", `${reg.host}/art/app:1.0`, "-o", kept]));
    const before = readFileSync(join(kept, "index.json"), "utf8");
    expect((await cli(["pull", ref, "-o", kept])).code).toBe(2);
    expect(readFileSync(join(kept, "index.json"), "utf8")).toBe(before);
  });

  it("attach stores a referrer by digest (no tag) in the image's repository; --subject does the same under a tag", async () => {
    const attached = ok(await cli(["attach", `${reg.host}/art/app:1.0`, `${join(src, "sbom.spdx.json")}:application/spdx+json`, "--artifact-type", "application/spdx+json"]));
    const digest = attached.stdout.trim();
    const m = JSON.parse((await fetchManifest(reg, "art/app", digest)).body.toString());
    expect(m.subject).toEqual({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length });
    expect(m.artifactType).toBe("application/spdx+json");
    const tags = (await (await request(`${reg.url}/v2/art/app/tags/list`)).body.json()) as { tags: string[] };
    expect(tags.tags).toEqual(["1.0"]);

    const signed = ok(await cli(["artifact", "push", `${reg.host}/art/app:sig`, join(src, "notes.txt"), "--artifact-type", "application/vnd.example.sig", "--subject", `${reg.host}/art/app@${image.manifestDigest}`]));
    const referrers = (await (await request(`${reg.url}/v2/art/app/referrers/${image.manifestDigest}`)).body.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
    expect(referrers.manifests.map((d) => [d.digest, d.artifactType]).sort()).toEqual(
      [[digest, "application/spdx+json"], [signed.stdout.trim(), "application/vnd.example.sig"]].sort(),
    );

    // No files: an artifact of annotations only, whose one layer is the empty descriptor (image-spec's guidance).
    const review = ok(await cli(["attach", `${reg.host}/art/app:1.0`, "--artifact-type", "application/vnd.example.review", "--annotation", "reviewed=yes"])).stdout.trim();
    const rm = JSON.parse((await fetchManifest(reg, "art/app", review)).body.toString());
    expect(rm).toMatchObject({ layers: [EMPTY], config: EMPTY, annotations: { reviewed: "yes" }, subject: { digest: image.manifestDigest } });

    // attach needs an artifact type; a subject in another repository could never be found as its referrer.
    const untyped = await cli(["attach", `${reg.host}/art/app:1.0`, join(src, "notes.txt")]);
    expect(untyped.code).toBe(2);
    expect(untyped.stderr).toMatch(/--artifact-type/);
    const byDigest = await cli(["artifact", "push", `${reg.host}/art/app@${image.manifestDigest}`, join(src, "notes.txt")]);
    expect(byDigest.code).toBe(2);
    expect(byDigest.stderr).toMatch(/push an artifact to a tag/);
    const elsewhere = await cli(["artifact", "push", `${reg.host}/art/other:sig`, join(src, "notes.txt"), "--subject", `${reg.host}/art/app:1.0`]);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toMatch(/same repository/);
  });

  it("pull refuses hostile titles (../x, /etc/x, a/../../x, a/b) before writing anything; untitled layers are skipped with a note", async () => {
    const base = await tempDir("regcli-art-hostile-");
    const out = join(base, "out");
    for (const [i, title] of ["../x", "/etc/x", "a/../../x", "a/b", "..", "", "x".repeat(256)].entries()) {
      await pushRawArtifact(reg, "art/hostile", `t${i}`, ["fine.txt", title]);
      const r = await cli(["artifact", "pull", `${reg.host}/art/hostile:t${i}`, "-o", out]);
      expect(r.code, title).toBe(5);
      expect(r.stderr).toContain(`refusing to write the artifact file ${JSON.stringify(title)}`);
      expect(existsSync(join(base, "x")) || existsSync("/etc/x")).toBe(false);
      expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    }
    await pushRawArtifact(reg, "art/hostile", "untitled", ["named.txt", undefined]);
    const r = ok(await cli(["artifact", "pull", `${reg.host}/art/hostile:untitled`, "-o", out]));
    expect(r.stdout).toBe("named.txt\n");
    expect(r.stderr).toMatch(/Skipped 1 layer without a file name/);
    expect(readdirSync(out)).toEqual(["named.txt"]);
    // -o naming a file: a usage error, not a crash.
    writeFileSync(join(base, "afile"), "");
    const notDir = await cli(["artifact", "pull", `${reg.host}/art/hostile:untitled`, "-o", join(base, "afile")]);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toMatch(/afile is not a directory/);
  });

  it("a symlink planted in DIR under a title is never followed: refused without --force, replaced (not written through) with it", async () => {
    const base = await tempDir("regcli-art-symlink-");
    const out = join(base, "out");
    const victim = join(base, "victim");
    writeFileSync(victim, "precious");
    await pushRawArtifact(reg, "art/symlink", "1", ["evil"]);
    mkdirSync(out);
    symlinkSync(victim, join(out, "evil"));
    const refused = await cli(["artifact", "pull", `${reg.host}/art/symlink:1`, "-o", out]);
    expect(refused.code).toBe(2);
    expect(readFileSync(victim, "utf8")).toBe("precious");
    ok(await cli(["artifact", "pull", `${reg.host}/art/symlink:1`, "-o", out, "--force"]));
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(lstatSync(join(out, "evil")).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(out, "evil"), "utf8")).toBe("payload 0\n");
  });
});

describe("artifacts in OCI layouts and the local store", () => {
  let home: string;
  let src: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  beforeAll(async () => {
    home = await tempDir("regcli-art-home-");
    src = await files({ "a.txt": "aaa\n", "b.bin": Buffer.alloc(300_000, 7) });
  });

  it("push to oci:DIR:TAG and pull back; a corrupted blob fails the pull with no file left, complete or partial", async () => {
    const layout = join(await tempDir("regcli-art-layout-"), "layout");
    const digest = ok(await cli(["artifact", "push", `oci:${layout}:v1`, join(src, "a.txt"), join(src, "b.bin")])).stdout.trim();
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
    expect(index.manifests).toEqual([expect.objectContaining({ digest, annotations: expect.objectContaining({ "org.opencontainers.image.ref.name": "v1" }) })]);
    const m = JSON.parse(readFileSync(join(layout, "blobs", "sha256", digest.slice(7)), "utf8"));
    // No --artifact-type and no config: oras's unknown artifact type, as image-spec requires one with the empty config.
    expect(m.artifactType).toBe("application/vnd.unknown.artifact.v1");
    const out = join(await tempDir("regcli-art-out-"), "out");
    ok(await cli(["artifact", "pull", `oci:${layout}:v1`, "-o", out]));
    expect(readFileSync(join(out, "b.bin")).equals(Buffer.alloc(300_000, 7))).toBe(true);

    // attach to the layout's image: a referrer by digest, which the layout's referrers record lists; --config gives
    // a config blob instead of the empty one, and no artifactType is then required.
    const cfg = join(src, "cfg.json");
    writeFileSync(cfg, '{"kind":"review"}');
    const attached = ok(await cli(["attach", `oci:${layout}:v1`, join(src, "a.txt"), "--artifact-type", "application/vnd.example.review", "--config", `${cfg}:application/vnd.example.config+json`])).stdout.trim();
    const am = JSON.parse(readFileSync(join(layout, "blobs", "sha256", attached.slice(7)), "utf8"));
    expect(am.subject).toEqual({ mediaType: OCI_MANIFEST, digest, size: readFileSync(join(layout, "blobs", "sha256", digest.slice(7))).length });
    expect(am.config).toEqual({ mediaType: "application/vnd.example.config+json", digest: sha256('{"kind":"review"}'), size: 17 });
    const listed = JSON.parse(ok(await cli(["referrers", `oci:${layout}:v1`, "--format", "json"])).stdout);
    expect(JSON.stringify(listed)).toContain(attached);
    const untyped = ok(await cli(["artifact", "push", `oci:${layout}:cfg`, join(src, "a.txt"), "--config", `${cfg}:application/vnd.example.config+json`])).stdout.trim();
    expect(JSON.parse(readFileSync(join(layout, "blobs", "sha256", untyped.slice(7)), "utf8")).artifactType).toBeUndefined();

    // b.bin's blob loses its last byte: the pull fails (exit 5) and a.txt, already verified, is not left either.
    const blob = join(layout, "blobs", "sha256", sha256(Buffer.alloc(300_000, 7)).slice(7));
    writeFileSync(blob, Buffer.alloc(299_999, 7));
    const out2 = join(await tempDir("regcli-art-out-"), "out");
    const failed = await cli(["artifact", "pull", `oci:${layout}:v1`, "-o", out2]);
    expect(failed.code).toBe(5);
    expect(readdirSync(out2)).toEqual([]);
  });

  it("artifact push store:NAME keeps it in the store; images shows its artifactType; pull of it is refused", async () => {
    ok(await cli(["artifact", "push", "store:example.com/docs/readme:1", join(src, "a.txt"), "--artifact-type", "application/vnd.example.readme"]));
    const images = JSON.parse(ok(await cli(["images", "--format", "json"])).stdout);
    expect(images).toEqual([expect.objectContaining({ name: "example.com/docs/readme:1", artifactType: "application/vnd.example.readme", platforms: [] })]);
    expect(ok(await cli(["images"])).stdout).toMatch(/example\.com\/docs\/readme\s+1\s+sha256:\S+\s+artifact: application\/vnd\.example\.readme/);
    const out = join(await tempDir("regcli-art-out-"), "out");
    ok(await cli(["artifact", "pull", "store:example.com/docs/readme:1", "-o", out]));
    expect(readFileSync(join(out, "a.txt"), "utf8")).toBe("aaa\n");
    // attach into the store: an unnamed referrer, read back by its digest.
    const attached = ok(await cli(["attach", "store:example.com/docs/readme:1", join(src, "b.bin"), "--artifact-type", "application/vnd.example.blob"])).stdout.trim();
    expect(ok(await cli(["artifact", "pull", `store:${attached}`, "-o", out])).stdout).toBe("b.bin\n");
    expect(JSON.parse(ok(await cli(["images", "--format", "json"])).stdout)).toHaveLength(1);
    const refused = await cli(["export", "store:example.com/docs/readme:1", "-o", join(out, "x.tar")]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is an artifact \(application\/vnd\.example\.readme\).*regcli artifact pull/);
  });
});

describe("artifacts on docker-registry 2.8.2, and skopeo copying them", () => {
  let reg: TestRegistry;
  let serve: TestRegistry;
  let src: string;
  beforeAll(async () => {
    [reg, serve] = await Promise.all([startRegistry("open"), startRegistry("open", { server: "regcli" })]);
    src = await files({ "chart.tgz": Buffer.alloc(70_000, 3), "values.yaml": "replicas: 2\n" });
  });
  afterAll(async () => Promise.all([reg?.stop(), serve?.stop()]));

  it("Distribution 2.8.2 takes an artifact without subject; skopeo copy --all moves it byte for byte to regcli serve, where artifact pull reads it", async () => {
    const digest = ok(await regcli(["artifact", "push", `${reg.host}/charts/app:0.1`, `${join(src, "chart.tgz")}:application/vnd.cncf.helm.chart.content.v1.tar+gzip`, join(src, "values.yaml"), "--artifact-type", "application/vnd.cncf.helm.config.v1+json"])).stdout.trim();
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/charts/app:0.1`]);
    expect(raw.code).toBe(0);
    expect(sha256(raw.stdout)).toBe(digest);
    const copied = await skopeo(["copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", `docker://${reg.host}/charts/app:0.1`, `docker://${serve.host}/charts/app:0.1`]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(sha256((await fetchManifest(serve, "charts/app", "0.1")).body)).toBe(digest);
    const out = join(await tempDir("regcli-art-out-"), "out");
    ok(await regcli(["artifact", "pull", `${serve.host}/charts/app:0.1`, "-o", out]));
    expect(readFileSync(join(out, "chart.tgz")).equals(Buffer.alloc(70_000, 3))).toBe(true);
    expect(readFileSync(join(out, "values.yaml"), "utf8")).toBe("replicas: 2\n");
  });

  it("attach on Distribution 2.8.2 (no referrers API): every referrer lands in the sha256-<hex> tag index, and referrers lists them", async () => {
    const image = await makeImage({ layers: 1, layerSize: 2048, seed: "artifact-distribution-subject" });
    await pushImage(reg, "signed/app", "1.0", image);
    const sbom = ok(await regcli(["attach", `${reg.host}/signed/app:1.0`, join(src, "values.yaml"), "--artifact-type", "application/spdx+json"])).stdout.trim();
    const sig = ok(await regcli(["artifact", "push", `${reg.host}/signed/app:sig`, join(src, "values.yaml"), "--artifact-type", "application/vnd.example.sig", "--subject", image.manifestDigest])).stdout.trim();
    const fallback = JSON.parse((await fetchManifest(reg, "signed/app", `sha256-${image.manifestDigest.slice(7)}`)).body.toString());
    expect(fallback.manifests.map((d: { digest: string; artifactType: string }) => [d.digest, d.artifactType]).sort()).toEqual(
      [[sbom, "application/spdx+json"], [sig, "application/vnd.example.sig"]].sort(),
    );
    const listed = JSON.parse(ok(await regcli(["referrers", `${reg.host}/signed/app:1.0`, "--format", "json"])).stdout);
    expect(JSON.stringify(listed)).toContain(sbom);
    expect(JSON.stringify(listed)).toContain(sig);
  });

  it("8 regcli attach processes at once to one image on Distribution 2.8.2: all 8 are in the fallback index", async () => {
    const image = await makeImage({ layers: 1, layerSize: 1024, seed: "artifact-concurrent-attach" });
    await pushImage(reg, "signed/busy", "1.0", image);
    const notes = await files(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`note-${i}.txt`, `attachment ${i}\n`])));
    const digests = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => ok(await regcli(["attach", `${reg.host}/signed/busy:1.0`, join(notes, `note-${i}.txt`), "--artifact-type", `application/vnd.example.note${i}`], { timeoutMs: 120_000 })).stdout.trim()),
    );
    const listed = JSON.parse(ok(await regcli(["referrers", `${reg.host}/signed/busy:1.0`, "--format", "json"])).stdout) as { referrers: Array<{ digest: string }> };
    expect(listed.referrers.map((d) => d.digest).sort()).toEqual([...digests].sort());
  });
});
