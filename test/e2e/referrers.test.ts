// OCI 1.1 referrers (signatures, SBOMs, attestations) end to end: the referrers API (regcli serve) and the referrers
// tag schema fallback (Distribution 2.8, which has no API). Each describe block starts its own registries.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, repoRoot } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { fetchManifest, makeImage, makeIndex, makeReferrer, pushBlob, pushImage, pushIndex, pushManifest, subjectOf, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const SBOM = "application/spdx+json";
const SIG = "application/vnd.dev.cosign.artifact.sig.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const fallbackTag = (digest: string) => digest.replace(":", "-");
const indexOf = (entries: Array<Record<string, unknown>>) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: entries }));

describe("referrers: reading them (API and tag schema fallback)", () => {
  let api: TestRegistry;
  let plain: TestRegistry;
  let env: Record<string, string>;
  let image: TestImage;
  let sbom: ReturnType<typeof makeReferrer>;
  let sig: ReturnType<typeof makeReferrer>;
  let sigOfSbom: ReturnType<typeof makeReferrer>;

  beforeAll(async () => {
    [api, plain] = await Promise.all([startRegistry("open", { server: "regcli" }), startRegistry("token")]);
    env = { DOCKER_CONFIG: await dockerConfigDir({ [plain.host]: plain.admin! }) };
    image = await makeImage({ layers: 1, seed: "referrers-read" });
    sbom = makeReferrer(subjectOf(image), { artifactType: SBOM, annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" } });
    sig = makeReferrer(subjectOf(image), { artifactType: SIG });
    sigOfSbom = makeReferrer(subjectOf(sbom), { artifactType: SIG });
    for (const reg of [api, plain]) {
      await pushImage(reg, "app", "1.0", image);
      for (const r of [sbom, sig, sigOfSbom]) await pushImage(reg, "app", undefined, r);
    }
    // Distribution 2.8 has no referrers API: the index under sha256-<hex> is what a client without it reads.
    await pushManifest(plain, "app", fallbackTag(image.manifestDigest), indexOf([sbom.descriptor, sig.descriptor]), INDEX);
    await pushManifest(plain, "app", fallbackTag(sbom.manifestDigest), indexOf([sigOfSbom.descriptor]), INDEX);
  });
  afterAll(async () => Promise.all([api?.stop(), plain?.stop()]));

  for (const which of ["api", "plain"] as const) {
    const reg = () => (which === "api" ? api : plain);
    it(`${which === "api" ? "regcli serve (referrers API)" : "Distribution 2.8 with token auth (sha256-<hex> fallback)"}: lists, filters and walks the tree`, async () => {
      const r = await regcli(["referrers", `${reg().host}/app:1.0`, "--format", "json"], { env });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const listed = JSON.parse(r.stdout);
      expect(listed.subject).toBe(image.manifestDigest);
      expect(listed.referrers.map((d: { digest: string }) => d.digest).sort()).toEqual([sbom.manifestDigest, sig.manifestDigest].sort());
      expect(listed.referrers.find((d: { digest: string }) => d.digest === sbom.manifestDigest)).toEqual(sbom.descriptor);

      const filtered = await regcli(["referrers", `${reg().host}/app@${image.manifestDigest}`, "--artifact-type", SBOM, "--format", "json"], { env });
      expect(JSON.parse(filtered.stdout).referrers).toEqual([sbom.descriptor]);

      const text = await regcli(["referrers", `${reg().host}/app:1.0`], { env });
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^${escape(SBOM)}\\s+${sbom.manifestDigest}\\s+.*org.opencontainers.image.created=2026-01-01T00:00:00Z$`, "m"));

      const tree = await regcli(["referrers", `${reg().host}/app:1.0`, "--format", "tree"], { env });
      expect(tree.code).toBe(0);
      const lines = tree.stdout.trimEnd().split("\n");
      expect(lines[0]).toBe(`${reg().host}/app:1.0@${image.manifestDigest}`);
      const sbomLine = lines.findIndex((l) => l.includes(sbom.manifestDigest));
      expect(lines[sbomLine + 1]).toMatch(new RegExp(`^[│ ]   └── ${escape(SIG)} ${sigOfSbom.manifestDigest}`));

      const none = await regcli(["referrers", `${reg().host}/app@${sig.manifestDigest}`, "--format", "json"], { env });
      expect(none.code).toBe(0);
      expect(JSON.parse(none.stdout).referrers).toEqual([]);
    });
  }

  it("a fallback tag that is not an index is refused (exit 5), not read as no referrers", async () => {
    const other = await makeImage({ layers: 1, seed: "referrers-not-index" });
    await pushImage(plain, "app", "other", other);
    await pushImage(plain, "app", fallbackTag(other.manifestDigest), image);
    const r = await regcli(["referrers", `${plain.host}/app:other`], { env });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/invalid referrers list from .*app:sha256-.*not an OCI image index/);
  });
});

describe("referrers: odd answers through the fault proxy", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let image: TestImage;
  let refs: Array<ReturnType<typeof makeReferrer>>;

  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    proxy = await startFaultProxy(reg.url);
    image = await makeImage({ layers: 1, seed: "referrers-proxy" });
    await pushImage(reg, "app", "1.0", image);
    refs = [SBOM, SIG, "application/vnd.in-toto+json"].map((t) => makeReferrer(subjectOf(image), { artifactType: t }));
    for (const r of refs) await pushImage(reg, "app", undefined, r);
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  it("follows Link rel=next pages, and filters itself when the registry did not say it filtered", async () => {
    const path = `/v2/app/referrers/${image.manifestDigest}`;
    const page = (entries: Array<Record<string, unknown>>, next?: string) => ({
      kind: "status" as const,
      status: 200,
      headers: { "content-type": INDEX, ...(next && { link: `<${next}>; rel="next"` }) },
      body: indexOf(entries).toString(),
    });
    proxy.rules = [
      { path: /\/referrers\/.*page=2/, fault: page([refs[2]!.descriptor]) },
      { path: /\/referrers\//, fault: page([refs[0]!.descriptor, refs[1]!.descriptor], `${path}?page=2`) },
    ];
    const all = await regcli(["--plain-http", "referrers", `${proxy.host}/app:1.0`, "--format", "json"]);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout).referrers).toEqual(refs.map((r) => r.descriptor));
    expect(proxy.log.filter((e) => e.path.includes("/referrers/")).length).toBe(2);
    // No OCI-Filters-Applied on these pages: the filter is applied here.
    const filtered = await regcli(["--plain-http", "referrers", `${proxy.host}/app:1.0`, "--artifact-type", SIG, "--format", "json"]);
    expect(JSON.parse(filtered.stdout).referrers).toEqual([refs[1]!.descriptor]);
  });

  it("a referrers answer that is not an index is refused with exit 5", async () => {
    proxy.rules = [{ path: /\/referrers\//, fault: { kind: "status", status: 200, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" }, body: image.manifest.toString() } }];
    const r = await regcli(["--plain-http", "referrers", `${proxy.host}/app:1.0`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/invalid referrers list from .*not an OCI image index/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ["NAME_UNKNOWN", "repository name not known to registry"], // a repository the registry lacks
    ["MANIFEST_UNKNOWN", "manifest unknown"], // a subject it lacks (older Quay)
  ])("a 404 %s from the referrers API is not taken for a registry without the API", async (code, message) => {
    const other = await makeImage({ layers: 1, seed: `referrers-${code}` });
    await pushImage(reg, "other", "1", other);
    proxy.reset();
    proxy.rules = [{ path: /\/referrers\//, nth: 1, fault: { kind: "status", status: 404, headers: { "content-type": "application/json" }, body: JSON.stringify({ errors: [{ code, message }] }) } }];
    const r = await regcli(["--plain-http", "delete", `${proxy.host}/other:1`]);
    expect(r.code, r.stderr).toBe(0);
    // Planning read the tag schema after that 404; the delete asks the API again, learns it is there, and only deletes.
    const requests = proxy.log.map((e) => `${e.method} ${e.path}`);
    expect(requests.slice(requests.findIndex((line) => line.includes("/tags/list")) + 1)).toEqual([`GET /v2/other/referrers/${other.manifestDigest}`, `DELETE /v2/other/manifests/${other.manifestDigest}`]);
  });

  it("a listed referrer whose subject is another image is refused when read (tree)", async () => {
    const stranger = makeReferrer({ digest: refs[0]!.manifestDigest, size: refs[0]!.manifest.length, mediaType: refs[0]!.mediaType }, { artifactType: SIG });
    await pushImage(reg, "app", undefined, stranger);
    proxy.rules = [{ path: new RegExp(`/referrers/${image.manifestDigest}`), fault: { kind: "status", status: 200, headers: { "content-type": INDEX }, body: indexOf([stranger.descriptor]).toString() } }];
    const r = await regcli(["--plain-http", "referrers", `${proxy.host}/app:1.0`, "--format", "tree"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`referrer ${stranger.manifestDigest} listed for ${image.manifestDigest}`);
  });
});

/**
 * Pushes manifests through regcli's library (RegistryRepository.putManifest, what every command that writes a
 * manifest uses) in a process of its own, starting at `startAt` (epoch ms) so that several start together.
 */
const PUSHER = `
  import { RegistryContext, registryDestination, parseReference, parseManifest } from "regcli";
  const { PUSH_TO, PUSH_MANIFESTS, PUSH_AT } = process.env;
  const ctx = new RegistryContext({ plainHttp: true });
  const dst = registryDestination(ctx, parseReference(PUSH_TO));
  await new Promise((r) => setTimeout(r, Math.max(0, Number(PUSH_AT) - Date.now())));
  for (const b64 of JSON.parse(PUSH_MANIFESTS)) {
    const m = parseManifest(Buffer.from(b64, "base64"), undefined, "test");
    await dst.putManifest(m, m.digest);
  }
  await ctx.close();`;

async function pushThroughLibrary(repo: string, manifests: Buffer[], startAt = 0): Promise<void> {
  const env = { ...process.env, DOCKER_CONFIG: await dockerConfigDir(), PUSH_TO: repo, PUSH_MANIFESTS: JSON.stringify(manifests.map((m) => m.toString("base64"))), PUSH_AT: String(startAt) };
  await promisify(execFile)(process.execPath, ["--input-type=module", "-e", PUSHER], { cwd: repoRoot, env, timeout: 120_000 });
}

describe("referrers: writing them (OCI-Subject, else the sha256-<hex> index by read-modify-write)", () => {
  let api: TestRegistry;
  let plain: TestRegistry;
  let image: TestImage;

  beforeAll(async () => {
    [api, plain] = await Promise.all([startRegistry("open", { server: "regcli" }), startRegistry("open")]);
    image = await makeImage({ layers: 1, seed: "referrers-write" });
    for (const reg of [api, plain]) await pushImage(reg, "app", "1.0", image);
  });
  afterAll(async () => Promise.all([api?.stop(), plain?.stop()]));

  async function pushBlobsOf(reg: TestRegistry, refs: Array<ReturnType<typeof makeReferrer>>): Promise<void> {
    for (const r of refs) for (const b of [r.config, ...r.layers]) await pushBlob(reg, "app", b);
  }

  it("a registry with the API (OCI-Subject) gets no fallback tag; one without gets the index with artifactType and annotations", async () => {
    const sbom = makeReferrer(subjectOf(image), { artifactType: SBOM, annotations: { "org.example.kind": "spdx" } });
    for (const reg of [api, plain]) {
      await pushBlobsOf(reg, [sbom]);
      await pushThroughLibrary(`${reg.host}/app`, [sbom.manifest]);
      const listed = await regcli(["referrers", `${reg.host}/app:1.0`, "--format", "json"]);
      expect(listed.stderr).toBe("");
      expect(JSON.parse(listed.stdout).referrers).toEqual([sbom.descriptor]);
    }
    expect((await fetchManifest(api, "app", fallbackTag(image.manifestDigest))).status).toBe(404);
    const index = await fetchManifest(plain, "app", fallbackTag(image.manifestDigest));
    expect(index.status).toBe(200);
    expect(JSON.parse(index.body.toString())).toEqual({ schemaVersion: 2, mediaType: INDEX, manifests: [sbom.descriptor] });
    // Pushing it again leaves the index as it is.
    await pushThroughLibrary(`${plain.host}/app`, [sbom.manifest]);
    expect((await fetchManifest(plain, "app", fallbackTag(image.manifestDigest))).digest).toBe(index.digest);
  });

  it("the index write is conditional (If-Match on the ETag read): a 412 from a registry that honours it is read again and retried", async () => {
    const proxy = await startFaultProxy(plain.url);
    try {
      const target = await makeImage({ layers: 1, seed: "referrers-if-match" });
      await pushImage(plain, "app", "if-match", target);
      const first = makeReferrer(subjectOf(target), { artifactType: SBOM });
      const second = makeReferrer(subjectOf(target), { artifactType: SIG });
      await pushBlobsOf(plain, [first, second]);
      await pushThroughLibrary(`${plain.host}/app`, [first.manifest]);
      const ifMatch: Array<string | undefined> = [];
      proxy.rules = [
        {
          method: "PUT",
          path: /\/manifests\/sha256-/,
          when: (req) => (ifMatch.push(req.headers["if-match"] as string | undefined), true),
          nth: 1,
          fault: { kind: "status", status: 412, headers: { "content-type": "application/json" }, body: "{}" },
        },
      ];
      await pushThroughLibrary(`${proxy.host}/app`, [second.manifest]);
      // Distribution 2.8 sends the manifest's digest, quoted, as its ETag.
      const etag = `"${(await fetchManifest(plain, "app", fallbackTag(target.manifestDigest))).digest}"`;
      expect(ifMatch.length).toBe(2);
      expect(ifMatch[0]).toMatch(/^"sha256:[a-f0-9]{64}"$/);
      expect(ifMatch[1]).toBe(ifMatch[0]);
      expect(ifMatch[1]).not.toBe(etag);
      const listed = await regcli(["referrers", `${plain.host}/app:if-match`, "--format", "json"]);
      expect(JSON.parse(listed.stdout).referrers).toEqual([first.descriptor, second.descriptor]);
    } finally {
      await proxy.close();
    }
  });

  it("8 processes attaching to one image at once on a registry without the API: all 8 are listed afterwards", async () => {
    const target = await makeImage({ layers: 1, seed: "referrers-concurrent" });
    await pushImage(plain, "app", "concurrent", target);
    const refs = Array.from({ length: 8 }, (_, i) => makeReferrer(subjectOf(target), { artifactType: SIG, payload: `signature ${i}` }));
    await pushBlobsOf(plain, refs);
    const startAt = Date.now() + 1500;
    await Promise.all(refs.map((r) => pushThroughLibrary(`${plain.host}/app`, [r.manifest], startAt)));
    const listed = await regcli(["referrers", `${plain.host}/app:concurrent`, "--format", "json"]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).referrers.map((d: { digest: string }) => d.digest).sort()).toEqual(refs.map((r) => r.manifestDigest).sort());
  });
});

describe("referrers: inspect counts them; delete warns that they remain, or deletes them with --with-referrers", () => {
  let api: TestRegistry;
  let plain: TestRegistry;
  beforeAll(async () => {
    [api, plain] = await Promise.all([startRegistry("open", { server: "regcli" }), startRegistry("open")]);
  });
  afterAll(async () => Promise.all([api?.stop(), plain?.stop()]));

  /** An image tagged `tag` with an SBOM and a signature, and a signature of the SBOM, pushed as regcli pushes them. */
  async function signedImage(reg: TestRegistry, tag: string) {
    const image = await makeImage({ layers: 1, seed: `referrers-delete-${tag}` });
    await pushImage(reg, "app", tag, image);
    const sbom = makeReferrer(subjectOf(image), { artifactType: SBOM, payload: `sbom ${tag}` });
    const sig = makeReferrer(subjectOf(image), { artifactType: SIG, payload: `sig ${tag}` });
    const sigOfSbom = makeReferrer(subjectOf(sbom), { artifactType: SIG, payload: `sig of sbom ${tag}` });
    for (const r of [sbom, sig, sigOfSbom]) for (const b of [r.config, ...r.layers]) await pushBlob(reg, "app", b);
    await pushThroughLibrary(`${reg.host}/app`, [sbom.manifest, sig.manifest, sigOfSbom.manifest]);
    return { image, sbom, sig, sigOfSbom };
  }

  for (const which of ["api", "plain"] as const) {
    const reg = () => (which === "api" ? api : plain);
    const label = which === "api" ? "regcli serve (referrers API)" : "Distribution 2.8 (sha256-<hex> fallback)";

    it(`${label}: inspect says how many referrers an image has (text and json)`, async () => {
      const { image } = await signedImage(reg(), "inspected");
      const json = await regcli(["inspect", `${reg().host}/app:inspected`, "--format", "json"]);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ digest: image.manifestDigest, referrers: 2 });
      const text = await regcli(["inspect", `${reg().host}/app:inspected`]);
      expect(text.stdout).toContain(`Referrers:   2 (list them: regcli referrers ${reg().host}/app:inspected)`);
      const unsigned = await makeImage({ layers: 1, seed: "referrers-unsigned" });
      await pushImage(reg(), "app", "unsigned", unsigned);
      expect(JSON.parse((await regcli(["inspect", `${reg().host}/app:unsigned`, "--format", "json"])).stdout).referrers).toBe(0);
    });

    it(`${label}: delete warns that referrers remain; --with-referrers asks, then deletes them all, recursively`, async () => {
      const kept = await signedImage(reg(), "kept");
      const plainDelete = await regcli(["delete", `${reg().host}/app:kept`]);
      expect(plainDelete.code).toBe(0);
      expect(plainDelete.stderr).toContain(`Warning: 3 referrers of ${reg().host}/app@${kept.image.manifestDigest} remain (2 ${SIG}, 1 ${SBOM}): regcli delete --with-referrers deletes them too`);
      expect((await fetchManifest(reg(), "app", kept.sbom.manifestDigest)).status).toBe(200);

      const { image, sbom, sig, sigOfSbom } = await signedImage(reg(), "gone");
      const refused = await regcli(["delete", `${reg().host}/app:gone`, "--with-referrers"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`3 referrers of manifest ${reg().host}/app@${image.manifestDigest} go with it`);
      expect((await fetchManifest(reg(), "app", sig.manifestDigest)).status).toBe(200);

      const r = await regcli(["delete", `${reg().host}/app:gone`, "--with-referrers", "--force"]);
      expect(r.stderr).not.toContain("Warning");
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split("\n").sort()).toEqual([image, sbom, sig, sigOfSbom].map((m) => m.manifestDigest).sort());
      for (const m of [image, sbom, sig, sigOfSbom]) expect((await fetchManifest(reg(), "app", m.manifestDigest)).status).toBe(404);
      // No sha256-<hex> index is left behind for what is gone.
      for (const m of [image, sbom]) expect((await fetchManifest(reg(), "app", fallbackTag(m.manifestDigest))).status).toBe(404);
    });

    it(`${label}: a delete sends only the requests it needs (the fallback indexes only without the API, which is asked once)`, async () => {
      const { image, sbom, sig, sigOfSbom } = await signedImage(reg(), "counted");
      const subjects = new Map([
        [sigOfSbom.manifestDigest, sbom.manifestDigest],
        [sbom.manifestDigest, image.manifestDigest],
        [sig.manifestDigest, image.manifestDigest],
        [image.manifestDigest, undefined],
      ]);
      const proxy = await startFaultProxy(reg().url);
      try {
        const r = await regcli(["--plain-http", "delete", `${proxy.host}/app:counted`, "--with-referrers", "--force"]);
        expect(r.code).toBe(0);
        const requests = proxy.log.map((e) => `${e.method} ${e.path.replace(/^\/v2\/app/, "")}`);
        // Planning (the image resolved, its referrers walked, the tags listed and checked) ends with the tags.
        const deleting = requests.slice(requests.findLastIndex((line) => line.startsWith("HEAD") || line.includes("/tags/list")) + 1);
        const deleted = (line: string) => /^DELETE \/manifests\/(.+)$/.exec(line)?.[1];
        const order = deleting.map(deleted).filter((d): d is string => d !== undefined && subjects.has(d));
        expect([...order].sort()).toEqual([...subjects.keys()].sort());
        if (which === "api") {
          expect(requests.filter((line) => line.includes("/referrers/"))).toHaveLength(subjects.size);
          expect(requests.filter((line) => line.includes("/manifests/sha256-"))).toEqual([]);
          expect(deleting).toEqual(order.map((d) => `DELETE /manifests/${d}`));
        } else {
          // The referrers API is asked once; every other listing is the tag schema's index.
          expect(requests.filter((line) => line.includes("/referrers/"))).toHaveLength(1);
          const index = (d: string) => `/manifests/${fallbackTag(d)}`;
          // Each: read for its subject, deleted, taken out of its subject's index (read, written, read again to
          // check the write held), its own index read, and deleted where its referrers emptied it.
          const expected = order.flatMap((d) => {
            const subject = subjects.get(d);
            return [
              `GET /manifests/${d}`,
              `DELETE /manifests/${d}`,
              ...(subject ? [`GET ${index(subject)}`, `PUT ${index(subject)}`, `GET ${index(subject)}`] : []),
              `GET ${index(d)}`,
              ...(d === sbom.manifestDigest || d === image.manifestDigest ? ["DELETE emptied index"] : []),
            ];
          });
          expect(deleting.map((line) => (deleted(line) && !subjects.has(deleted(line)!) ? "DELETE emptied index" : line))).toEqual(expected);
        }
      } finally {
        await proxy.close();
      }
    });

    it(`${label}: deleting one referrer takes it out of the listing`, async () => {
      const { image, sbom, sig } = await signedImage(reg(), "unsign");
      const r = await regcli(["delete", `${reg().host}/app@${sig.manifestDigest}`]);
      expect(r.code).toBe(0);
      const listed = await regcli(["referrers", `${reg().host}/app:unsign`, "--format", "json"]);
      expect(JSON.parse(listed.stdout)).toMatchObject({ subject: image.manifestDigest, referrers: [sbom.descriptor] });
    });
  }

  it("Distribution 2.8 (sha256-<hex> fallback): tag prune deleting a tagged referrer takes it out of its subject's listing too", async () => {
    const { image, sbom, sig } = await signedImage(plain, "pruned");
    await pushManifest(plain, "app", "sig-pruned", sig.manifest, sig.mediaType);
    const r = await regcli(["tag", "prune", "--include", "sig-pruned", "--keep-latest", "0", "--force", `${plain.host}/app`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^deleted sig-pruned /m);
    // The subject's sha256-<hex> index no longer lists it.
    const index = JSON.parse((await fetchManifest(plain, "app", fallbackTag(image.manifestDigest))).body.toString("utf8"));
    expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([sbom.manifestDigest]);
    const listed = await regcli(["referrers", `${plain.host}/app:pruned`, "--format", "json"]);
    expect(JSON.parse(listed.stdout)).toMatchObject({ subject: image.manifestDigest, referrers: [sbom.descriptor] });
  });

  it("Distribution 2.8: an image index whose tag looks like sha256-<hex> still keeps the children tag prune would delete", async () => {
    const child = await makeImage({ layers: 1, seed: "prune-index-child" });
    const index = makeIndex([child, await makeImage({ layers: 1, seed: "prune-index-arm", platform: { os: "linux", architecture: "arm64" } })]);
    await pushIndex(plain, "mirror", `sha256-${index.manifestDigest.slice(7)}`, index);
    await pushImage(plain, "mirror", "v1-amd64", child);
    const r = await regcli(["tag", "prune", "--include", "v1-amd64", "--keep-latest", "0", "--force", `${plain.host}/mirror`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^left v1-amd64 /m);
    expect((await fetchManifest(plain, "mirror", child.manifestDigest)).status).toBe(200);
  });

  it("Distribution 2.8: a pruned referrer whose index update fails is reported (exit 5), and a second tag on it is not deleted twice", async () => {
    const { sig } = await signedImage(plain, "half");
    for (const tag of ["sig-half-a", "sig-half-b"]) await pushManifest(plain, "app", tag, sig.manifest, sig.mediaType);
    const proxy = await startFaultProxy(plain.url);
    try {
      proxy.rules = [{ method: "PUT", path: /\/manifests\/sha256-/, fault: { kind: "status", status: 403, headers: { "content-type": "application/json" }, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } }];
      const r = await regcli(["--plain-http", "tag", "prune", "--include", "sig-half-.*", "--keep-latest", "0", "--force", `${proxy.host}/app`]);
      expect(r.code).toBe(5);
      expect(r.stdout).toMatch(new RegExp(`^failed sig-half-a .*@${sig.manifestDigest} was deleted, but taking it out of the referrers of sha256:`, "m"));
      expect(r.stdout).toMatch(/^deleted sig-half-b /m);
      expect(proxy.log.filter((e) => e.method === "DELETE" && e.path.endsWith(sig.manifestDigest))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});
