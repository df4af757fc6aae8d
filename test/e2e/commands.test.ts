// Every remote command, driven through the built binary, against a real docker-registry in each auth mode.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, onTerminal, regcli, repoRoot, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushBlob, pushImage, pushIndex, pushManifest, seededBytes, type TestImage, type TestIndex } from "../helpers/images.js";
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

  it("ls -n/--last asks the registry for one page; --include keeps names matching an anchored regex; --sort orders", async () => {
    for (const t of ["v1.10.0", "v1.2.0", "v1.9.1", "latest", "1.2-alpine", "dev"]) await pushImage(reg, "app/versions", t, ociImage);
    const names = async (target: string, ...args: string[]) => ok(await cli(["ls", target, ...args])).stdout.split("\n").filter(Boolean);
    const repo = `${reg.host}/app/versions`;
    // The registry's order by default (Distribution 2.8's tag list is in no particular order; regcli serve's is sorted).
    const listed = await names(repo);
    const lexical = ["1.2-alpine", "dev", "latest", "v1.10.0", "v1.2.0", "v1.9.1"];
    expect([...listed].sort()).toEqual(lexical);
    expect(await names(repo, "--sort", "alpha")).toEqual(lexical);
    expect(await names(repo, "--sort", "semver")).toEqual(["1.2-alpine", "v1.2.0", "v1.9.1", "v1.10.0", "dev", "latest"]);
    expect(await names(repo, "--include", "v1\\..*", "--sort", "semver")).toEqual(["v1.2.0", "v1.9.1", "v1.10.0"]);
    expect(await names(repo, "--include", "v1", "--include", "dev")).toEqual(["dev"]);
    // Distribution 2.8 ignores n and last on tag lists: the page is cut as a registry that honours them sends it.
    expect(await names(repo, "-n", "2")).toEqual(listed.slice(0, 2));
    expect(await names(repo, "-n", "2", "--last", listed[1]!)).toEqual(listed.slice(2, 4));
    expect(await names(repo, "--last", listed[3]!)).toEqual(listed.slice(4));
    const tagPage = ok(await cli(["--debug", "ls", repo, "-n", "3", "--last", listed[2]!]));
    expect(tagPage.stdout.split("\n").filter(Boolean)).toEqual(listed.slice(3, 6));
    expect(tagPage.stderr.match(/> GET \S+\/tags\/list\S*/g)).toEqual([expect.stringMatching(new RegExp(`\\?n=3&last=${listed[2]!.replace(/\./g, "\\.")}$`))]);
    // The catalog: one request for one page, and --last gives the next.
    const all = await names(reg.host);
    expect(await names(reg.host, "-n", "2")).toEqual(all.slice(0, 2));
    const next = ok(await cli(["--debug", "ls", reg.host, "-n", "2", "--last", all[1]!, "--format", "json"]));
    expect(JSON.parse(next.stdout).repositories).toEqual(all.slice(2, 4));
    expect(next.stderr.match(/> GET \S+\/_catalog\S*/g)).toHaveLength(1);
    expect(await names(reg.host, "--include", "app/v.*")).toEqual(["app/versions"]);

    for (const [args, message] of [
      [["-n", "0"], /-n must be a positive integer/],
      [["-n", "2", "--page-size", "5"], /-n and --page-size exclude each other/],
      [["--sort", "newest"], /unknown --sort "newest": use semver, alpha, none \(see regcli ls --help\)/],
      [["--include", "("], /invalid tag pattern/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(["ls", repo, ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
    }
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

  it("tag takes the new tag as docker tag does, REPO:TAG of the same repository; another repository points at copy", async () => {
    const r = ok(await cli(["tag", `${reg.host}/app/docker:1.0`, `docker://${reg.host}/app/docker:stable`]));
    expect(r.stdout.trim()).toBe(dockerImage.manifestDigest);
    expect((await fetchManifest(reg, "app/docker", "stable")).body.equals(dockerImage.manifest)).toBe(true);
    const other = await cli(["tag", `${reg.host}/app/docker:1.0`, `${reg.host}/elsewhere/docker:2`]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`regcli copy ${reg.host}/app/docker:1.0 ${reg.host}/elsewhere/docker:2`);
    expect(other.stderr.trim().split("\n")).toHaveLength(1);
    expect((await cli(["tag", `${reg.host}/app/docker:1.0`, `${reg.host}/app/docker`])).code).toBe(2);
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
    expect(again.stderr).toMatch(/Up to date: .*mirror\/docker has all 2 tags of .*app\/docker/);
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

  it("delete names the other tags that would go and refuses them without --force off a terminal; rm is no delete", async () => {
    ok(await cli(["copy", `${reg.host}/app/oci:1.0`, `${reg.host}/shared/oci:old`]));
    ok(await cli(["tag", `${reg.host}/shared/oci:old`, "prod"]));
    ok(await cli(["tag", `${reg.host}/shared/oci:old`, "stable"]));
    const alive = async () => (await fetchManifest(reg, "shared/oci", ociImage.manifestDigest)).status;
    const rm = await cli(["rm", `${reg.host}/shared/oci:old`]);
    expect(rm.code).toBe(2);
    expect(rm.stderr).toMatch(/unknown command 'rm'/);
    for (const target of [`${reg.host}/shared/oci:old`, `${reg.host}/shared/oci@${ociImage.manifestDigest}`]) {
      const refused = await cli(["delete", target]);
      expect(refused.code).toBe(2);
      expect(refused.stdout).toBe("");
      const line = refused.stderr.trim();
      expect(line.split("\n")).toHaveLength(1);
      expect(line).toContain(ociImage.manifestDigest);
      expect(line).toMatch(/--force/);
      expect(line).toMatch(target.includes("@") ? /tagged old, prod, stable/ : /also tagged prod, stable/);
      expect(await alive()).toBe(200);
    }
    const forced = ok(await cli(["delete", "--force", `${reg.host}/shared/oci:old`]));
    expect(forced.stdout.trim()).toBe(ociImage.manifestDigest);
    expect(forced.stderr).toMatch(/also tagged prod, stable/);
    expect(await alive()).toBe(404);
    const missing = await cli(["delete", `${reg.host}/shared/oci@${ociImage.manifestDigest}`]);
    expect(missing.code).toBe(4);
  });

  it("delete of an index's child names the tagged index it would break and refuses without --force", async () => {
    ok(await cli(["copy", `${reg.host}/app/multi:1.0`, `${reg.host}/parents/multi:1.0`]));
    const child = index.images[0]!.manifestDigest;
    const refused = await cli(["delete", `${reg.host}/parents/multi@${child}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toMatch(/the index tagged 1\.0 lists it as a child and would point at a missing manifest; nothing deleted/);
    expect((await fetchManifest(reg, "parents/multi", child)).status).toBe(200);
    const forced = ok(await cli(["delete", "--force", `${reg.host}/parents/multi@${child}`]));
    expect(forced.stderr).toMatch(/index tagged 1\.0 lists it/);
    expect((await fetchManifest(reg, "parents/multi", child)).status).toBe(404);
  });

  it("untag removes only the tag where the registry can, and says so clearly where it cannot", async () => {
    ok(await cli(["copy", `${reg.host}/app/oci:1.0`, `${reg.host}/untag/oci:a`]));
    ok(await cli(["tag", `${reg.host}/untag/oci:a`, "b"]));
    const r = await cli(["untag", `${reg.host}/untag/oci:a`]);
    if (server === "regcli") {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(ociImage.manifestDigest);
      expect(ok(await cli(["ls", `${reg.host}/untag/oci`])).stdout.trim()).toBe("b");
    } else {
      // Distribution 2.8 deletes by digest only: DELETE /manifests/<tag> answers 400 DIGEST_INVALID.
      expect(r.code).toBe(5);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/cannot remove only the tag .*untag\/oci:a \(DIGEST_INVALID\): it can only delete manifests \(by digest\); regcli delete/);
      expect(ok(await cli(["ls", `${reg.host}/untag/oci`])).stdout.split("\n").filter(Boolean).sort()).toEqual(["a", "b"]);
    }
    expect((await fetchManifest(reg, "untag/oci", ociImage.manifestDigest)).status).toBe(200);
    const byDigest = await cli(["untag", `${reg.host}/untag/oci@${ociImage.manifestDigest}`]);
    expect(byDigest.code).toBe(2);
    expect((await cli(["untag", `${reg.host}/untag/oci:nope`])).code).toBe(4);
  });

  it("tag, untag and delete take the docker:// prefix, as every command does", async () => {
    ok(await cli(["copy", `${reg.host}/app/oci:1.0`, `${reg.host}/prefixed/oci:a`]));
    ok(await cli(["tag", `docker://${reg.host}/prefixed/oci:a`, "b"]));
    expect(ok(await cli(["ls", `${reg.host}/prefixed/oci`])).stdout.split("\n").filter(Boolean).sort()).toEqual(["a", "b"]);
    const untag = await cli(["untag", `docker://${reg.host}/prefixed/oci:b`]);
    expect(untag.code, untag.stderr).toBe(server === "regcli" ? 0 : 5); // Distribution 2.8 deletes by digest only
    ok(await cli(["delete", "--force", `docker://${reg.host}/prefixed/oci:a`]));
    expect((await fetchManifest(reg, "prefixed/oci", ociImage.manifestDigest)).status).toBe(404);
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

describe("delete on a terminal (a pseudo-terminal from util-linux script)", () => {
  let reg: TestRegistry;
  let img: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    img = await makeImage({ seed: "delete-tty" });
    await pushImage(reg, "tty/app", "1", img);
    await pushImage(reg, "tty/app", "2", img);
  });
  afterAll(async () => reg?.stop());

  it("asks y/N naming the other tags; anything but y keeps the image, y deletes it", async () => {
    const alive = async () => (await fetchManifest(reg, "tty/app", img.manifestDigest)).status;
    const no = await onTerminal(["delete", `${reg.host}/tty/app:1`], "n\n", true);
    expect(no.screen).toMatch(/is also tagged 2: that tag goes with it\. Delete\? \[y\/N\]/);
    expect(no.screen).toMatch(/nothing deleted/);
    expect(no.code).toBe(2);
    expect(await alive()).toBe(200);
    const empty = await onTerminal(["delete", `${reg.host}/tty/app@${img.manifestDigest}`], "\n");
    expect(empty.screen).toMatch(/tagged 1, 2: those 2 tags go with it\. Delete\? \[y\/N\]/);
    expect(empty.code).toBe(2);
    expect(await alive()).toBe(200);
    const yes = await onTerminal(["delete", `${reg.host}/tty/app:1`], "y\n", true);
    expect(yes.screen).toMatch(/\[y\/N\]/);
    expect(yes.code, yes.screen).toBe(0);
    expect(yes.screen).toMatch(/Deleted .*tty\/app@sha256:[0-9a-f]{64} \(tags 1, 2\)/);
    expect(await alive()).toBe(404);
  });

  it("with --progress json it never asks (stderr is only JSON): refuses without --force, as an error event", async () => {
    await pushImage(reg, "tty/json", "1", img);
    await pushImage(reg, "tty/json", "2", img);
    const r = await onTerminal(["delete", "--progress", "json", `${reg.host}/tty/json:1`], "y\n");
    expect(r.screen).not.toMatch(/\[y\/N\]/);
    expect(r.code, r.screen).toBe(2);
    const event = r.screen.split(/\r?\n/).find((l) => l.startsWith("{"));
    expect(JSON.parse(event ?? "{}"), r.screen).toMatchObject({ type: "error", exitCode: 2, message: expect.stringMatching(/tagged 2.*nothing deleted/) });
    expect((await fetchManifest(reg, "tty/json", img.manifestDigest)).status).toBe(200);
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

describe.each(["docker-registry", "regcli"] as const)("--platform lists and all against %s", (server) => {
  // An index of three platforms; a list keeps some of its children in a new index, all keeps it whole.
  let reg: TestRegistry;
  let index: TestIndex;
  let home: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  const childrenOf = async (repo: string, ref: string) => {
    const m = await fetchManifest(reg, repo, ref);
    expect(m.status).toBe(200);
    return { digest: m.digest, children: (JSON.parse(m.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((c) => c.digest) };
  };

  beforeAll(async () => {
    reg = await startRegistry("open", { server });
    home = await tempDir("regcli-home-");
    index = makeIndex(await Promise.all(["amd64", "arm64", "s390x"].map((architecture) => makeImage({ seed: `list-${architecture}-${server}`, platform: { os: "linux", architecture } }))));
    await pushIndex(reg, "plat/app", "1.0", index);
  });
  afterAll(async () => {
    await reg?.stop();
  });
  const [amd, arm, s390] = [0, 1, 2];

  it("copy: a list writes the index reduced to those children (new digest, read by skopeo); all copies it whole; one copies that image", async () => {
    const src = `${reg.host}/plat/app:1.0`;
    const reduced = JSON.parse(ok(await cli(["copy", src, `${reg.host}/plat/two:1.0`, "--platform", "linux/s390x,linux/amd64", "--format", "json"])).stdout);
    expect(reduced.digest).not.toBe(index.manifestDigest);
    // In the index's order, whatever the order asked.
    expect(await childrenOf("plat/two", "1.0")).toEqual({ digest: reduced.digest, children: [index.images[amd]!.manifestDigest, index.images[s390]!.manifestDigest] });
    expect((await fetchManifest(reg, "plat/two", index.images[arm]!.manifestDigest)).status).toBe(404);
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/plat/two:1.0`]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(sha256(raw.stdoutBuffer)).toBe(reduced.digest);
    const dir = await tempDir();
    const pulled = await skopeo(["copy", "--all", "--src-tls-verify=false", `docker://${reg.host}/plat/two:1.0`, `oci:${dir}:x`]);
    expect(pulled.code, pulled.stderr).toBe(0);

    expect(ok(await cli(["copy", src, `${reg.host}/plat/all:1.0`, "--platform", "all"])).stdout.trim()).toBe(index.manifestDigest);
    expect((await childrenOf("plat/all", "1.0")).children).toEqual(index.images.map((i) => i.manifestDigest));
    expect(ok(await cli(["copy", src, `${reg.host}/plat/one:1.0`, "--platform", "linux/arm64"])).stdout.trim()).toBe(index.images[arm]!.manifestDigest);
    ok(await cli(["copy", "--all-tags", `${reg.host}/plat/app`, `${reg.host}/plat/tags`, "--platform", "linux/amd64,linux/arm64"]));
    expect((await childrenOf("plat/tags", "1.0")).children).toEqual([index.images[amd]!.manifestDigest, index.images[arm]!.manifestDigest]);
  });

  it("a platform the index lacks is exit 4 naming the platforms it has; a malformed list is a usage error", async () => {
    const r = await cli(["copy", `${reg.host}/plat/app:1.0`, `${reg.host}/plat/none:1.0`, "--platform", "linux/amd64,windows/amd64"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/no windows\/amd64 image in .*plat\/app.*available platforms: linux\/amd64, linux\/arm64, linux\/s390x/s);
    expect((await fetchManifest(reg, "plat/none", "1.0")).status).toBe(404);
    for (const args of [["pull"], ["inspect"], ["digest"], ["manifest"]]) {
      const missing = await cli([...args, `${reg.host}/plat/app:1.0`, "--platform", "linux/ppc64le"]);
      expect(missing.code, `${args[0]}: ${missing.stderr}`).toBe(4);
      expect(missing.stderr).toMatch(/available platforms: linux\/amd64, linux\/arm64, linux\/s390x/);
    }
    const bad = await cli(["copy", `${reg.host}/plat/app:1.0`, `${reg.host}/plat/none:1.0`, "--platform", "linux/amd64,"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid platform ""/);
  });

  it("pull: a list stores the reduced index, all the whole index", async () => {
    const two = JSON.parse(ok(await cli(["pull", `${reg.host}/plat/app:1.0`, "--platform", "linux/amd64,linux/arm64", "--format", "json"])).stdout);
    expect(two.digest).not.toBe(index.manifestDigest);
    let stored = JSON.parse(ok(await cli(["images", "--format", "json"])).stdout);
    expect(stored).toEqual([expect.objectContaining({ digest: two.digest, platforms: ["linux/amd64", "linux/arm64"] })]);
    expect(ok(await cli(["pull", `${reg.host}/plat/app:1.0`, "--platform", "all"])).stdout.trim()).toBe(index.manifestDigest);
    stored = JSON.parse(ok(await cli(["images", "--format", "json"])).stdout);
    expect(stored).toEqual([expect.objectContaining({ digest: index.manifestDigest, platforms: ["linux/amd64", "linux/arm64", "linux/s390x"] })]);
  });

  it("inspect: a list or all describes each of those images; export refuses more than one platform", async () => {
    const all = JSON.parse(ok(await cli(["inspect", `${reg.host}/plat/app:1.0`, "--platform", "all", "--format", "json"])).stdout);
    expect(all.map((r: { digest: string; image: { digest: string; platform: string } }) => [r.digest, r.image.digest, r.image.platform])).toEqual(
      index.images.map((i, n) => [index.manifestDigest, i.manifestDigest, ["linux/amd64", "linux/arm64", "linux/s390x"][n]]),
    );
    const text = ok(await cli(["inspect", `${reg.host}/plat/app:1.0`, "--platform", "linux/s390x,linux/arm64"])).stdout;
    expect(text.match(/^Image \(.*\):$/gm)).toEqual(["Image (linux/arm64):", "Image (linux/s390x):"]);
    expect(text.match(/^Reference:/gm)).toHaveLength(1);
    for (const i of [index.images[arm]!, index.images[s390]!]) expect(text).toContain(i.layers[0]!.digest);
    expect(text).not.toContain(index.images[amd]!.layers[0]!.digest);

    for (const platform of ["linux/amd64,linux/arm64", "all"]) {
      const r = await cli(["export", `${reg.host}/plat/app:1.0`, "--platform", platform, "-o", join(await tempDir(), "rootfs.tar")]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/export writes one filesystem, which is one platform's.*--platform linux\/amd64/s);
    }
    const one = join(await tempDir(), "rootfs.tar");
    ok(await cli(["export", `${reg.host}/plat/app:1.0`, "--platform", "linux/s390x", "-o", one]));
  });

  it("digest and manifest --platform give one child's; digest --full-ref prints NAME@DIGEST", async () => {
    const child = index.images[arm]!;
    expect(ok(await cli(["digest", `${reg.host}/plat/app:1.0`, "--platform", "linux/arm64"])).stdout.trim()).toBe(child.manifestDigest);
    expect(ok(await cli(["manifest", `${reg.host}/plat/app:1.0`, "--platform", "linux/arm64"])).stdoutBuffer.equals(child.manifest)).toBe(true);
    expect(ok(await cli(["digest", `docker://${reg.host}/plat/app:1.0`, "--full-ref"])).stdout.trim()).toBe(`${reg.host}/plat/app@${index.manifestDigest}`);
    const json = JSON.parse(ok(await cli(["digest", `${reg.host}/plat/app:1.0`, "--full-ref", "--platform", "linux/arm64", "--format", "json"])).stdout);
    expect(json).toMatchObject({ digest: child.manifestDigest, fullRef: `${reg.host}/plat/app@${child.manifestDigest}` });
    // The printed reference reads back the same manifest.
    expect(ok(await cli(["digest", json.fullRef])).stdout.trim()).toBe(child.manifestDigest);
    const list = await cli(["digest", `${reg.host}/plat/app:1.0`, "--platform", "linux/amd64,linux/arm64"]);
    expect(list.code).toBe(2);
    expect(list.stderr).toMatch(/digest prints one image's digest/);
  });
});

describe("every read command on every location", () => {
  // One index (amd64, arm64) in a registry, in an OCI layout and an oci-archive written by skopeo, in the local
  // store, and its amd64 image in a docker-archive written by skopeo (legacy format: regcli synthesizes the manifest).
  let reg: TestRegistry;
  let index: TestIndex;
  let home: string;
  let dir: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
  interface Where {
    image: string;
    /** The location alone, for blob LOCATION@DIGEST. */
    blob: string;
    list: string;
    names: string[];
    /** The manifest bytes as stored, when the location keeps them exactly. */
    exact: boolean;
    index: boolean;
  }
  const where: Record<string, Where> = {};

  beforeAll(async () => {
    reg = await startRegistry("open");
    home = await tempDir("regcli-home-");
    dir = await tempDir();
    index = makeIndex([
      await makeImage({ platform: { os: "linux", architecture: "amd64" }, seed: "loc-amd64", labels: { where: "everywhere" } }),
      await makeImage({ platform: { os: "linux", architecture: "arm64", variant: "v8" }, seed: "loc-arm64" }),
    ]);
    await pushIndex(reg, "app/multi", "1.0", index);
    const src = `docker://${reg.host}/app/multi:1.0`;
    for (const args of [
      ["copy", "--all", src, `oci:${dir}/layout:v1`],
      ["copy", "--all", src, `oci-archive:${dir}/multi-oci.tar:v1`],
      ["--override-os", "linux", "--override-arch", "amd64", "copy", src, `docker-archive:${dir}/multi-docker.tar:${reg.host}/app/multi:1.0`],
    ]) {
      const r = await skopeo([...args.slice(0, -2), "--src-tls-verify=false", ...args.slice(-2)]);
      if (r.code !== 0) throw new Error(`skopeo ${args.join(" ")}: ${r.stderr}`);
    }
    ok(await cli(["pull", "--all-platforms", `${reg.host}/app/multi:1.0`]));
    Object.assign(where, {
      registry: { image: `${reg.host}/app/multi:1.0`, blob: `${reg.host}/app/multi`, list: `${reg.host}/app/multi`, names: ["1.0"], exact: true, index: true },
      "docker://": { image: `docker://${reg.host}/app/multi:1.0`, blob: `docker://${reg.host}/app/multi`, list: `docker://${reg.host}/app/multi`, names: ["1.0"], exact: true, index: true },
      "oci:": { image: `oci:${dir}/layout:v1`, blob: `oci:${dir}/layout`, list: `oci:${dir}/layout`, names: ["v1"], exact: true, index: true },
      "oci: by digest": { image: `oci:${dir}/layout@${index.manifestDigest}`, blob: `oci:${dir}/layout`, list: `oci:${dir}/layout`, names: ["v1"], exact: true, index: true },
      "oci-archive:": { image: `oci-archive:${dir}/multi-oci.tar:v1`, blob: `oci-archive:${dir}/multi-oci.tar`, list: `oci-archive:${dir}/multi-oci.tar`, names: ["v1"], exact: true, index: true },
      "docker-archive:": { image: `docker-archive:${dir}/multi-docker.tar`, blob: `docker-archive:${dir}/multi-docker.tar`, list: `docker-archive:${dir}/multi-docker.tar`, names: [`${reg.host}/app/multi:1.0`], exact: false, index: false },
      "store:": { image: `store:${reg.host}/app/multi:1.0`, blob: "store:", list: `store:${reg.host}/app/multi`, names: ["1.0"], exact: true, index: true },
    });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  const kinds = ["registry", "docker://", "oci:", "oci: by digest", "oci-archive:", "docker-archive:", "store:"];
  const [amd, arm] = [0, 1];

  it.each(kinds)("manifest, digest, config, inspect, blob, cat and ls read %s", async (kind) => {
    const w = where[kind]!;
    const manifest = ok(await cli(["manifest", w.image])).stdoutBuffer;
    if (w.exact) expect(manifest.equals(index.manifest)).toBe(true);
    const digest = sha256(manifest);
    expect(ok(await cli(["digest", w.image])).stdout.trim()).toBe(digest);
    const json = JSON.parse(ok(await cli(["manifest", w.image, "--format", "json"])).stdout);
    expect(json).toMatchObject({ digest, size: manifest.length });

    const image = index.images[w.index ? arm : amd]!;
    const platform = w.index ? ["--platform", "linux/arm64"] : [];
    expect(ok(await cli(["config", w.image, ...platform])).stdoutBuffer.equals(image.config.data)).toBe(true);
    // One child's digest and manifest (an image that is no index: its own).
    const childDigest = ok(await cli(["digest", w.image, "--platform", w.index ? "linux/arm64" : "linux/amd64"])).stdout.trim();
    expect(childDigest).toBe(w.index ? image.manifestDigest : digest);
    expect(sha256(ok(await cli(["manifest", w.image, "--platform", w.index ? "linux/arm64" : "linux/amd64"])).stdoutBuffer)).toBe(childDigest);
    const info = JSON.parse(ok(await cli(["inspect", w.image, "--format", "json", ...platform])).stdout);
    expect(info.digest).toBe(digest);
    expect(info.image.configDigest).toBe(image.config.digest);
    if (w.index) expect(info.platforms.map((p: { platform: string }) => p.platform)).toEqual(["linux/amd64", "linux/arm64/v8"]);
    else expect(info.image.labels).toEqual({ where: "everywhere" });

    const blob = ok(await cli(["blob", `${w.blob}@${image.config.digest}`]));
    expect(blob.stdoutBuffer.equals(image.config.data)).toBe(true);
    const file = ok(await cli(["cat", w.image, "/layer0/data.bin", ...platform]));
    expect(file.stdoutBuffer.equals(seededBytes(`loc-${w.index ? "arm64" : "amd64"}:0`, 4096))).toBe(true);

    const names = JSON.parse(ok(await cli(["ls", w.list, "--format", "json"])).stdout);
    expect(names.tags).toEqual(w.names);
  });

  it("oci:DIR@DIGEST picks any manifest of a layout, an index's child too; an unknown digest is exit 4", async () => {
    const child = index.images[arm]!;
    const info = JSON.parse(ok(await cli(["inspect", `oci:${dir}/layout@${child.manifestDigest}`, "--format", "json"])).stdout);
    expect(info.digest).toBe(child.manifestDigest);
    expect(info.image.platform).toBe("linux/arm64/v8");
    expect(ok(await cli(["digest", `oci:${dir}/layout:@${child.manifestDigest}`])).stdout.trim()).toBe(child.manifestDigest);
    const copied = ok(await cli(["copy", `oci:${dir}/layout@${child.manifestDigest}`, `${reg.host}/copies/arm:1`]));
    expect(copied.stdout.trim()).toBe(child.manifestDigest);
    const missing = await cli(["manifest", `oci:${dir}/layout@sha256:${"0".repeat(64)}`]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no image with digest sha256:0{64} in oci:.*names: v1/);
  });

  it("pull takes a layout or an archive as its source: a named image is stored under its name", async () => {
    const pulled = ok(await cli(["pull", `docker-archive:${dir}/multi-docker.tar`, "--format", "json"]));
    expect(JSON.parse(pulled.stdout).name).toBe(`${reg.host}/app/multi:1.0`);
    const unnamed = await cli(["pull", `oci:${dir}/layout:v1`]);
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toMatch(/does not say the image's name.*store:NAME/);
    ok(await cli(["copy", `oci:${dir}/layout:v1`, "store:example.com/from-layout:v1"]));
    const stored = JSON.parse(ok(await cli(["digest", "store:example.com/from-layout:v1", "--format", "json"])).stdout);
    expect(stored).toEqual({ reference: "store:example.com/from-layout:v1", digest: index.manifestDigest, mediaType: index.mediaType });
    const out = join(dir, "pulled-layout");
    ok(await cli(["pull", "--all-platforms", `oci-archive:${dir}/multi-oci.tar:v1`, "-o", out]));
    expect(ok(await cli(["digest", `oci:${out}:v1`])).stdout.trim()).toBe(index.manifestDigest);
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

describe("usage: help and unknown commands", () => {
  it("an unknown command is refused with exit 2 even with --help; known ones still show their help", async () => {
    for (const args of [["nosuch", "--help"], ["--plain-http", "nosuch", "-h"], ["image", "nosuch", "--help"], ["--timeout", "5", "nosuch", "--help"]]) {
      const r = await regcli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("unknown command 'nosuch'");
      expect(r.stdout).toBe("");
    }
    for (const args of [["pull", "--help"], ["--timeout", "5", "image", "ls", "--help"], ["help", "copy"], ["serve", "gc", "--help"]]) {
      const r = await regcli(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout).toMatch(/^Usage: regcli /);
    }
  });

  it("every parser error is one line in regcli's format naming the command's help, exit 2; an event with --progress json", async () => {
    const cases: Array<[string[], string]> = [
      [["copy", "--x", "a", "b"], "unknown option '--x' (see regcli copy --help)"],
      [["copy", "--progres", "plain", "a", "b"], "unknown option '--progres'; did you mean --progress? (see regcli copy --help)"],
      [["imag"], "unknown command 'imag'; did you mean image? (see regcli --help)"],
      [["image", "nosuch"], "unknown command 'nosuch' (see regcli image --help)"],
      [["image", "nosuch", "--help"], "unknown command 'nosuch' (see regcli image --help)"],
      [["tag", "busybox"], "missing required argument 'tag' (see regcli tag --help)"],
      [["tag", "a", "b", "c"], "too many arguments for 'tag'. Expected 2 arguments but got 3. (see regcli tag --help)"],
      [["copy", "a", "b", "--jobs"], "option '-j, --jobs <n>' argument missing (see regcli copy --help)"],
      [["ls", "x", "--format", "yaml"], 'unknown --format "yaml": use text, json (see regcli ls --help)'],
      [["image", "save", "x", "--format", "tar"], 'unknown --format "tar": use docker-archive, oci-archive (see regcli image save --help)'],
      [["--progress", "fancy", "version"], 'unknown --progress "fancy": use auto, tty, plain, json, none (see regcli --help)'],
      [["copy", "a", "b", "--compress", "lz4"], 'unknown --compress "lz4": use gzip, zstd, none (see regcli copy --help)'],
      [["help", "nosuch"], "unknown command 'nosuch' (see regcli --help)"],
      [["help", "image", "nosuch"], "unknown command 'nosuch' (see regcli image --help)"],
    ];
    for (const [args, line] of cases) {
      const r = await regcli(args);
      expect([r.code, r.stdout, r.stderr], args.join(" ")).toEqual([2, "", `regcli: error: ${line}\n`]);
      if (args.includes("--progress")) continue;
      const json = await regcli(["--progress", "json", ...args]);
      expect(json.code, args.join(" ")).toBe(2);
      expect(json.stderr.trim().split("\n").map((l) => JSON.parse(l) as unknown)).toEqual([{ time: expect.any(String), type: "error", message: line, exitCode: 2 }]);
    }
  });

  it("help takes a command path: help image save shows image save's help", async () => {
    for (const [args, usage] of [[["help", "image", "save"], "regcli image save [options] <image...>"], [["help", "tag", "prune"], "regcli tag prune [options] <repository>"], [["help"], "regcli [options] [command]"], [["help", "copy"], "regcli copy|cp [options] <source> <destination>"]] as const) {
      const r = await regcli([...args]);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout.split("\n")[0], args.join(" ")).toBe(`Usage: ${usage}`);
    }
  });

  it("login and logout --help name their default registry once", async () => {
    for (const command of ["login", "logout"]) {
      const r = await regcli([command, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout.match(/docker\.io/g)).toHaveLength(1);
    }
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

  it("a registry digest, manifest or ls does not load the archive code (tar-stream, node:zlib), node:child_process, node:readline, node:fs/promises, node:assert; digest and ls not node:crypto", async () => {
    const reg = await startRegistry("open");
    try {
      await pushImage(reg, "lazy/app", "1", await makeImage({ layers: 1, layerSize: 1024, format: "oci", seed: "lazy" }));
      // A preloaded hook records every module the process requires (the bundle requires Node's built-ins through
      // Module._load), then writes the list at exit.
      const dir = await tempDir();
      const hook = join(dir, "spy.cjs");
      await writeFile(hook, `const M = require("node:module"); const seen = new Set(); const load = M._load;
M._load = function (request, ...rest) { seen.add(String(request).replace(/^node:/, "")); return load.call(this, request, ...rest); };
process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(join(dir, "loaded"))}, [...seen].join("\\n")));`);
      for (const args of [["digest", `${reg.host}/lazy/app:1`], ["manifest", `${reg.host}/lazy/app:1`], ["ls", `${reg.host}/lazy/app`]]) {
        const r = await regcli(["--plain-http", ...args], { env: { NODE_OPTIONS: `--require ${hook}` } });
        expect(r.code, r.stderr).toBe(0);
        const loaded = (await readFile(join(dir, "loaded"), "utf8")).split("\n");
        expect(loaded, args[0]).toContain("http"); // the hook saw the request being made
        expect(loaded, args[0]).not.toContain("zlib");
        // Imported at start (commander, the prompt, the store and layout code) or by undici (assert, for its checks)
        // but not needed by a registry read.
        for (const builtin of ["child_process", "readline", "fs/promises", "assert"]) expect(loaded, args[0]).not.toContain(builtin);
        // Nothing to hash: the manifest is read whole and checked, the digest comes from the registry's answer.
        if (args[0] !== "manifest") expect(loaded, args[0]).not.toContain("crypto");
      }
    } finally {
      await reg.stop();
    }
  });

  it("a registry digest, manifest or ls loads Node's built-ins before it sets V8 flags, and formats no stack trace", async () => {
    const reg = await startRegistry("open");
    try {
      await pushImage(reg, "flags/app", "1", await makeImage({ layers: 1, layerSize: 1024, format: "oci", seed: "flags" }));
      // V8 refuses Node's own cached code for its modules once a flag differs from Node's build: a built-in loaded
      // after bin/regcli.cjs sets --liftoff-only is compiled from source. A stack formatted with frames makes V8
      // index the 2 MB bundle by line. The hook records both.
      const dir = await tempDir();
      const hook = join(dir, "flags.cjs");
      await writeFile(hook, `const v8 = require("node:v8"); const set = v8.setFlagsFromString; let at; let stacks = 0;
v8.setFlagsFromString = (flags) => { at ??= process.moduleLoadList.length; return set.call(v8, flags); };
Error.prepareStackTrace = (error, frames) => { if (frames.length) stacks++; return String(error); };
process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(join(dir, "out"))}, JSON.stringify({ at, stacks, after: process.moduleLoadList.slice(at ?? 0) })));`);
      for (const args of [["digest", `${reg.host}/flags/app:1`], ["manifest", `${reg.host}/flags/app:1`], ["ls", `${reg.host}/flags/app`]]) {
        const r = await regcli(["--plain-http", ...args], { env: { NODE_OPTIONS: `--require ${hook}` } });
        expect(r.code, r.stderr).toBe(0);
        const out = JSON.parse(await readFile(join(dir, "out"), "utf8")) as { at?: number; stacks: number; after: string[] };
        expect(out.at, "bin/regcli.cjs sets --liftoff-only").toBeGreaterThan(0);
        // node:crypto stays lazy (digest and ls never hash); manifest, which checks the digest, loads it after the flag.
        expect(out.after.filter((m) => /^NativeModule (?!internal\/)/.test(m)), args[0]).toEqual(args[0] === "manifest" ? ["NativeModule crypto"] : []);
        expect(out.stacks, args[0]).toBe(0);
      }
      // --debug keeps the stacks it exists to show.
      const debug = await regcli(["--plain-http", "--debug", "digest", `${reg.host}/flags/app:1`], { env: { NODE_OPTIONS: `--require ${hook}` } });
      expect(debug.code).toBe(0);
      expect(JSON.parse(await readFile(join(dir, "out"), "utf8")).stacks).toBeGreaterThan(0);
    } finally {
      await reg.stop();
    }
  });

  it("a registry digest, manifest or ls starts no libuv thread pool: as many threads as `node -e 0`", async () => {
    const reg = await startRegistry("open");
    try {
      await pushImage(reg, "pool/app", "1", await makeImage({ layers: 1, layerSize: 1024, format: "oci", seed: "pool" }));
      // The thread pool's four threads start at the first fs/promises (or dns) call and live until exit.
      const dir = await tempDir();
      const hook = join(dir, "threads.cjs");
      await writeFile(hook, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(join(dir, "threads"))}, String(require("node:fs").readdirSync("/proc/self/task").length)));`);
      const threads = async () => Number(await readFile(join(dir, "threads"), "utf8"));
      execFileSync(process.execPath, ["--require", hook, "-e", "0"]);
      const floor = await threads();
      // The default digest twice: the first probes HTTPS and notes the plain-HTTP answer, the second reads the note.
      const env = { NODE_OPTIONS: `--require ${hook}`, XDG_CACHE_HOME: await tempDir() };
      for (const args of [["--plain-http", "digest", `${reg.host}/pool/app:1`], ["--plain-http", "manifest", `${reg.host}/pool/app:1`], ["--plain-http", "ls", `${reg.host}/pool/app`], ["digest", `${reg.host}/pool/app:1`], ["digest", `${reg.host}/pool/app:1`]]) {
        const r = await regcli(args, { env });
        expect(r.code, r.stderr).toBe(0);
        expect(await threads(), args.join(" ")).toBe(floor);
      }
    } finally {
      await reg.stop();
    }
  });
});
