// Referrers in the places regcli keeps images itself: OCI layouts, the local store, oci-archives. A layout records
// them as regctl's ocidir does (an index tagged sha256-<hex> in index.json); the built library answers referrers()
// from that record, gc keeps the referrers of kept images, and skopeo and umoci still read the layout.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveWriter } from "../../src/locations/archive-writer.js";
import { OciLayout } from "../../src/locations/oci-layout.js";
import { parseManifest, type Descriptor, type ManifestData } from "../../src/oci/index.js";
import { LocalStore } from "../../src/store/store.js";
import { regcli, repoRoot, skopeo, tempDir, tool } from "../helpers/cli.js";
import { makeImage, makeReferrer, pushImage, sha256, subjectOf, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const run = promisify(execFile);
const EMPTY = Buffer.from("{}");
const EMPTY_TYPE = "application/vnd.oci.empty.v1+json";
const SBOM = "application/spdx+json";
const SIG = "application/vnd.example.signature";

function manifestData(doc: object): ManifestData {
  const bytes = Buffer.from(JSON.stringify(doc));
  const data = parseManifest(bytes, "application/vnd.oci.image.manifest.v1+json", "test");
  data.digest = sha256(bytes);
  return data;
}

/** An OCI 1.1 artifact manifest (empty config) referring to `subject`, with one file as its layer. */
function artifact(subject: Descriptor, artifactType: string, text: string, annotations: Record<string, string> = {}): { data: ManifestData; file: Buffer } {
  const file = Buffer.from(text);
  const data = manifestData({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType,
    config: { mediaType: EMPTY_TYPE, digest: sha256(EMPTY), size: EMPTY.length },
    layers: [{ mediaType: "text/plain", digest: sha256(file), size: file.length }],
    subject,
    annotations,
  });
  return { data, file };
}

interface Target {
  putBlob(desc: Descriptor, open: () => Promise<NodeJS.ReadableStream>): Promise<unknown>;
  putManifest(m: ManifestData, reference: string): Promise<void>;
}

async function writeBlob(target: Target, data: Buffer, mediaType = "application/octet-stream"): Promise<void> {
  const { Readable } = await import("node:stream");
  await target.putBlob({ mediaType, digest: sha256(data), size: data.length }, async () => Readable.from([data]));
}

/** The subject image (tagged), an SBOM and a signature of it, a signature of the SBOM: all through putManifest. */
async function writeSet(target: Target, image: TestImage, name: string) {
  for (const b of [image.config, ...image.layers]) await writeBlob(target, b.data, b.mediaType);
  const subjectData = manifestData(JSON.parse(image.manifest.toString()));
  await target.putManifest(subjectData, name);
  const subject: Descriptor = { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length };
  const sbom = artifact(subject, SBOM, "sbom of the image", { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" });
  const sig = artifact(subject, SIG, "signature of the image");
  const sbomDesc: Descriptor = { mediaType: sbom.data.mediaType, digest: sbom.data.digest, size: sbom.data.bytes.length };
  const sigOfSbom = artifact(sbomDesc, SIG, "signature of the sbom");
  for (const a of [sbom, sig, sigOfSbom]) {
    await writeBlob(target, EMPTY, EMPTY_TYPE);
    await writeBlob(target, a.file, "text/plain");
    await target.putManifest(a.data, a.data.digest);
  }
  return { subject: image.manifestDigest, sbom: sbom.data.digest, sig: sig.data.digest, sigOfSbom: sigOfSbom.data.digest };
}

/** referrers() of each digest through the built library (openLocation of a location string), as JSON. */
async function libraryReferrers(location: string, queries: Array<{ digest: string; artifactType?: string }>, env: Record<string, string> = {}) {
  const script = `
    import { openLocation, parseLocation, RegistryContext } from "regcli";
    const opened = await openLocation(new RegistryContext(), parseLocation(${JSON.stringify(location)}));
    const out = [];
    for (const q of ${JSON.stringify(queries)}) out.push(await opened.source.referrers(q.digest, q.artifactType ? { artifactType: q.artifactType } : undefined));
    await opened.close();
    console.log(JSON.stringify(out));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, env: { ...process.env, ...env } });
  return JSON.parse(stdout) as Descriptor[][];
}

let image: TestImage;
beforeAll(async () => {
  image = await makeImage({ layers: 1, seed: "referrers-local" });
});

describe("referrers in an OCI layout", () => {
  let dir: string;
  let set: Awaited<ReturnType<typeof writeSet>>;
  beforeAll(async () => {
    dir = await tempDir("regcli-reflayout-");
    set = await writeSet(new OciLayout(dir), image, "v1");
  });

  it("answers referrers() from index.json, with artifactType and annotations, filtered, recursively", async () => {
    const [all, sboms, ofSbom, none] = await libraryReferrers(`oci:${dir}`, [
      { digest: set.subject },
      { digest: set.subject, artifactType: SBOM },
      { digest: set.sbom },
      { digest: set.sig },
    ]);
    expect(all!.map((d) => d.digest).sort()).toEqual([set.sbom, set.sig].sort());
    expect(sboms).toEqual([expect.objectContaining({ digest: set.sbom, artifactType: SBOM, annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" } })]);
    expect(ofSbom).toEqual([expect.objectContaining({ digest: set.sigOfSbom, artifactType: SIG })]);
    expect(none).toEqual([]);
    // Recorded as regctl's ocidir does: an index tagged sha256-<hex> of the subject.
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: Descriptor[] };
    const tags = index.manifests.map((d) => d.annotations?.["org.opencontainers.image.ref.name"]).sort();
    expect(tags).toEqual(["sha256-" + set.sbom.slice(7), "sha256-" + set.subject.slice(7), "v1"].sort());
  });

  it("regcli referrers lists them on oci:DIR: json, filtered, and the tree with the signature of the SBOM", async () => {
    const json = await regcli(["referrers", `oci:${dir}:v1`, "--format", "json"]);
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout) as { subject: string; referrers: Descriptor[] };
    expect(result.subject).toBe(set.subject);
    expect(result.referrers.map((d) => d.digest).sort()).toEqual([set.sbom, set.sig].sort());
    const filtered = await regcli(["referrers", `oci:${dir}:v1`, "--artifact-type", SBOM, "--format", "json"]);
    expect((JSON.parse(filtered.stdout) as { referrers: Descriptor[] }).referrers.map((d) => d.digest)).toEqual([set.sbom]);
    const tree = await regcli(["referrers", `oci:${dir}:v1`, "--format", "tree"]);
    expect(tree.code, tree.stderr).toBe(0);
    for (const d of [set.sbom, set.sig, set.sigOfSbom]) expect(tree.stdout).toContain(d);
  });

  it("keeps the record tags out of the names: ls shows v1, and the one image is picked without a tag", async () => {
    const ls = await regcli(["ls", `oci:${dir}`]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim().split("\n")).toEqual(["v1"]);
    const digest = await regcli(["digest", `oci:${dir}`]);
    expect(digest.code, digest.stderr).toBe(0);
    expect(digest.stdout.trim()).toBe(set.subject);
  });

  it("records every referrer when many are written at once (one read-modify-write under the index lock)", async () => {
    const many = await tempDir("regcli-reflayout-");
    const layout = new OciLayout(many);
    const subject: Descriptor = { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length };
    const written = Array.from({ length: 8 }, (_, i) => artifact(subject, SIG, `signature ${i}`));
    await Promise.all(written.map((a) => layout.putManifest(a.data, a.data.digest)));
    expect((await layout.referrers(subject.digest)).map((d) => d.digest).sort()).toEqual(written.map((a) => a.data.digest).sort());
  });

  it("is still read by skopeo and umoci", async () => {
    const inspect = await skopeo(["inspect", `oci:${dir}:v1`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout).Digest).toBe(set.subject);
    const ls = await tool("umoci", ["ls", "--layout", dir]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split("\n")).toContain("v1");
  });
});

describe("referrers in the local store", () => {
  it("images lists only the image; gc keeps its referrers; save/load carry them; rmi drops them with the image", async () => {
    const home = await tempDir("regcli-home-");
    const store = new LocalStore(home);
    const set = await writeSet(store.layout, image, "localhost/app:v1");
    // The signature of a multi-platform index of which the store holds one platform only: kept throughout.
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
    const indexSig = artifact({ mediaType: "application/vnd.oci.image.index.v1+json", digest: sha256(index), size: index.length }, SIG, "signature of the index");
    await writeBlob(store.layout, indexSig.file, "text/plain");
    await store.layout.putManifest(indexSig.data, indexSig.data.digest);
    const env = { REGCLI_HOME: home };

    const images = await regcli(["images", "--format", "json"], { env });
    expect(images.code, images.stderr).toBe(0);
    expect((JSON.parse(images.stdout) as Array<{ name: string }>).map((i) => i.name)).toEqual(["localhost/app:v1"]);

    const cli = await regcli(["referrers", "store:localhost/app:v1", "--format", "json"], { env });
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as { referrers: Descriptor[] }).referrers.map((d) => d.digest).sort()).toEqual([set.sbom, set.sig].sort());

    const prune = await regcli(["image", "prune"], { env });
    expect(prune.code, prune.stderr).toBe(0);
    const [kept, keptOfSbom] = await libraryReferrers("store:", [{ digest: set.subject }, { digest: set.sbom }], env);
    expect(kept!.map((d) => d.digest).sort()).toEqual([set.sbom, set.sig].sort());
    expect(keptOfSbom!.map((d) => d.digest)).toEqual([set.sigOfSbom]);
    expect((await store.layout.referrerRecords()).map((r) => r.subject).sort()).toEqual([set.subject, set.sbom, sha256(index)].sort());

    // image save --format oci-archive, then image load into another store: the referrers come along.
    const saved = join(home, "saved.tar");
    const save = await regcli(["image", "save", "localhost/app:v1", "--format", "oci-archive", "-o", saved], { env });
    expect(save.code, save.stderr).toBe(0);
    const other = { REGCLI_HOME: await tempDir("regcli-home-") };
    const load = await regcli(["image", "load", "-i", saved], { env: other });
    expect(load.code, load.stderr).toBe(0);
    const [loaded, loadedOfSbom] = await libraryReferrers("store:", [{ digest: set.subject }, { digest: set.sbom }], other);
    expect(loaded!.map((d) => d.digest).sort()).toEqual([set.sbom, set.sig].sort());
    expect(loadedOfSbom!.map((d) => d.digest)).toEqual([set.sigOfSbom]);

    const rmi = await regcli(["rmi", "localhost/app:v1"], { env });
    expect(rmi.code, rmi.stderr).toBe(0);
    expect((await store.layout.referrerRecords()).map((r) => r.subject)).toEqual([sha256(index)]);
    expect(await store.layout.hasBlob(indexSig.data.digest)).toBe(true);
    for (const d of [set.subject, set.sbom, set.sig, set.sigOfSbom]) expect(await store.layout.hasBlob(d)).toBe(false);
  });
});

describe("referrers in archives", () => {
  it("an oci-archive keeps the referrer manifests it is given and answers referrers(); a docker-archive has none", async () => {
    const work = await tempDir("regcli-refarchive-");
    const results: Record<string, Descriptor[][]> = {};
    let set: Awaited<ReturnType<typeof writeSet>> | undefined;
    for (const flavour of ["oci-archive", "docker-archive"] as const) {
      const file = join(work, `${flavour}.tar`);
      const writer = new ArchiveWriter(file, flavour);
      set = await writeSet(writer as unknown as Target, image, "localhost/app:v1");
      await writer.finish();
      results[flavour] = await libraryReferrers(`${flavour}:${file}`, [{ digest: set.subject }, { digest: set.sbom, artifactType: SIG }]);
    }
    const [all, ofSbom] = results["oci-archive"]!;
    expect(all!.map((d) => d.digest).sort()).toEqual([set!.sbom, set!.sig].sort());
    expect(ofSbom!.map((d) => d.digest)).toEqual([set!.sigOfSbom]);
    expect(results["docker-archive"]).toEqual([[], []]);
    const cli = await regcli(["referrers", `oci-archive:${join(work, "oci-archive.tar")}`, "--artifact-type", SIG, "--format", "json"]);
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as { referrers: Descriptor[] }).referrers.map((d) => d.digest)).toEqual([set!.sig]);
    // The archive is still one image to skopeo.
    const inspect = await skopeo(["inspect", `oci-archive:${join(work, "oci-archive.tar")}:v1`]);
    expect(inspect.code, inspect.stderr).toBe(0);
  });
});

describe("copy --referrers through an oci-archive and the store", () => {
  let serve: TestRegistry;
  afterAll(async () => serve?.stop());

  it("regcli serve -> oci-archive -> regcli serve keeps every referrer; the store holds them too", async () => {
    serve = await startRegistry("open", { server: "regcli" });
    const img = await makeImage({ layers: 1, seed: "referrers-local-roundtrip" });
    await pushImage(serve, "app/one", "1", img);
    const sbom = makeReferrer(subjectOf(img), { artifactType: SBOM, annotations: { "org.example.kind": "sbom" } });
    const sig = makeReferrer(subjectOf(img), { artifactType: SIG });
    const sigOfSbom = makeReferrer(subjectOf(sbom), { artifactType: SIG });
    for (const r of [sbom, sig, sigOfSbom]) await pushImage(serve, "app/one", undefined, r);
    const work = await tempDir("regcli-refarchive-");
    const home = await tempDir("regcli-home-");
    const run = (args: string[]) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home }, timeoutMs: 120_000 });
    const tree = async (where: string) => {
      const r = await run(["referrers", where, "--format", "json"]);
      expect(r.code, r.stderr).toBe(0);
      const top = (JSON.parse(r.stdout) as { referrers: Descriptor[] }).referrers;
      const below = top.find((d) => d.digest === sbom.manifestDigest) ? await libraryReferrers(where, [{ digest: sbom.manifestDigest }], { REGCLI_HOME: home }) : [[]];
      return { top: top.map((d) => d.digest).sort(), ofSbom: below[0]!.map((d) => d.digest) };
    };
    const expected = { top: [sbom.manifestDigest, sig.manifestDigest].sort(), ofSbom: [sigOfSbom.manifestDigest] };

    const archive = join(work, "one.tar");
    const out = await run(["copy", "--referrers", `${serve.host}/app/one:1`, `oci-archive:${archive}`]);
    expect(out.code, out.stderr).toBe(0);
    expect(await tree(`oci-archive:${archive}`)).toEqual(expected);

    const back = await run(["copy", "--referrers", `oci-archive:${archive}`, `${serve.host}/app/back:1`]);
    expect(back.code, back.stderr).toBe(0);
    const listed = await run(["referrers", `${serve.host}/app/back:1`, "--format", "tree"]);
    expect(listed.code, listed.stderr).toBe(0);
    for (const d of [sbom, sig, sigOfSbom]) expect(listed.stdout).toContain(d.manifestDigest);

    const stored = await run(["copy", "--referrers", `${serve.host}/app/one:1`, "store:localhost/one:1"]);
    expect(stored.code, stored.stderr).toBe(0);
    expect(await tree("store:localhost/one:1")).toEqual(expected);
  });

  it("pull --referrers into the store, then push --referrers to docker-registry (no referrers API), keeps everything", async () => {
    serve ??= await startRegistry("open", { server: "regcli" });
    const registry = await startRegistry("open");
    try {
      const img = await makeImage({ layers: 1, seed: "referrers-local-pull-push" });
      await pushImage(serve, "app/pp", "1", img);
      const sbom = makeReferrer(subjectOf(img), { artifactType: SBOM });
      const sigOfSbom = makeReferrer(subjectOf(sbom), { artifactType: SIG });
      for (const r of [sbom, sigOfSbom]) await pushImage(serve, "app/pp", undefined, r);
      const home = await tempDir("regcli-home-");
      const run = (args: string[]) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home }, timeoutMs: 120_000 });
      const name = `${registry.host}/app/pp:1`;
      // Without --referrers the store gets the image alone; with it, the SBOM and its signature too.
      let r = await run(["pull", `${serve.host}/app/pp:1`]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse((await run(["referrers", `store:${serve.host}/app/pp:1`, "--format", "json"])).stdout).referrers).toEqual([]);
      r = await run(["pull", "--referrers", `${serve.host}/app/pp:1`]);
      expect(r.code, r.stderr).toBe(0);
      r = await run(["image", "tag", `${serve.host}/app/pp:1`, name]);
      expect(r.code, r.stderr).toBe(0);
      r = await run(["push", "--referrers", name]);
      expect(r.code, r.stderr).toBe(0);
      const tree = await run(["referrers", name, "--format", "tree"]);
      expect(tree.code, tree.stderr).toBe(0);
      for (const d of [sbom, sigOfSbom]) expect(tree.stdout).toContain(d.manifestDigest);
    } finally {
      await registry.stop();
    }
  });
});
