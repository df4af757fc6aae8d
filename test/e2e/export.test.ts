// export and cat through the CLI, from a real registry, the local store and an archive.
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, tempDir, type CliResult } from "../helpers/cli.js";
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

/** Push an image whose layers are these tars (gzip), with a real config. */
async function pushLayers(reg: TestRegistry, repo: string, tag: string, tars: Buffer[]): Promise<void> {
  const layers = tars.map((t) => gzipSync(t));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: tars.map(sha256) } }));
  for (const data of [config, ...layers]) await pushBlob(reg, repo, { digest: sha256(data), data });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })),
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

  it("export -o rootfs.tar and -o DIR apply whiteouts, keep absolute symlinks inside, strip setuid", async () => {
    const dir = await tempDir();
    const tarFile = join(dir, "rootfs.tar");
    ok(await cli(["export", `${reg.host}/fs/app:1`, "-o", tarFile]));
    const entries = new Map<string, string>();
    const extract = tar.extract();
    extract.on("entry", (h, stream, next) => {
      let data = "";
      stream.on("data", (c: Buffer) => (data += c.toString()));
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
