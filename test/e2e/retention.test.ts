// regcli tag prune (retention) against a registry that deletes only by digest (Distribution 2.8) and one that can
// remove a tag alone (regcli serve, OCI 1.1).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onTerminal, regcli, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex, pushManifest, type TestImage } from "../helpers/images.js";
import { hostPlatform } from "../../src/oci/index.js";
import { startRegistry, type RegistryServer, type TestRegistry } from "../helpers/registry.js";

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY).toISOString();

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`regcli exited ${r.code}: ${r.stderr}`);
  return r;
}

interface Report {
  candidates: string[];
  kept: string[];
  undated: string[];
  remove: Array<{ tag: string; digest: string; sharedWith: string[] }>;
  dryRun: boolean;
  outcomes?: Array<{ tag: string; digest: string; action: string; reason?: string }>;
}

describe.each<RegistryServer>(["docker-registry", "regcli"])("tag prune against %s", (server) => {
  let reg: TestRegistry;
  const tagDelete = server === "regcli";
  const prune = async (repo: string, args: string[]) => regcli(["tag", "prune", `${reg.host}/${repo}`, ...args]);
  const report = async (repo: string, args: string[]) => JSON.parse(ok(await prune(repo, [...args, "--format", "json"])).stdout) as Report;
  const tags = async (repo: string) => ok(await regcli(["ls", `${reg.host}/${repo}`])).stdout.split("\n").filter(Boolean).sort();
  const push = async (repo: string, tag: string, opts: Parameters<typeof makeImage>[0] = {}): Promise<TestImage> => {
    const image = await makeImage({ layers: 1, layerSize: 512, seed: `${repo}-${tag}`, ...opts });
    await pushImage(reg, repo, tag, image);
    return image;
  };

  beforeAll(async () => {
    reg = await startRegistry("open", { server, deleteEnabled: true });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("--keep-latest keeps the highest versions (version order, not text order)", async () => {
    for (const t of ["1.0.0", "1.9.0", "1.10.0", "v1.2", "2.0.0-rc1"]) await push("semver", t);
    const r = await report("semver", ["--keep-latest", "2", "--force"]);
    expect(r.kept.sort()).toEqual(["1.10.0", "2.0.0-rc1"]);
    expect(r.outcomes!.map((o) => [o.tag, o.action]).sort()).toEqual(
      ["1.0.0", "1.9.0", "v1.2"].map((t) => [t, tagDelete ? "untagged" : "deleted"]),
    );
    expect(await tags("semver")).toEqual(["1.10.0", "2.0.0-rc1"]);
  });

  it("--older-than removes images created before the duration, keeps undated ones, and --include limits the candidates", async () => {
    const old = await push("dated", "nightly-old", { created: daysAgo(60) });
    await push("dated", "nightly-new", { created: daysAgo(3) });
    await push("dated", "nightly-undated", { created: null });
    await push("dated", "release-old", { created: daysAgo(90) });
    const r = await report("dated", ["--older-than", "30d", "--include", "nightly-.*", "--force"]);
    expect(r.candidates.sort()).toEqual(["nightly-new", "nightly-old", "nightly-undated"]);
    expect(r.undated).toEqual(["nightly-undated"]);
    expect(r.outcomes).toEqual([{ tag: "nightly-old", digest: old.manifestDigest, action: tagDelete ? "untagged" : "deleted" }]);
    expect(await tags("dated")).toEqual(["nightly-new", "nightly-undated", "release-old"]);
  });

  it("never touches referrers' tags: the tag schema's sha256-<hex> index and cosign's .sig/.att/.sbom stay", async () => {
    const kept = await push("signed", "2.0.0");
    await push("signed", "1.0.0");
    const hex = kept.manifestDigest.slice("sha256:".length);
    for (const tag of [`sha256-${hex}`, `sha256-${hex}.sig`, `sha256-${hex}.att`]) await push("signed", tag);
    const r = await report("signed", ["--keep-latest", "1", "--force"]);
    expect(r.candidates.sort()).toEqual(["1.0.0", "2.0.0"]);
    expect(r.outcomes!.map((o) => o.tag)).toEqual(["1.0.0"]);
    expect(await tags("signed")).toEqual(["2.0.0", `sha256-${hex}`, `sha256-${hex}.att`, `sha256-${hex}.sig`]);
  });

  it("an index's age is that of this machine's platform's child, else of its first child", async () => {
    const host = hostPlatform();
    const other = { os: "linux", architecture: host.architecture === "s390x" ? "ppc64le" : "s390x" };
    const child = async (seed: string, platform: typeof other, days: number) => makeImage({ layers: 1, layerSize: 512, seed, platform, created: daysAgo(days) });
    // Host child old, other child new: old. No host child: the first child decides.
    await pushIndex(reg, "indexes", "host-old", makeIndex([await child("i1", other, 1), await child("i2", host, 60)]));
    await pushIndex(reg, "indexes", "host-new", makeIndex([await child("i3", other, 60), await child("i4", host, 1)]));
    await pushIndex(reg, "indexes", "first-old", makeIndex([await child("i5", { ...other, os: "windows" }, 60), await child("i6", other, 1)]));
    const r = await report("indexes", ["--older-than", "30d", "--dry-run"]);
    expect(r.remove.map((x) => x.tag).sort()).toEqual(["first-old", "host-old"]);
    expect(await tags("indexes")).toEqual(["first-old", "host-new", "host-old"]);
  });

  it("never deletes a manifest a kept tag or a kept index still points at", async () => {
    const shared = await push("shared", "old-1");
    await pushManifest(reg, "shared", "stable", shared.manifest, shared.mediaType);
    await push("shared", "old-2");
    const amd64 = await makeImage({ layers: 1, layerSize: 512, seed: "shared-amd64" });
    const arm64 = await makeImage({ layers: 1, layerSize: 512, seed: "shared-arm64", platform: { os: "linux", architecture: "arm64" } });
    await pushIndex(reg, "shared", "multi", makeIndex([amd64, arm64]));
    await pushManifest(reg, "shared", "old-amd64", amd64.manifest, amd64.mediaType);

    const r = await report("shared", ["--include", "old-.*", "--keep-latest", "0", "--force"]);
    const byTag = Object.fromEntries(r.outcomes!.map((o) => [o.tag, o]));
    expect(r.remove.find((x) => x.tag === "old-1")!.sharedWith).toEqual(["stable"]);
    expect(r.remove.find((x) => x.tag === "old-amd64")!.sharedWith).toEqual(["multi (index)"]);
    expect(byTag["old-2"]!.action).toBe(tagDelete ? "untagged" : "deleted");
    for (const t of ["old-1", "old-amd64"]) {
      expect(byTag[t]!.action).toBe(tagDelete ? "untagged" : "left");
      if (!tagDelete) expect(byTag[t]!.reason).toMatch(/can only delete manifests and (stable|multi \(index\)) still points at it/);
    }
    expect(await tags("shared")).toEqual(tagDelete ? ["multi", "stable"] : ["multi", "old-1", "old-amd64", "stable"]);
    expect((await fetchManifest(reg, "shared", "stable")).digest).toBe(shared.manifestDigest);
    expect((await fetchManifest(reg, "shared", amd64.manifestDigest)).status).toBe(200);
  });

  it("--dry-run prints the plan and changes nothing", async () => {
    for (const t of ["1", "2", "3"]) await push("dry", t);
    const text = ok(await prune("dry", ["--keep-latest", "1", "--dry-run"]));
    expect(text.stdout).toMatch(/dry: 3 tags, 3 candidates, 1 kept, 2 to remove/);
    expect(text.stdout).toMatch(/^remove 1 /m);
    expect(text.stdout).toMatch(/^remove 2 /m);
    const r = await report("dry", ["--keep-latest", "1", "--dry-run"]);
    expect(r.dryRun).toBe(true);
    expect(r.outcomes).toBeUndefined();
    expect(await tags("dry")).toEqual(["1", "2", "3"]);
  });

  it("refuses off a terminal without --force (exit 2) and removes nothing", async () => {
    for (const t of ["a", "b"]) await push("refuse", t);
    const r = await prune("refuse", ["--keep-latest", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^remove a /m);
    expect(r.stderr).toMatch(/^remove b /m);
    expect(r.stderr).toMatch(/tag prune would remove 2 tags of .*refuse; nothing removed; pass --force/);
    expect(await tags("refuse")).toEqual(["a", "b"]);
  });

  it("on a terminal shows the plan and asks y/N: anything but y removes nothing, y removes", async () => {
    for (const t of ["t1", "t2", "t3"]) await push("ask", t, { created: daysAgo(Number(t.slice(1))) });
    const args = ["tag", "prune", `${reg.host}/ask`, "--keep-latest", "1"];
    const no = await onTerminal(args, "n\n");
    expect(no.screen).toMatch(/^remove t2 /m);
    expect(no.screen).toMatch(/^remove t3 /m);
    expect(no.screen).toMatch(/Remove 2 tags of .*ask\? \[y\/N\]/);
    expect(no.code, no.screen).toBe(2);
    expect(await tags("ask")).toEqual(["t1", "t2", "t3"]);
    const yes = await onTerminal(args, "y\n", true);
    expect(yes.code, yes.screen).toBe(0);
    expect(yes.screen).toMatch(/Pruned .*ask: /);
    expect(await tags("ask")).toEqual(["t1"]);
  });

  it("rejects bad values with usage errors before touching the registry", async () => {
    expect((await prune("refuse", ["--older-than", "30 days", "--force"])).stderr).toMatch(/invalid duration "30 days"/);
    expect((await prune("refuse", ["--keep-latest", "-1", "--force"])).code).toBe(2);
    expect((await prune("refuse", ["--force"])).stderr).toMatch(/needs --keep-latest N or --older-than DURATION/);
    expect((await regcli(["tag", "prune", `${reg.host}/refuse:a`, "--keep-latest", "1"])).code).toBe(2);
    expect(await tags("refuse")).toEqual(["a", "b"]);
  });

  it("a first argument other than exactly prune is still a retag (even with the new tag prune)", async () => {
    const image = await push("retag", "1");
    expect(ok(await regcli(["tag", `${reg.host}/retag:1`, "prune"])).stdout.trim()).toBe(image.manifestDigest);
    expect(await tags("retag")).toEqual(["1", "prune"]);
  });
});

describe("tag prune against a registry with deletes disabled", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry("open", { deleteEnabled: false });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("reports every removal that failed and exits 5; nothing is lost", async () => {
    for (const t of ["1", "2", "3"]) await pushImage(reg, "nodelete", t, await makeImage({ layers: 1, layerSize: 512, seed: `nodelete-${t}` }));
    const r = await regcli(["tag", "prune", `${reg.host}/nodelete`, "--keep-latest", "1", "--force", "--format", "json"]);
    expect(r.code).toBe(5);
    const outcomes = (JSON.parse(r.stdout) as Report).outcomes!;
    expect(outcomes.map((o) => [o.tag, o.action]).sort()).toEqual([["1", "failed"], ["2", "failed"]]);
    expect(outcomes[0]!.reason).toMatch(/does not allow deleting manifest/);
    expect(r.stderr).toMatch(/2 tags of .*nodelete could not be removed/);
    expect(ok(await regcli(["ls", `${reg.host}/nodelete`])).stdout.split("\n").filter(Boolean).sort()).toEqual(["1", "2", "3"]);
  });
});
