// copy --referrers and sync (issue 15): an image's referrers (signatures, SBOMs, signatures of SBOMs) and cosign's
// sha256-<hex>.sig tags go along, between `regcli serve` (referrers API) and docker-registry 2.8.2 (no API: the
// referrers tag schema), both ways, through an OCI layout, with sync, and across one transient failure.
import { createPrivateKey, generateKeyPairSync, randomBytes, scryptSync, sign, verify, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, skopeo, tempDir } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { fetchManifest, makeImage, makeIndex, pushBlob, pushImage, pushIndex, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const SBOM = "application/spdx+json";
const SIG = "application/vnd.dev.cosign.artifact.sig.v1+json";
const EMPTY = { mediaType: "application/vnd.oci.empty.v1+json", data: Buffer.from("{}"), digest: sha256("{}") };

/** What a manifest is, as a subject descriptor names it. */
interface Pushed {
  digest: string;
  size: number;
  mediaType: string;
}
const pushed = (image: { manifest: Buffer; manifestDigest: string; mediaType: string }): Pushed => ({ digest: image.manifestDigest, size: image.manifest.length, mediaType: image.mediaType });

async function get(reg: TestRegistry, path: string, scope: string, accept?: string): Promise<{ status: number; body: Buffer }> {
  const auth = await reg.authHeader(scope);
  const res = await request(`${reg.url}${path}`, { headers: { ...(accept ? { accept } : {}), ...(auth ? { authorization: auth } : {}) }, dispatcher: reg.dispatcher });
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}

/** The referrers of `digest` in a repository: from the API, or from the referrers tag schema's index. */
async function referrersAt(reg: TestRegistry, api: boolean, repo: string, digest: string): Promise<string[]> {
  const res = api
    ? await get(reg, `/v2/${repo}/referrers/${digest}`, `repository:${repo}:pull`, OCI_INDEX)
    : await fetchManifest(reg, repo, digest.replace(":", "-"), OCI_INDEX).then((r) => ({ status: r.status, body: r.body }));
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return (JSON.parse(res.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest).sort();
}

/** An OCI 1.1 artifact referring to `subject`, pushed as `oras attach` would (and into the tag schema's index without the API). */
async function attach(reg: TestRegistry, api: boolean, repo: string, subject: Pushed, artifactType: string, content: string): Promise<Pushed> {
  const layer = { data: Buffer.from(content), digest: sha256(content) };
  await pushBlob(reg, repo, EMPTY);
  await pushBlob(reg, repo, layer);
  const annotations = { "org.example.content": content };
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: EMPTY.mediaType, digest: EMPTY.digest, size: 2 },
      layers: [{ mediaType: "text/plain", digest: layer.digest, size: layer.data.length, annotations: { "org.opencontainers.image.title": "content.txt" } }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations,
    }),
  );
  const digest = sha256(bytes);
  await pushManifest(reg, repo, digest, bytes, OCI_MANIFEST);
  if (!api) {
    const tag = subject.digest.replace(":", "-");
    const existing = await fetchManifest(reg, repo, tag, OCI_INDEX);
    const manifests = existing.status === 200 ? (JSON.parse(existing.body.toString()) as { manifests: unknown[] }).manifests : [];
    manifests.push({ mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType, annotations });
    await pushManifest(reg, repo, tag, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), OCI_INDEX);
  }
  return { digest, size: bytes.length, mediaType: OCI_MANIFEST };
}

/** A cosign signature in cosign's tag schema (`sha256-<hex>.sig`): simple-signing payload, ECDSA signature annotation. */
async function cosignSign(reg: TestRegistry, repo: string, subject: string, identity: string, key: KeyObject): Promise<string> {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": identity }, image: { "docker-manifest-digest": subject }, type: "cosign container image signature" }, optional: null }));
  const config = Buffer.from(JSON.stringify({ architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: [sha256(payload)] } }));
  await pushBlob(reg, repo, { data: payload, digest: sha256(payload) });
  await pushBlob(reg, repo, { data: config, digest: sha256(config) });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", size: config.length, digest: sha256(config) },
      layers: [{ mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", size: payload.length, digest: sha256(payload), annotations: { "dev.cosignproject.cosign/signature": sign("sha256", payload, key).toString("base64") } }],
    }),
  );
  const tag = `${subject.replace(":", "-")}.sig`;
  await pushManifest(reg, repo, tag, manifest, OCI_MANIFEST);
  return tag;
}

