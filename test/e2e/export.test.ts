// export and cat through the CLI, from a real registry, the local store and an archive.
import { execFile } from "node:child_process";
import { chmod, copyFile, lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir, type CliResult } from "../helpers/cli.js";
import { makeTar, pushBlob, pushManifest, sha256 } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { gzipSync } from "node:zlib";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

const run = promisify(execFile);

/** Push an image whose layers are these tars (gzip unless other layer blobs and their media type are given), with a real config. */
async function pushLayers(reg: TestRegistry, repo: string, tag: string, tars: Buffer[], blobs?: { layers: Buffer[]; mediaType: string }): Promise<void> {
  const layers = blobs?.layers ?? tars.map((t) => gzipSync(t));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: tars.map(sha256) } }));
  for (const data of [config, ...layers]) await pushBlob(reg, repo, { digest: sha256(data), data });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: blobs?.mediaType ?? "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
    }),
  );
  await pushManifest(reg, repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
}

describe("export and cat", () => {
  let reg: TestRegistry;
  let home: string;
  const cli = (args: string[]) => regcli(args, { env: { REGCLI_HOME: home } });

  beforeAll(async () => {
    reg = await startRegistry("open");
    home = await tempDir("regcli-home-");
    await pushLayers(reg, "fs/app", "1", [
      await makeTar([
        { name: "etc/", type: "directory" },
        { name: "etc/os-release", data: "NAME=base\n" },
        { name: "etc/motd", data: "hello\n" },
        { name: "usr/lib64/libc.so", data: "libc" },
        { name: "lib64", type: "symlink", linkname: "/usr/lib64" },
        { name: "bin/su", data: "su", mode: 0o4755 },
      ]),
      await makeTar([{ name: "etc/os-release", data: "NAME=top\n" }, { name: "etc/.wh.motd" }]),
    ]);
  });
  afterAll(async () => reg?.stop());

  it("cat prints the topmost version of a file", async () => {
    expect(ok(await cli(["cat", `${reg.host}/fs/app:1`, "/etc/os-release"])).stdout).toBe("NAME=top\n");
    const gone = await cli(["cat", `${reg.host}/fs/app:1`, "/etc/motd"]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/no file \/etc\/motd/);
  });

  it("export without -o writes the whole tar to a piped stdout and exits 0", async () => {
    const r = ok(await cli(["export", `${reg.host}/fs/app:1`]));
    const names: string[] = [];
    const extract = tar.extract();
    extract.on("entry", (h, stream, next) => {
      names.push(h.name);
      stream.resume();
      stream.on("end", next);
    });
    extract.end(r.stdoutBuffer);
    await new Promise<void>((resolve, reject) => extract.on("finish", resolve).on("error", reject));
    expect(names).toContain("etc/os-release");
    expect(names).not.toContain("etc/motd");
    expect(r.stdoutBuffer.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
  });

  it("export -o rootfs.tar and -o DIR apply whiteouts, keep absolute symlinks inside, strip setuid", async () => {
    const dir = await tempDir();
    const tarFile = join(dir, "rootfs.tar");
    ok(await cli(["export", `${reg.host}/fs/app:1`, "-o", tarFile]));
    const entries = new Map<string, string>();
    const extract = tar.extract();
    extract.on("entry", (h, stream, next) => {
      let data = "";
      stream.on("data", (c) => void (data += (c as Buffer).toString()));
      stream.on("end", () => {
        entries.set(h.name, h.type === "symlink" ? `-> ${h.linkname}` : data);
        next();
      });
    });
    await pipeline(createReadStream(tarFile), extract);
    expect(entries.get("etc/os-release")).toBe("NAME=top\n");
    expect(entries.get("lib64")).toBe("-> /usr/lib64");
    expect(entries.has("etc/motd")).toBe(false);
    expect([...entries.keys()].filter((k) => k.includes(".wh."))).toEqual([]);
    const rootfs = join(dir, "rootfs");
    ok(await cli(["export", `${reg.host}/fs/app:1`, "-o", `${rootfs}/`]));
    expect(await readFile(join(rootfs, "etc/os-release"), "utf8")).toBe("NAME=top\n");
    expect(await lstat(join(rootfs, "etc/motd")).catch(() => undefined)).toBeUndefined();
    expect(await readlink(join(rootfs, "lib64"))).toBe("/usr/lib64");
    expect((await lstat(join(rootfs, "bin/su"))).mode & 0o7777).toBe(0o755);
    expect((await readdir(dir)).sort()).toEqual(["rootfs", "rootfs.tar"]);
  });

  it("cat follows a symlinked directory in the middle of the path", async () => {
    expect(ok(await cli(["cat", `${reg.host}/fs/app:1`, "/lib64/libc.so"])).stdout).toBe("libc"); // lib64 -> /usr/lib64
  });

  it("directories an upper layer only implies keep their lower entry; tar -x accepts a hard link to a lower layer's file", async () => {
    await pushLayers(reg, "fs/implied", "1", [
      await makeTar([
        { name: "tmp/", type: "directory", mode: 0o1777 },
        { name: "root/", type: "directory", mode: 0o700 },
        { name: "usr/bin/perl", data: "perl" },
      ]),
      await makeTar([
        { name: "tmp/x", data: "x" },
        { name: "root/.profile", data: "p" },
        { name: "usr/bin/perl5.36", type: "link", linkname: "usr/bin/perl" },
      ]),
    ]);
    const dir = await tempDir();
    ok(await cli(["export", `${reg.host}/fs/implied:1`, "-o", join(dir, "rootfs.tar"), "--preserve-permissions"]));
    await mkdir(join(dir, "x"));
    await run("tar", ["-x", "-p", "-f", join(dir, "rootfs.tar"), "-C", join(dir, "x")]);
    ok(await cli(["export", `${reg.host}/fs/implied:1`, "-o", `${join(dir, "d")}/`, "--preserve-permissions"]));
    for (const root of ["x", "d"]) {
      expect((await lstat(join(dir, root, "tmp"))).mode & 0o7777).toBe(0o1777);
      expect((await lstat(join(dir, root, "root"))).mode & 0o7777).toBe(0o700);
      expect((await stat(join(dir, root, "usr/bin/perl5.36"))).ino).toBe((await stat(join(dir, root, "usr/bin/perl"))).ino);
    }
  });

  it("reads zstd layers (made by the zstd tool); unknown layer media types are unsupported (exit 7); inspect shows each layer's media type", async () => {
    const layer = await makeTar([{ name: "etc/os-release", data: "NAME=zstd\n" }]);
    const dir = await tempDir();
    await writeFile(join(dir, "layer.tar"), layer);
    await run("zstd", ["-q", join(dir, "layer.tar")]);
    const zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    await pushLayers(reg, "fs/zstd", "1", [layer], { layers: [await readFile(join(dir, "layer.tar.zst"))], mediaType: zstd });
    await pushLayers(reg, "fs/helm", "1", [layer], { layers: [gzipSync(layer)], mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip" });
    expect(ok(await cli(["cat", `${reg.host}/fs/zstd:1`, "/etc/os-release"])).stdout).toBe("NAME=zstd\n");
    ok(await cli(["export", `${reg.host}/fs/zstd:1`, "-o", join(dir, "out/")]));
    expect(await readFile(join(dir, "out/etc/os-release"), "utf8")).toBe("NAME=zstd\n");
    const helm = await cli(["export", `${reg.host}/fs/helm:1`]);
    expect(helm.code, helm.stderr).toBe(7);
    expect(helm.stderr).toMatch(/application\/vnd\.cncf\.helm\.chart\.content\.v1\.tar\+gzip, which is not a filesystem layer/);
    expect(await readdir(dir)).toEqual(["layer.tar", "layer.tar.zst", "out"]);
    expect(ok(await cli(["inspect", `${reg.host}/fs/zstd:1`])).stdout).toContain(zstd);
    const json = JSON.parse(ok(await cli(["inspect", `${reg.host}/fs/zstd:1`, "--format", "json"])).stdout);
    expect(json.image.layers).toEqual([expect.objectContaining({ mediaType: zstd, compression: "zstd" })]);
  });

  it("a layer that is not a tar (plain, gzipped or zstd garbage) is a registry content error (exit 5), not a bug", async () => {
    const garbage = Buffer.alloc(4096, "not a tar archive, just text. ");
    const zstdGarbage = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), garbage]);
    await pushLayers(reg, "fs/garbage-zst", "1", [garbage], { layers: [zstdGarbage], mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" });
    await pushLayers(reg, "fs/garbage", "1", [garbage], { layers: [garbage], mediaType: "application/vnd.oci.image.layer.v1.tar" });
    await pushLayers(reg, "fs/garbage-gz", "1", [garbage], { layers: [gzipSync(garbage)], mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" });
    const dir = await tempDir();
    for (const repo of ["fs/garbage", "fs/garbage-gz", "fs/garbage-zst"]) {
      for (const args of [["export", `${reg.host}/${repo}:1`, "-o", join(dir, "out.tar")], ["cat", `${reg.host}/${repo}:1`, "/etc/os-release"]]) {
        const r = await cli(args);
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(5);
        expect(r.stderr).toMatch(/regcli: error: layer sha256:[0-9a-f]{64} is not a valid ((gzip|zstd)-compressed )?tar/);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
      }
    }
    expect(await readdir(dir)).toEqual([]);
  });

  /** A directory where uid 65534 runs a copy of the built CLI (readable by that user wherever the checkout is). */
  async function asNobody(): Promise<{ dir: string; run: (args: string[]) => Promise<{ stdout: string; stderr: string }> }> {
    const dir = await tempDir();
    await chmod(dir, 0o777);
    await mkdir(join(dir, "app/bin"), { recursive: true });
    await mkdir(join(dir, "app/dist"));
    for (const f of ["package.json", "bin/regcli.cjs", "dist/regcli.cjs"]) await copyFile(join(repoRoot, f), join(dir, "app", f));
    await copyFile(join(repoRoot, "dist/regcli.cjs.v8cache"), join(dir, "app/dist/regcli.cjs.v8cache")).catch(() => undefined); // optional
    const nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    const env = { ...process.env, HOME: dir, REGCLI_HOME: join(dir, "home"), REGCLI_CONFIG: join(dir, "config.json"), DOCKER_CONFIG: join(dir, "docker"), NO_COLOR: "1" };
    return { dir, run: (args) => run("setpriv", [...nobody, process.execPath, join(dir, "app/bin/regcli.cjs"), ...args], { env }) };
  }

  it.runIf(process.getuid?.() === 0)("as a user who is not root, set-id bits are dropped even with --preserve-permissions (the owner could not be kept)", async () => {
    const { dir, run: nobody } = await asNobody();
    await nobody(["export", `${reg.host}/fs/app:1`, "-o", `${join(dir, "rootfs")}/`, "--preserve-permissions"]);
    const su = await lstat(join(dir, "rootfs/bin/su"));
    expect(su.uid).toBe(65534);
    expect(su.mode & 0o7777).toBe(0o755);
  });

  it.runIf(process.getuid?.() === 0)("export, blob -o and copy to an archive: a source blob that cannot be read is named as such, not as the output", async () => {
    const { dir, run: nobody } = await asNobody();
    const layout = join(dir, "layout");
    ok(await cli(["copy", `${reg.host}/fs/app:1`, `oci:${layout}:1`]));
    await run("chmod", ["-R", "a+rX", layout]);
    const manifest = JSON.parse(ok(await cli(["manifest", `oci:${layout}:1`])).stdout) as { layers: Array<{ digest: string }> };
    const blob = join(layout, "blobs/sha256", manifest.layers[0]!.digest.slice(7));
    await chmod(blob, 0o600); // root's: unreadable for uid 65534
    const out = join(dir, "out.tar");
    for (const args of [
      ["export", `oci:${layout}:1`, "-o", out],
      ["blob", `oci:${layout}@${manifest.layers[0]!.digest}`, "-o", out],
      ["copy", `oci:${layout}:1`, `docker-archive:${out}`],
    ]) {
      const r = await nobody(args).then(() => ({ code: 0, stderr: "" }), (e: { code: number; stderr: string }) => e);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(6);
      expect(r.stderr).toContain(blob);
      expect(r.stderr).not.toContain(out);
      expect((await readdir(dir)).filter((n) => n.startsWith("out.tar"))).toEqual([]);
    }
  });

  it("exports from the local store without the registry", async () => {
    ok(await cli(["pull", `${reg.host}/fs/app:1`]));
    await reg.stop();
    try {
      expect(ok(await cli(["cat", `${reg.host}/fs/app:1`, "etc/os-release"])).stdout).toBe("NAME=top\n");
    } finally {
      reg = await startRegistry("open");
    }
  });

  it("a layer escaping the root is refused and leaves no output behind", async () => {
    const evilReg = reg;
    await pushLayers(evilReg, "fs/evil", "1", [await makeTar([{ name: "../../escape", data: "x" }])]);
    const dir = await tempDir();
    const r = await cli(["export", `${evilReg.host}/fs/evil:1`, "-o", join(dir, "out/")]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/escapes the root/);
    expect(await readdir(dir)).toEqual([]);
  });
});
