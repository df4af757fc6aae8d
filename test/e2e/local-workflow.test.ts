// The daemonless Docker workflow: local store, pull/push, OCI layouts, interop with skopeo, crash safety.
import { execFileSync, spawn } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onTerminal, regcli, repoRoot, skopeo, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex, seededBytes, sha256, type TestImage, type TestIndex } from "../helpers/images.js";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

async function storeBlobs(home: string): Promise<string[]> {
  const dir = join(home, "store", "blobs", "sha256");
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

describe("local image store", () => {
  let hub: TestRegistry; // stands in for docker.io, served through the mirror setting
  let reg: TestRegistry; // the private registry of the tutorial
  let busybox: TestImage;
  let multi: TestIndex;
  let home: string;
  let env: Record<string, string>;
  const cli = (args: string[], extra: Record<string, string> = {}) => regcli(args, { env: { ...env, ...extra } });

  beforeAll(async () => {
    [hub, reg] = await Promise.all([startRegistry("open"), startRegistry("open")]);
    busybox = await makeImage({ layers: 2, layerSize: 256 * 1024, format: "docker", seed: "busybox-local" });
    await pushImage(hub, "library/busybox", "latest", busybox);
    multi = makeIndex([
      await makeImage({ platform: { os: "linux", architecture: "amd64" }, seed: "m-amd64" }),
      await makeImage({ platform: { os: "linux", architecture: "arm64", variant: "v8" }, seed: "m-arm64" }),
    ]);
    await pushIndex(reg, "multi/app", "1.0", multi);
    home = await tempDir("regcli-home-");
    env = { REGCLI_HOME: home, REGCLI_REGISTRY_MIRRORS: hub.url };
  });
  afterAll(async () => Promise.all([hub?.stop(), reg?.stop()]));

  it("runs the registry tutorial end to end without a daemon", async () => {
    const pulled = ok(await cli(["pull", "busybox"]));
    expect(pulled.stdout.trim()).toBe(busybox.manifestDigest);
    ok(await cli(["image", "tag", "busybox", `${reg.host}/firstapp`]));
    const pushed = ok(await cli(["push", `${reg.host}/firstapp`]));
    expect(pushed.stdout.trim()).toBe(busybox.manifestDigest);
    expect((await fetchManifest(reg, "firstapp", "latest")).body.equals(busybox.manifest)).toBe(true);
    // docker's rmi: removes local names only, the pushed image stays in the registry.
    const rm = ok(await cli(["rmi", "busybox", `${reg.host}/firstapp`]));
    expect(rm.stdout).toContain("docker.io/library/busybox:latest");
    expect((await fetchManifest(reg, "firstapp", "latest")).status).toBe(200);
    expect(JSON.parse(ok(await cli(["images", "--format", "json"])).stdout)).toEqual([]);
    expect(await storeBlobs(home)).toEqual([]);
    ok(await cli(["pull", `${reg.host}/firstapp`]));
    const images = JSON.parse(ok(await cli(["images", "--format", "json"])).stdout);
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ name: `${reg.host}/firstapp:latest`, repository: `${reg.host}/firstapp`, tag: "latest", digest: busybox.manifestDigest, platforms: ["linux/amd64"] });
    expect(images[0].size).toBe(busybox.config.size + busybox.layers.reduce((n, l) => n + l.size, 0));
    const table = ok(await cli(["images"])).stdout;
    expect(table).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+PLATFORMS\s+SIZE\s+CREATED/);
  });

  it("keeps blobs shared between images once, and a second pull downloads nothing", async () => {
    const before = await storeBlobs(home);
    const again = ok(await cli(["pull", `${reg.host}/firstapp`]));
    expect(again.stderr).toMatch(/Up to date|0 blobs/);
    ok(await cli(["image", "tag", `${reg.host}/firstapp`, "other/name:2"]));
    expect(await storeBlobs(home)).toEqual(before);
    for (const hex of before) expect(sha256(await readFile(join(home, "store", "blobs", "sha256", hex)))).toBe(`sha256:${hex}`);
    ok(await cli(["image", "rm", "other/name:2"]));
    expect(await storeBlobs(home)).toEqual(before); // still needed by firstapp
  });

  it("pushing a pulled image to another repository of its registry mounts the blobs instead of uploading", async () => {
    ok(await cli(["image", "tag", `${reg.host}/firstapp`, `${reg.host}/team/renamed:1`]));
    const r = ok(await cli(["push", `${reg.host}/team/renamed:1`]));
    expect(r.stdout.trim()).toBe(busybox.manifestDigest);
    expect(r.stderr).toMatch(/0 blobs \(0 B\) uploaded, 3 mounted/);
  });

  it("skopeo reads the store through its oci: transport (OCI-typed images)", async () => {
    // skopeo 1.9 only lists OCI-typed entries of a layout; Docker v2s2 images are kept byte-exact for regcli.
    ok(await cli(["pull", `${reg.host}/multi/app:1.0`]));
    const r = await skopeo(["inspect", "--raw", `oci:${join(home, "store")}:${reg.host}/multi/app:1.0`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBuffer.equals(multi.images[0]!.manifest)).toBe(true);
  });

  it("pulls one platform of an index by default (this machine's) or --platform", async () => {
    const amd = ok(await cli(["pull", `${reg.host}/multi/app:1.0`]));
    expect(amd.stdout.trim()).toBe(multi.images[0]!.manifestDigest);
    const arm = ok(await cli(["pull", "--platform", "linux/arm64", `${reg.host}/multi/app:1.0`]));
    expect(arm.stdout.trim()).toBe(multi.images[1]!.manifestDigest);
  });

  it("images takes -q (each image's short id once), --no-trunc and a REPOSITORY[:TAG] pattern or --filter reference=", async () => {
    const h = { REGCLI_HOME: await tempDir("regcli-home-") };
    ok(await cli(["pull", "busybox"], h));
    ok(await cli(["image", "tag", "busybox", "other/name:2"], h));
    ok(await cli(["pull", "--platform", "linux/arm64", `${reg.host}/multi/app:1.0`], h));
    const arm = multi.images[1]!.manifestDigest;
    const hex = (digest: string) => digest.slice(7, 19);
    // Two names of busybox are one image; the global -q before the command means the same.
    for (const args of [["images", "-q"], ["-q", "images"], ["image", "ls", "--quiet"]]) {
      expect(ok(await cli(args, h)).stdout.split("\n").filter(Boolean).sort(), args.join(" ")).toEqual([hex(busybox.manifestDigest), hex(arm)].sort());
    }
    expect(ok(await cli(["images", "-q", "--no-trunc"], h)).stdout.split("\n").filter(Boolean).sort()).toEqual([busybox.manifestDigest, arm].sort());
    expect(ok(await cli(["images", "--no-trunc"], h)).stdout).toContain(arm);
    expect(ok(await cli(["images"], h)).stdout).not.toContain(arm);

    const names = async (...args: string[]) => (JSON.parse(ok(await cli(["images", ...args, "--format", "json"], h)).stdout) as Array<{ name: string }>).map((i) => i.name);
    expect(await names("busybox")).toEqual(["docker.io/library/busybox:latest"]);
    expect(await names("busybox:latest")).toEqual(["docker.io/library/busybox:latest"]);
    expect(await names("docker.io/library/busybox")).toEqual(["docker.io/library/busybox:latest"]);
    expect(await names("busybox:1.0")).toEqual([]);
    expect(await names("busy*")).toEqual(["docker.io/library/busybox:latest"]);
    // As Docker's path.Match: * stays within one path component.
    expect(await names("*")).toEqual(["docker.io/library/busybox:latest"]);
    expect(await names("*/*")).toEqual(["docker.io/other/name:2"]);
    expect(await names("--filter", "reference=*/multi/*")).toEqual([`${reg.host}/multi/app:1.0`]);
    expect(await names("--filter", "reference=other/*", "--filter", "reference=busybox")).toEqual(["docker.io/library/busybox:latest", "docker.io/other/name:2"]);
    expect(ok(await cli(["images", "-q", "other/name"], h)).stdout.trim()).toBe(hex(busybox.manifestDigest));
    const table = ok(await cli(["images", "nothing-like-it"], h)).stdout;
    expect(table.trim()).toMatch(/^REPOSITORY\s+TAG\s+DIGEST/);
    expect(table.trim().split("\n")).toHaveLength(1);
    const bad = await cli(["images", "--filter", "dangling=true"], h);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unsupported filter "dangling=true".*reference=PATTERN/s);
  });

  it("--all-platforms keeps the index, and pushing it back restores the same index digest", async () => {
    const all = ok(await cli(["pull", "--all-platforms", `${reg.host}/multi/app:1.0`]));
    expect(all.stdout.trim()).toBe(multi.manifestDigest);
    const img = JSON.parse(ok(await cli(["images", "--format", "json"])).stdout).find((i: { name: string }) => i.name === `${reg.host}/multi/app:1.0`);
    expect(img.platforms).toEqual(["linux/amd64", "linux/arm64/v8"]);
    ok(await cli(["image", "tag", `${reg.host}/multi/app:1.0`, `${reg.host}/multi/restored:1.0`]));
    const pushed = ok(await cli(["push", `${reg.host}/multi/restored:1.0`]));
    expect(pushed.stdout.trim()).toBe(multi.manifestDigest);
    expect((await fetchManifest(reg, "multi/restored", "1.0")).body.equals(multi.manifest)).toBe(true);
  });

  it("pull -o DIR writes an OCI layout that skopeo copies; skopeo's oci: output is pushed by regcli", async () => {
    const dir = join(await tempDir(), "layout");
    ok(await cli(["pull", "--all-platforms", `${reg.host}/multi/app:1.0`, "-o", dir]));
    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const out = await skopeo(["copy", "--all", "--dest-tls-verify=false", `oci:${dir}:1.0`, `docker://${reg.host}/from-layout:1`]);
    expect(out.code, out.stderr).toBe(0);
    expect((await fetchManifest(reg, "from-layout", "1")).body.equals(multi.manifest)).toBe(true);
    // A Docker v2s2 image gets OCI media types in a layout (as skopeo writes it), so skopeo reads it too...
    const dockerDir = join(await tempDir(), "docker-layout");
    const converted = ok(await cli(["pull", `${reg.host}/firstapp`, "-o", dockerDir]));
    expect(converted.stdout.trim()).not.toBe(busybox.manifestDigest);
    // Never silently: stderr says the digest changed, from what to what, and how to keep it.
    expect(converted.stderr).toContain(`digest changed from ${busybox.manifestDigest} to ${converted.stdout.trim()} (converted to OCI media types); use --preserve-digests`);
    const raw = await skopeo(["inspect", "--raw", `oci:${dockerDir}:latest`]);
    expect(raw.code, raw.stderr).toBe(0);
    const doc = JSON.parse(raw.stdout);
    expect(doc.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(doc.config.digest).toBe(busybox.config.digest);
    expect(doc.layers.map((l: { digest: string }) => l.digest)).toEqual(busybox.layers.map((l) => l.digest));
    // ...and --preserve-digests keeps the exact bytes, which regcli reads back with the same digest.
    const exactDir = join(await tempDir(), "exact-layout");
    expect(ok(await cli(["pull", "--preserve-digests", `${reg.host}/firstapp`, "-o", exactDir])).stderr).not.toMatch(/Converted/);
    const back = ok(await cli(["push", `oci:${exactDir}:latest`, `${reg.host}/firstapp-again:1`]));
    expect(back.stdout.trim()).toBe(busybox.manifestDigest);

    const skopeoDir = join(await tempDir(), "skopeo-layout");
    const made = await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/multi/app:1.0`, `oci:${skopeoDir}:v1`, "--all"]);
    expect(made.code, made.stderr).toBe(0);
    const pushed = ok(await cli(["push", `oci:${skopeoDir}:v1`, `${reg.host}/from-skopeo:v1`]));
    expect(pushed.stdout.trim()).toBe(multi.manifestDigest);
    const copied = ok(await cli(["copy", `oci:${skopeoDir}:v1`, `oci:${join(skopeoDir, "..", "copy")}:v2`]));
    expect(copied.stdout.trim()).toBe(multi.manifestDigest);
  });

  it("two pulls into the same store at once both succeed", async () => {
    const h = await tempDir("regcli-home-");
    const [a, b] = await Promise.all([
      regcli(["pull", `${reg.host}/firstapp`], { env: { REGCLI_HOME: h } }),
      regcli(["pull", "--all-platforms", `${reg.host}/multi/app:1.0`], { env: { REGCLI_HOME: h } }),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const names = JSON.parse(ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: h } })).stdout).map((i: { name: string }) => i.name);
    expect(names.sort()).toEqual([`${reg.host}/firstapp:latest`, `${reg.host}/multi/app:1.0`]);
  });

  it("a pull killed mid-blob leaves a store that lists the same images, and the next pull completes", async () => {
    const big = await makeImage({ layers: 1, layerSize: 48 * 1024 * 1024, seed: "big-crash" });
    await pushImage(reg, "big/app", "1.0", big);
    const h = await tempDir("regcli-home-");
    ok(await regcli(["pull", `${reg.host}/firstapp`], { env: { REGCLI_HOME: h } }));
    const before = ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: h } })).stdout;
    // The layer stalls after 10 MiB (through the fault proxy), so the kill lands mid-blob every time.
    const layer = big.layers[0]!;
    const layerPath = new RegExp(`/blobs/${layer.digest}$`);
    const proxy = await startFaultProxy(reg.url);
    try {
      proxy.rules = [{ method: "GET", path: layerPath, nth: 1, fault: { kind: "stall", after: 10 * 1024 * 1024 } }];
      const child = spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "--plain-http", "pull", "-j", "1", `${proxy.host}/big/app:1.0`], {
        env: { ...process.env, REGCLI_HOME: h, NO_COLOR: "1" },
        stdio: "ignore",
      });
      const blobDir = join(h, "store", "blobs", "sha256");
      const partial = join(blobDir, `${layer.digest.slice(7)}.partial`);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && (await stat(partial).catch(() => ({ size: 0 }))).size < 10 * 1024 * 1024) {
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      await new Promise((r) => child.on("close", r));
      // no half-written blob under a digest name
      for (const f of await readdir(blobDir)) {
        if (!f.endsWith(".partial") && !f.endsWith(".lock")) expect(sha256(await readFile(join(blobDir, f)))).toBe(`sha256:${f}`);
      }
      expect((await stat(partial)).size).toBe(10 * 1024 * 1024);
      expect(ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: h } })).stdout).toBe(before);
      // The store kept the partial download: the next pull resumes it with Range instead of starting over.
      proxy.reset();
      proxy.rules = [];
      const again = ok(await regcli(["--plain-http", "pull", "--progress", "plain", `${proxy.host}/big/app:1.0`], { env: { REGCLI_HOME: h } }));
      expect(again.stdout.trim()).toBe(big.manifestDigest);
      expect(again.stderr).toContain(`${layer.digest.slice(0, 19)}: resuming at 10.0 MiB`);
      expect(proxy.bytesSent(layerPath, "GET")).toBe(layer.size - 10 * 1024 * 1024);
      expect(sha256(await readFile(join(blobDir, layer.digest.slice(7))))).toBe(layer.digest);
    } finally {
      await proxy.close();
    }
    const after = JSON.parse(ok(await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: h } })).stdout);
    expect(after.map((i: { name: string }) => i.name).sort()).toEqual([`${proxy.host}/big/app:1.0`, `${reg.host}/firstapp:latest`].sort());
  });

  it("every identifier `images` prints names the image for image inspect/tag/rm, cat, export and store: (pulled by digest too)", async () => {
    const h = await tempDir("regcli-home-");
    const run = (args: string[]) => regcli(args, { env: { REGCLI_HOME: h } });
    // By the index digest, one platform: stored as that platform's manifest, under name@index-digest.
    ok(await run(["pull", "--platform", "linux/arm64", `${reg.host}/multi/app@${multi.manifestDigest}`]));
    const arm = multi.images[1]!;
    const [img] = JSON.parse(ok(await run(["images", "--format", "json"])).stdout);
    expect(img).toMatchObject({ tag: "<none>", repository: `${reg.host}/multi/app`, digest: arm.manifestDigest });
    const short = /sha256:[a-f0-9]{12}/.exec(ok(await run(["images"])).stdout)![0];
    expect(arm.manifestDigest.startsWith(short)).toBe(true);
    const data = seededBytes("m-arm64:0", 4096);
    for (const id of [img.name, `${img.repository}@${img.digest}`, short, short.slice(7), img.digest]) {
      const info = JSON.parse(ok(await run(["image", "inspect", id, "--format", "json"])).stdout);
      expect(info.digest, id).toBe(arm.manifestDigest);
      expect(ok(await run(["digest", `store:${id}`])).stdout.trim(), id).toBe(arm.manifestDigest);
      expect(ok(await run(["cat", id, "/layer0/data.bin"])).stdoutBuffer.equals(data), id).toBe(true);
    }
    const out = join(await tempDir(), "rootfs.tar");
    ok(await run(["export", short, "-o", out]));
    expect((await stat(out)).size).toBeGreaterThan(4096);

    ok(await run(["image", "tag", short, "example.com/tagged:1"]));
    const ambiguous = await run(["image", "rm", short]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain("example.com/tagged:1");
    const rm = ok(await run(["image", "rm", `${img.repository}@${img.digest}`]));
    expect(rm.stdout).toBe(`Untagged: ${img.name}\n`);
    ok(await run(["image", "rm", img.digest]));
    expect(JSON.parse(ok(await run(["images", "--format", "json"])).stdout)).toEqual([]);
    expect(await storeBlobs(h)).toEqual([]);
  });

  it("image save writes to a pipe without -o (never to a terminal); image load reads stdin and layout directories", async () => {
    const h = await tempDir("regcli-home-");
    const run = (args: string[], input?: Buffer) => regcli(args, { env: { REGCLI_HOME: h }, input });
    const name = `${reg.host}/firstapp:latest`;
    const saved = ok(await cli(["image", "save", `${reg.host}/firstapp`]));
    expect(saved.stdoutBuffer.length).toBeGreaterThan(busybox.layers[0]!.size);
    const loaded = ok(await run(["image", "load", "-i", "-"], saved.stdoutBuffer));
    expect(loaded.stdout).toBe(`Loaded image: ${name} ${busybox.manifestDigest}\n`);
    ok(await run(["image", "rm", name]));
    ok(await run(["image", "load"], saved.stdoutBuffer)); // stdin is the default when it is not a terminal
    const info = JSON.parse(ok(await run(["image", "inspect", `${reg.host}/firstapp`, "--format", "json"])).stdout);
    expect(info).toMatchObject({ reference: `store:${name}`, digest: busybox.manifestDigest });

    const layout = join(await tempDir(), "layout");
    ok(await run(["copy", "--preserve-digests", `store:${name}`, `oci:${layout}:example.com/from/layout:2`]));
    for (const input of [layout, `oci:${layout}`]) {
      const r = ok(await run(["image", "load", "-i", input]));
      expect(r.stdout).toBe(`Loaded image: example.com/from/layout:2 ${busybox.manifestDigest}\n`);
    }

    // Binary data never goes to a terminal (as docker refuses): image save, export and blob without -o.
    const refusals: Array<[string[], string]> = [
      [["image", "save", `${reg.host}/firstapp`], "an archive"],
      [["export", `store:${name}`], "a tar"],
      [["blob", `${reg.host}/firstapp@${busybox.layers[0]!.digest}`], "a blob"],
    ];
    for (const [args, what] of refusals) {
      const { code, screen } = await onTerminal(args, "", false, { REGCLI_HOME: h });
      expect(code, args.join(" ")).toBe(2);
      expect(screen).toMatch(new RegExp(`refusing to write ${what} to a terminal; give -o FILE or redirect standard output`));
      expect(screen.trim().split("\n"), "only the one-line refusal reaches the terminal").toHaveLength(1);
    }
  });

  it("reading the store never creates it: ls store: of a fresh home is empty and leaves the home absent", async () => {
    const home = join(await tempDir(), "never-created");
    const run = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });
    expect(ok(await run(["ls", "store:"])).stdout).toBe("");
    expect(ok(await run(["ls", "store:busybox"])).stdout).toBe("");
    const blob = await run(["blob", `store:@sha256:${"0".repeat(64)}`]);
    expect(blob.code, blob.stderr).toBe(4);
    expect(existsSync(home)).toBe(false);
  });

  it("push SOURCE TARGET says what SOURCE is: a missing file, a stored image, a registry reference, nothing", async () => {
    ok(await cli(["pull", `${reg.host}/multi/app:1.0`]));
    ok(await cli(["image", "tag", `${reg.host}/multi/app:1.0`, "multi"]));
    const stored = await cli(["push", "multi", `${reg.host}/x`]);
    expect(stored.code).toBe(2);
    expect(stored.stderr).toMatch(/multi is an image in the local store \(docker\.io\/library\/multi:latest\)/);
    expect(stored.stderr).toContain(`regcli image tag multi ${reg.host}/x && regcli push ${reg.host}/x`);
    expect(stored.stderr).toContain(`regcli push store:multi ${reg.host}/x`); // the direct way, and it works:
    ok(await cli(["push", "store:multi", `${reg.host}/x`]));
    const missing = await cli(["push", "missing.tar", `${reg.host}/x`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/push source missing\.tar: no such file or directory/);
    const nothing = await cli(["push", "nothere", `${reg.host}/x`]);
    expect(nothing.code).toBe(4);
    expect(nothing.stderr).toMatch(/no such file or directory, and no image docker\.io\/library\/nothere:latest in the local store; see regcli images/);
    const remote = await cli(["push", `${reg.host}/other/app:1`, `${reg.host}/x`]);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain(`regcli copy ${reg.host}/other/app:1 ${reg.host}/x`);
    for (const r of [stored, missing, nothing, remote]) {
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/regcli copy (multi|missing\.tar|nothere) /); // a bare name means docker.io: never suggested
    }
    ok(await cli(["image", "rm", "multi", `${reg.host}/multi/app:1.0`]));
  });

  it("usage and not-found errors are one line with the right exit code", async () => {
    const missing = await cli(["image", "rm", "never/pulled"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no image named docker\.io\/never\/pulled:latest in the local store/);
    const notLocal = await cli(["push", `${reg.host}/not-in-store:1`]);
    expect(notLocal.code).toBe(4);
    const both = await cli(["pull", "--platform", "linux/amd64", "--all-platforms", "busybox"]);
    expect(both.code).toBe(2);
    const archive = await cli(["copy", "docker-archive:/nonexistent/x.tar", `${reg.host}/x`]);
    expect(archive.code).toBe(2);
    expect(archive.stderr).toMatch(/cannot read archive \/nonexistent\/x\.tar: no such file/);
    const daemon = await cli(["copy", "docker-daemon:busybox:latest", `${reg.host}/x`]);
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toMatch(/not supported/);
  });
});

// Local file failures, on real small file systems (the tests and the CI run as root, so tmpfs mounts work).
describe("local write failures: full disk, read-only file system", () => {
  let reg: TestRegistry;
  let image: TestImage;
  let full: string; // a 1 MiB tmpfs: the image (2 layers of 700 KiB) never fits
  let readOnly: string; // a tmpfs mounted read-only
  let ref: string;

  beforeAll(async () => {
    reg = await startRegistry("open");
    image = await makeImage({ layers: 2, layerSize: 700 * 1024, seed: "full-disk" });
    await pushImage(reg, "disk/app", "1", image);
    ref = `${reg.host}/disk/app:1`;
    [full, readOnly] = await Promise.all([tempDir("regcli-full-"), tempDir("regcli-ro-")]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1M", "tmpfs", full]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", readOnly]);
  });
  afterAll(async () => {
    for (const dir of [full, readOnly]) if (dir) execFileSync("umount", ["-l", dir]);
    await reg?.stop();
  });

  /** Every file left under `dir` (recursively), relative to it. */
  async function leftovers(dir: string): Promise<string[]> {
    return (await readdir(dir, { recursive: true })).map(String).sort();
  }

  async function emptyFull(): Promise<void> {
    for (const name of await readdir(full)) await rm(join(full, name), { recursive: true, force: true });
  }

  /** Exit 6 and one line that names `path` and the reason; no stack, no Node warning about an unclosed file. */
  function expectIoError(r: CliResult, path: string, reason: RegExp): void {
    expect(r.code, r.stderr).toBe(6);
    const lines = r.stderr.split("\n").filter((l) => l && !/Pull complete|Resolving|Waiting|Downloading/.test(l));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(path);
    expect(lines[0]).toMatch(reason);
    expect(r.stderr).not.toMatch(/DEP0137|Closing file descriptor|^\s+at /m);
    expect(r.stdout).toBe("");
  }

  const NO_SPACE = /^regcli: error: cannot write .*: no space left on the device \(ENOSPC\)/;
  const READ_ONLY = /^regcli: error: cannot write .*: read-only file system \(EROFS\)/;

  it("pull into a store on a full disk: exit 6 naming the store, no partial or lock files, whatever space is left", async () => {
    // Each amount of free space (in 4 KiB pages) fails at another step: the ingest marker, a lock, index.json, a blob.
    for (const pagesFree of [0, 1, 2, 3, 4, 6, 16]) {
      await emptyFull();
      const home = join(full, "home");
      await mkdir(home);
      await writeFile(join(full, "filler"), Buffer.alloc(Math.max(0, 256 - pagesFree) * 4096));
      const r = await regcli(["pull", ref, "--progress", "plain"], { env: { REGCLI_HOME: home } });
      expectIoError(r, home, NO_SPACE);
      expect((await leftovers(home)).filter((f) => /\.partial$|\.lock$|\.tmp$|^ingest\/./.test(f))).toEqual([]);
      const images = await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: home } });
      expect(images.stdout.trim() === "" || JSON.parse(images.stdout).length === 0, images.stderr).toBe(true);
    }
  });

  it("pull -o FILE.tar, -o DIR and image save on a full disk never exit 0 and leave nothing that looks complete", async () => {
    for (const format of ["docker-archive", "oci-archive"]) {
      await emptyFull();
      const out = join(full, "out.tar");
      expectIoError(await regcli(["pull", ref, "-o", out, "--format", format, "--progress", "plain"]), out, NO_SPACE);
      expect(await leftovers(full)).toEqual([]);
    }
    await emptyFull();
    const layout = join(full, "layout");
    expectIoError(await regcli(["pull", ref, "-o", layout]), layout, NO_SPACE);
    expect(await leftovers(full)).toEqual([]);
    await emptyFull();
    const home = await tempDir("regcli-home-");
    ok(await regcli(["pull", ref], { env: { REGCLI_HOME: home } }));
    const saved = join(full, "saved.tar");
    expectIoError(await regcli(["image", "save", ref, "-o", saved], { env: { REGCLI_HOME: home } }), saved, NO_SPACE);
    expect(await leftovers(full)).toEqual([]);
  });

  it("export -o and blob -o on a full disk: exit 6 naming the output, no partial output", async () => {
    for (const output of [join(full, "rootfs.tar"), join(full, "rootfs")]) {
      await emptyFull();
      expectIoError(await regcli(["export", ref, "-o", output]), output, NO_SPACE);
      expect(await leftovers(full)).toEqual([]);
    }
    await emptyFull();
    await writeFile(join(full, "filler"), Buffer.alloc(512 * 1024));
    const blobFile = join(full, "layer.tar.gz");
    expectIoError(await regcli(["blob", `${reg.host}/disk/app@${image.layers[0]!.digest}`, "-o", blobFile]), blobFile, NO_SPACE);
    expect(await leftovers(full)).toEqual(["filler"]);
    await emptyFull();
  });

  it("a path through a regular file (ENOTDIR) or onto a directory (EISDIR): exit 6 naming it, not the cleanup's error", async () => {
    const dir = await tempDir();
    const file = join(dir, "a-file");
    await writeFile(file, "x");
    const NOT_DIR = /^regcli: error: cannot write .*: a part of the path is not a directory \(ENOTDIR\)/;
    expectIoError(await regcli(["pull", ref], { env: { REGCLI_HOME: file } }), file, NOT_DIR);
    for (const output of [join(file, "out.tar"), join(file, "layout")]) expectIoError(await regcli(["pull", ref, "-o", output]), output, NOT_DIR);
    expectIoError(await regcli(["export", ref, "-o", join(file, "rootfs.tar")]), join(file, "rootfs.tar"), NOT_DIR);
    expectIoError(await regcli(["blob", `${reg.host}/disk/app@${image.config.digest}`, "-o", dir]), dir, /it is a directory \(EISDIR\)/);
    expect(await readdir(dir)).toEqual(["a-file"]);
  });

  it("regcli serve on a full disk answers errors, logs one line, keeps running, keeps no temporary files", async () => {
    await emptyFull();
    const root = join(full, "registry");
    const port = await freePort();
    const server = spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "serve", "--addr", `127.0.0.1:${port}`, "--root", root], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    server.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    try {
      for (let i = 0; i < 100 && !log.includes("listening"); i++) await new Promise((r) => setTimeout(r, 50));
      const push = await regcli(["--retries", "1", "copy", ref, `127.0.0.1:${port}/disk/app:1`]);
      expect(push.code, push.stderr).toBe(5);
      expect(push.stderr).toMatch(/failed upload/);
      // 507 with the reason, not a 500 "internal error" that the client retries in vain.
      expect(push.stderr).toMatch(/storage is full \(no space left on its device\)/);
      expect(push.stderr).not.toMatch(/retrying|internal error/);
      expect(ok(await regcli(["ls", `127.0.0.1:${port}`])).code).toBe(0); // still serving
      expect(log).toMatch(new RegExp(`error: cannot write ${root}: no space left on the device`));
      expect(log).not.toMatch(/^\s+at /m);
      expect((await leftovers(root)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    } finally {
      server.kill("SIGKILL");
      await emptyFull();
    }
  });

  it("writes to a read-only file system: exit 6 naming the path, for every writer", async () => {
    const home = join(readOnly, "home");
    expectIoError(await regcli(["pull", ref], { env: { REGCLI_HOME: home } }), home, READ_ONLY);
    for (const [args, path] of [
      [["pull", ref, "-o", join(readOnly, "out.tar")], join(readOnly, "out.tar")],
      [["pull", ref, "-o", join(readOnly, "layout")], join(readOnly, "layout")],
      [["copy", ref, `oci:${join(readOnly, "copy")}:1`], join(readOnly, "copy")],
      [["export", ref, "-o", join(readOnly, "rootfs.tar")], join(readOnly, "rootfs.tar")],
      [["export", ref, "-o", join(readOnly, "rootfs")], join(readOnly, "rootfs")],
      [["blob", `${reg.host}/disk/app@${image.config.digest}`, "-o", join(readOnly, "config.json")], join(readOnly, "config.json")],
    ] as Array<[string[], string]>) {
      expectIoError(await regcli(args), path, READ_ONLY);
    }
  });
});