/** cosign verify's check, by hand: the `.sig` tag's payload names `digest` and its signature verifies with `pub`. */
async function cosignVerify(reg: TestRegistry, repo: string, digest: string, pub: KeyObject): Promise<string> {
  const tag = `${digest.replace(":", "-")}.sig`;
  const m = await fetchManifest(reg, repo, tag, OCI_MANIFEST);
  expect(m.status, `${tag} at ${reg.host}/${repo}`).toBe(200);
  const layer = (JSON.parse(m.body.toString()) as { layers: Array<{ digest: string; annotations: Record<string, string> }> }).layers[0]!;
  const payload = await get(reg, `/v2/${repo}/blobs/${layer.digest}`, `repository:${repo}:pull`);
  expect(payload.status).toBe(200);
  expect(verify("sha256", payload.body, pub, Buffer.from(layer.annotations["dev.cosignproject.cosign/signature"]!, "base64"))).toBe(true);
  const claim = JSON.parse(payload.body.toString()) as { critical: { image: { "docker-manifest-digest": string }; identity: { "docker-reference": string } } };
  expect(claim.critical.image["docker-manifest-digest"]).toBe(digest);
  return claim.critical.identity["docker-reference"];
}

/** A cosign-format private key (ENCRYPTED COSIGN PRIVATE KEY: scrypt + nacl secretbox over PKCS#8), as skopeo's --sign-by-sigstore-private-key reads it. */
function cosignKeyFile(key: KeyObject, passphrase: string): string {
  const nacl = createRequire(import.meta.url)("tweetnacl") as { secretbox(m: Uint8Array, n: Uint8Array, k: Uint8Array): Uint8Array };
  const [N, r, p] = [32768, 8, 1];
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const secret = scryptSync(passphrase, salt, 32, { N, r, p, maxmem: 256 * N * r });
  const ciphertext = nacl.secretbox(key.export({ type: "pkcs8", format: "der" }), nonce, secret);
  const doc = { kdf: { name: "scrypt", params: { N, r, p }, salt: salt.toString("base64") }, cipher: { name: "nacl/secretbox", nonce: nonce.toString("base64") }, ciphertext: Buffer.from(ciphertext).toString("base64") };
  const body = Buffer.from(JSON.stringify(doc)).toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n${body}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n`;
}

describe("copy and sync carry referrers", () => {
  let serve: TestRegistry;
  let dreg: TestRegistry;
  let env: Record<string, string>;
  let image: TestImage;
  let sbom: Pushed;
  let sigImage: Pushed;
  let sigSbom: Pushed;
  const json = <T>(stdout: string) => JSON.parse(stdout) as T;
  const run = (args: string[]) => regcli(["--plain-http", ...args], { env, timeoutMs: 120_000 });
  const ok = (r: { code: number; stderr: string }) => expect(r.code, r.stderr).toBe(0);

  beforeAll(async () => {
    [serve, dreg] = await Promise.all([startRegistry("open", { server: "regcli" }), startRegistry("token")]);
    env = { DOCKER_CONFIG: await dockerConfigDir({ [dreg.host]: dreg.admin! }) };
    image = await makeImage({ layers: 1, seed: "referrers-one" });
    await pushImage(serve, "app/one", "1", image);
    sbom = await attach(serve, true, "app/one", pushed(image), SBOM, "sbom of one");
    sigImage = await attach(serve, true, "app/one", pushed(image), SIG, "signature of one");
    sigSbom = await attach(serve, true, "app/one", sbom, SIG, "signature of the sbom");
  }, 120_000);
  afterAll(async () => Promise.all([serve?.stop(), dreg?.stop()]));

  it("copy leaves referrers behind without --referrers; with it they follow recursively into a registry without the API, and back", async () => {
    ok(await run(["copy", `${serve.host}/app/one:1`, `${dreg.host}/mirror/one:1`]));
    expect(await referrersAt(dreg, false, "mirror/one", image.manifestDigest)).toEqual([]);

    const r = await run(["copy", "--referrers", `${serve.host}/app/one:1`, `${dreg.host}/mirror/one:1`]);
    ok(r);
    expect(r.stderr).toMatch(/already has .*; 3 referrers copied/);
    expect(await referrersAt(dreg, false, "mirror/one", image.manifestDigest)).toEqual([sbom.digest, sigImage.digest].sort());
    expect(await referrersAt(dreg, false, "mirror/one", sbom.digest)).toEqual([sigSbom.digest]);
    for (const d of [sbom, sigImage, sigSbom]) expect((await fetchManifest(dreg, "mirror/one", d.digest, OCI_MANIFEST)).digest).toBe(d.digest);

    // A re-run finds them all by digest and writes nothing.
    const again = await run(["copy", "--referrers", "--format", "json", `${serve.host}/app/one:1`, `${dreg.host}/mirror/one:1`]);
    ok(again);
    const result = json<{ skipped: boolean; stats: { referrersCopied: number; referrersExisting: number; manifests: number }; referrers: Array<{ action: string }> }>(again.stdout);
    expect(result).toMatchObject({ skipped: true, stats: { referrersCopied: 0, referrersExisting: 3, manifests: 0 } });
    expect(result.referrers.map((x) => x.action)).toEqual(["skip", "skip", "skip"]);

    // Back from the tag schema into the API.
    ok(await run(["copy", "--referrers", `${dreg.host}/mirror/one:1`, `${serve.host}/back/one:1`]));
    expect(await referrersAt(serve, true, "back/one", image.manifestDigest)).toEqual([sbom.digest, sigImage.digest].sort());
    expect(await referrersAt(serve, true, "back/one", sbom.digest)).toEqual([sigSbom.digest]);
  });

  it("--referrers-artifact-type keeps only those referrers of the image, with what refers to them", async () => {
    const r = await run(["copy", "--referrers-artifact-type", SBOM, `${serve.host}/app/one:1`, `${serve.host}/filtered/one:1`]);
    ok(r);
    expect(await referrersAt(serve, true, "filtered/one", image.manifestDigest)).toEqual([sbom.digest]);
    expect(await referrersAt(serve, true, "filtered/one", sbom.digest)).toEqual([sigSbom.digest]);
  });

  it("an index: the referrers of the index and of each copied child; with --platform, only that child's", async () => {
    const amd = await makeImage({ layers: 1, seed: "ref-index-amd64" });
    const arm = await makeImage({ layers: 1, seed: "ref-index-arm64", platform: { os: "linux", architecture: "arm64" } });
    const index = makeIndex([amd, arm]);
    await pushIndex(dreg, "multi/app", "1", index);
    const indexSig = await attach(dreg, false, "multi/app", pushed(index), SIG, "signature of the index");
    const armSbom = await attach(dreg, false, "multi/app", pushed(arm), SBOM, "sbom of arm64");
    ok(await run(["copy", "--referrers", `${dreg.host}/multi/app:1`, `${serve.host}/multi/app:1`]));
    expect(await referrersAt(serve, true, "multi/app", index.manifestDigest)).toEqual([indexSig.digest]);
    expect(await referrersAt(serve, true, "multi/app", arm.manifestDigest)).toEqual([armSbom.digest]);

    ok(await run(["copy", "--referrers", "--platform", "linux/arm64", `${dreg.host}/multi/app:1`, `${serve.host}/multi/arm:1`]));
    expect(await referrersAt(serve, true, "multi/arm", arm.manifestDigest)).toEqual([armSbom.digest]);
    expect((await fetchManifest(serve, "multi/arm", indexSig.digest, OCI_MANIFEST)).status).toBe(404);
  });

  it("cosign's .sig tag goes along and still verifies at the destination (skopeo too, where its sigstore support is built in)", async () => {
    const signed = await makeImage({ layers: 1, seed: "ref-cosign" });
    await pushImage(dreg, "signed/app", "1", signed);
    const identity = `${dreg.host}/signed/app`;
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const dir = await tempDir("regcli-cosign-");
    const [keyFile, pubFile, passFile, policy, registriesD] = ["cosign.key", "cosign.pub", "pass", "policy.json", "registries.d"].map((n) => join(dir, n)) as [string, string, string, string, string];
    await writeFile(keyFile, cosignKeyFile(privateKey, "test-pass"));
    await writeFile(pubFile, publicKey.export({ type: "spki", format: "pem" }));
    await writeFile(passFile, "test-pass");
    await mkdir(registriesD);
    await writeFile(join(registriesD, "sigstore.yaml"), `docker:\n  ${dreg.host}:\n    use-sigstore-attachments: true\n  ${serve.host}:\n    use-sigstore-attachments: true\n`);
    await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }], transports: { docker: { [`${serve.host}/copied`]: [{ type: "sigstoreSigned", keyPath: pubFile, signedIdentity: { type: "exactRepository", dockerRepository: identity } }] } } }));
    const creds = `${dreg.admin!.username}:${dreg.admin!.password}`;

    // skopeo signs in place when it can (Debian's 1.9.3 is built without sigstore: "sigstore disabled"); else by hand.
    const signing = await skopeo(["copy", "--registries.d", registriesD, "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds, "--sign-by-sigstore-private-key", keyFile, "--sign-passphrase-file", passFile, `docker://${identity}:1`, `docker://${identity}:1`]);
    const skopeoSigns = signing.code === 0;
    if (!skopeoSigns) {
      expect(signing.stderr).toContain("sigstore disabled");
      await cosignSign(dreg, "signed/app", signed.manifestDigest, identity, createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" })));
    }
    const attTag = `${signed.manifestDigest.replace(":", "-")}.att`;
    await pushImage(dreg, "signed/app", attTag, await makeImage({ layers: 1, seed: "ref-cosign-att" }));

    const plain = await run(["copy", `${identity}:1`, `${serve.host}/copied/plain:1`]);
    ok(plain);
    expect((await fetchManifest(serve, "copied/plain", `${signed.manifestDigest.replace(":", "-")}.sig`)).status).toBe(404);

    const r = await run(["copy", "--referrers", `${identity}:1`, `${serve.host}/copied/app:1`]);
    ok(r);
    expect(r.stderr).toContain("2 referrers copied");
    expect(await cosignVerify(serve, "copied/app", signed.manifestDigest, publicKey)).toBe(identity);
    expect((await fetchManifest(serve, "copied/app", attTag)).status).toBe(200);

    const check = await skopeo(["copy", "--registries.d", registriesD, "--policy", policy, "--src-tls-verify=false", `docker://${serve.host}/copied/app:1`, `oci:${join(dir, "verified")}:1`]);
    if (check.stderr.includes("sigstore disabled")) expect(skopeoSigns).toBe(false);
    else expect(check.code, check.stderr).toBe(0);
  });

  it("into an OCI layout or oci-archive and from it to another registry: the referrers are kept all the way; a docker-archive refuses them", async () => {
    const layout = join(await tempDir("regcli-ref-layout-"), "layout");
    ok(await run(["copy", "--referrers", `${serve.host}/app/one:1`, `oci:${layout}:1`]));
    const r = await run(["copy", "--referrers", `oci:${layout}:1`, `${dreg.host}/fromlayout/one:1`]);
    ok(r);
    expect(r.stderr).toContain("3 referrers copied");
    expect(await referrersAt(dreg, false, "fromlayout/one", image.manifestDigest)).toEqual([sbom.digest, sigImage.digest].sort());
    expect(await referrersAt(dreg, false, "fromlayout/one", sbom.digest)).toEqual([sigSbom.digest]);

    // An oci-archive keeps them too; a docker-archive cannot, and says so before writing anything (exit 7).
    const dir = await tempDir("regcli-ref-archive-");
    ok(await run(["copy", "--referrers", `${dreg.host}/fromlayout/one:1`, `oci-archive:${join(dir, "one.tar")}:1`]));
    ok(await run(["copy", "--referrers", `oci-archive:${join(dir, "one.tar")}:1`, `${serve.host}/fromarchive/one:1`]));
    expect(await referrersAt(serve, true, "fromarchive/one", image.manifestDigest)).toEqual([sbom.digest, sigImage.digest].sort());
    expect(await referrersAt(serve, true, "fromarchive/one", sbom.digest)).toEqual([sigSbom.digest]);
    const refused = await run(["copy", "--referrers", `${serve.host}/app/one:1`, `docker-archive:${join(dir, "one-docker.tar")}:app/one:1`]);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toMatch(/docker-archive has no place for referrers.*oci-archive/);
    expect(existsSync(join(dir, "one-docker.tar"))).toBe(false);
  });

  it("sync carries referrers by default: the dry run lists them, a re-run copies only new ones, --no-referrers and referrers: false leave them", async () => {
    const app = await makeImage({ layers: 1, seed: "ref-sync" });
    await pushImage(dreg, "sync/app", "1", app);
    const first = await attach(dreg, false, "sync/app", pushed(app), SBOM, "sbom for sync");
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const sigTag = await cosignSign(dreg, "sync/app", app.manifestDigest, `${dreg.host}/sync/app`, privateKey);
    const tagsAt = async (repo: string) => ((JSON.parse((await get(serve, `/v2/${repo}/tags/list`, `repository:${repo}:pull`)).body.toString()) as { tags: string[] }).tags ?? []).sort();

    const plan = await run(["sync", "--dry-run", `${dreg.host}/sync/app`, `${serve.host}/sync/app`]);
    ok(plan);
    expect(plan.stdout).toContain(`  copy referrer ${first.digest} ${SBOM}`);
    expect(plan.stdout).toMatch(new RegExp(`  copy tag ${sigTag} sha256:`));
    expect(plan.stderr).toMatch(/1 image to copy, 0 up to date, 2 referrers to copy/);
    expect(await referrersAt(serve, true, "sync/app", app.manifestDigest)).toEqual([]);

    const r = await run(["sync", `${dreg.host}/sync/app`, `${serve.host}/sync/app`]);
    ok(r);
    expect(r.stderr).toMatch(/1 copied, 0 skipped, 0 failed.*; 2 referrers copied/);
    expect(await referrersAt(serve, true, "sync/app", app.manifestDigest)).toEqual([first.digest]);
    await cosignVerify(serve, "sync/app", app.manifestDigest, publicKey);
    // The source's referrers tag schema index is not mirrored as a tag (the destination has the API); the .sig came with its image.
    expect(await tagsAt("sync/app")).toEqual(["1", sigTag]);
    // Prune leaves referrers' tags alone: they are not the filters' to select.
    await pushImage(dreg, "sync/app", "2", await makeImage({ layers: 1, seed: "ref-sync-2" }));
    ok(await run(["sync", `${dreg.host}/sync/app`, `${serve.host}/sync/app`]));
    ok(await run(["sync", "--include", "1", "--prune", "--force", `${dreg.host}/sync/app`, `${serve.host}/sync/app`]));
    expect(await tagsAt("sync/app")).toEqual(["1", sigTag]);

    const second = await attach(dreg, false, "sync/app", pushed(app), SIG, "signature for sync");
    const again = await run(["sync", "--format", "json", "--include", "1", `${dreg.host}/sync/app`, `${serve.host}/sync/app`]);
    ok(again);
    const report = json<{ skipped: number; stats: { referrersCopied: number; referrersExisting: number }; images: Array<{ referrers: Array<{ digest: string; action: string }> }> }>(again.stdout);
    expect(report).toMatchObject({ skipped: 1, stats: { referrersCopied: 1, referrersExisting: 2 } });
    expect(report.images[0]!.referrers.find((x) => x.digest === second.digest)?.action).toBe("copy");
    expect(await referrersAt(serve, true, "sync/app", app.manifestDigest)).toEqual([first.digest, second.digest].sort());

    // copy --all-tags: the same per image; the .sig goes with its image, the tag schema's index is not a tag.
    const all = await run(["copy", "--all-tags", "--referrers", `${dreg.host}/sync/app`, `${serve.host}/alltags/app`]);
    ok(all);
    expect(all.stderr).toContain("3 referrers copied");
    expect(await tagsAt("alltags/app")).toEqual(["1", "2", sigTag]);
    expect(await referrersAt(serve, true, "alltags/app", app.manifestDigest)).toEqual([first.digest, second.digest].sort());

    ok(await run(["sync", "--no-referrers", `${dreg.host}/sync/app`, `${serve.host}/sync/bare`]));
    expect(await referrersAt(serve, true, "sync/bare", app.manifestDigest)).toEqual([]);
    const config = join(await tempDir("regcli-ref-sync-"), "sync.yaml");
    await writeFile(config, `sync:\n  - source: ${dreg.host}/sync/app\n    destination: ${serve.host}/sync/bare2\n    referrers: false\n`);
    ok(await run(["sync", "--config", config]));
    expect(await referrersAt(serve, true, "sync/bare2", app.manifestDigest)).toEqual([]);
  });
});

describe("a transient failure in the middle of a referrer's copy", () => {
  let serve: TestRegistry;
  let dreg: TestRegistry;
  let proxy: FaultProxy;
  afterAll(async () => Promise.all([proxy?.close(), serve?.stop(), dreg?.stop()]));

  it("is retried: the copy ends with every referrer at the destination", async () => {
    [serve, dreg] = await Promise.all([startRegistry("open", { server: "regcli" }), startRegistry("open")]);
    proxy = await startFaultProxy(serve.url);
    const image = await makeImage({ layers: 1, seed: "ref-fault" });
    await pushImage(serve, "fault/app", "1", image);
    const content = "x".repeat(64 * 1024);
    const sbom = await attach(serve, true, "fault/app", pushed(image), SBOM, content);
    proxy.rules = [{ method: "GET", path: new RegExp(`/blobs/${sha256(content)}`), times: 1, fault: { kind: "reset-response", after: 1000 } }];
    const r = await regcli(["--plain-http", "copy", "--referrers", `${proxy.host}/fault/app:1`, `${dreg.host}/fault/app:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.faultsInjected).toBe(1);
    expect(await referrersAt(dreg, false, "fault/app", image.manifestDigest)).toEqual([sbom.digest]);
    expect((await fetchManifest(dreg, "fault/app", sbom.digest, OCI_MANIFEST)).digest).toBe(sbom.digest);
  });
});
