// Flattening layers (OCI whiteouts) and extracting them without ever writing outside the target.
import { lstat, mkdtemp, readdir, readFile, readlink, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { catFile, exportToDirectory, exportToTar, type FlattenOptions, type LayerInput } from "../../src/oci/flatten.js";
import { RegcliError } from "../../src/errors.js";
import { compressor } from "../../src/oci/compress.js";

type Entry = {
  name: string;
  data?: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device";
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
};

async function layer(entries: Entry[], gzip = true): Promise<LayerInput> {
  const pack = tar.pack();
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? "file",
      linkname: e.linkname,
      mode: e.mode ?? (e.type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(0),
    };
    if ((e.type ?? "file") === "file") pack.entry(header, Buffer.from(e.data ?? ""));
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const bytes = gzip ? gzipSync(Buffer.concat(chunks)) : Buffer.concat(chunks);
  return { digest: `sha256:${"0".repeat(64)}`, mediaType: gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar", open: async () => Readable.from([bytes]) };
}

type TarEntry = { type: string; data: string; linkname?: string; mode?: number; uid?: number; order: number };

async function tarOf(layers: LayerInput[], options: FlattenOptions = {}): Promise<Map<string, TarEntry>> {
  const out = new PassThrough();
  const result = new Map<string, TarEntry>();
  const extract = tar.extract();
  extract.on("entry", (h, stream, next) => {
    let data = "";
    stream.on("data", (c) => void (data += (c as Buffer).toString()));
    stream.on("end", () => {
      result.set(h.name, { type: h.type ?? "file", data, linkname: h.linkname ?? undefined, mode: h.mode, uid: h.uid, order: result.size });
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  out.pipe(extract);
  await exportToTar(layers, out, options);
  await done;
  return result;
}

async function sandbox(): Promise<{ parent: string; dir: string }> {
  const parent = await mkdtemp(join(tmpdir(), "regcli-flatten-"));
  return { parent, dir: join(parent, "rootfs") };
}

describe("flattening", () => {
  it("upper layers replace files; whiteouts delete files and subtrees of lower layers", async () => {
    const base = await layer([
      { name: "etc/", type: "directory" },
      { name: "etc/os-release", data: "base" },
      { name: "etc/passwd", data: "root" },
      { name: "var/cache/", type: "directory" },
      { name: "var/cache/a", data: "a" },
      { name: "var/cache/sub/b", data: "b" },
    ]);
    const top = await layer([{ name: "etc/os-release", data: "top" }, { name: "etc/.wh.passwd" }, { name: "var/.wh.cache" }], false);
    const files = await tarOf([base, top]);
    expect(files.get("etc/os-release")?.data).toBe("top");
    expect(files.has("etc/passwd")).toBe(false);
    expect([...files.keys()].some((k) => k.startsWith("var/cache"))).toBe(false);
    expect([...files.keys()].some((k) => k.includes(".wh."))).toBe(false);
  });

  it("an opaque directory hides lower content but keeps its own layer's entries", async () => {
    const base = await layer([{ name: "app/old", data: "1" }, { name: "app/keep-not", data: "2" }, { name: "other", data: "3" }]);
    const top = await layer([{ name: "app/", type: "directory" }, { name: "app/.wh..wh..opq" }, { name: "app/new", data: "4" }]);
    const files = await tarOf([base, top]);
    expect(files.has("app/old")).toBe(false);
    expect(files.has("app/keep-not")).toBe(false);
    expect(files.get("app/new")?.data).toBe("4");
    expect(files.get("other")?.data).toBe("3");
  });

  it("a whiteout does not delete an entry of its own layer, and a file replacing a directory hides its children", async () => {
    const base = await layer([{ name: "d/child", data: "x" }]);
    const top = await layer([{ name: "d", data: "now a file" }]);
    const files = await tarOf([base, top]);
    expect(files.get("d")?.data).toBe("now a file");
    expect(files.has("d/child")).toBe(false);
  });

  it("accepts ./-prefixed names and keeps absolute symlinks", async () => {
    const files = await tarOf([await layer([{ name: "./usr/lib64/libc.so", data: "c" }, { name: "./lib64", type: "symlink", linkname: "/usr/lib64" }])]);
    expect(files.get("usr/lib64/libc.so")?.data).toBe("c");
    expect(files.get("lib64")).toMatchObject({ type: "symlink", linkname: "/usr/lib64" });
  });

  it("a directory an upper layer only implies keeps the mode and owner of the lower layer's entry", async () => {
    const base = await layer([
      { name: "tmp/", type: "directory", mode: 0o1777 },
      { name: "home/", type: "directory" },
      { name: "home/user/", type: "directory", mode: 0o700, uid: 1000, gid: 1000 },
    ]);
    const top = await layer([{ name: "tmp/x", data: "x" }, { name: "home/user/.profile", data: "p" }]);
    const files = await tarOf([base, top], { preservePermissions: true });
    expect(files.get("tmp/")).toMatchObject({ type: "directory", mode: 0o1777 });
    expect(files.get("home/user/")).toMatchObject({ type: "directory", mode: 0o700, uid: 1000 });
    expect(files.get("tmp/x")?.data).toBe("x");
    // A non-directory below an implied directory is still hidden: the directory wins.
    const hidden = await tarOf([await layer([{ name: "tmp", type: "symlink", linkname: "/var/tmp" }]), top]);
    expect(hidden.has("tmp")).toBe(false);
  });

  it("a hard link comes after its target in the tar even when a lower layer holds the target", async () => {
    const base = await layer([{ name: "usr/bin/perl", data: "perl" }]);
    const top = await layer([{ name: "usr/bin/perl5", type: "link", linkname: "usr/bin/perl" }, { name: "usr/bin/perl6", type: "link", linkname: "./usr/bin/perl5" }]);
    const files = await tarOf([base, top]);
    expect(files.get("usr/bin/perl5")).toMatchObject({ type: "link", linkname: "usr/bin/perl" });
    expect(files.get("usr/bin/perl5")!.order).toBeGreaterThan(files.get("usr/bin/perl")!.order);
    expect(files.get("usr/bin/perl6")!.order).toBeGreaterThan(files.get("usr/bin/perl5")!.order);
    const dangling = await tarOf([await layer([{ name: "a", type: "link", linkname: "nowhere" }])]).catch((e) => e);
    expect(dangling).toBeInstanceOf(RegcliError);
    expect((dangling as RegcliError).message).toMatch(/hardlink "a" points at "nowhere"/);
  });

  it("reads a zstd layer, found by its magic bytes", async () => {
    const plain = await layer([{ name: "etc/zstd", data: "z" }], false);
    const bytes = Buffer.concat(await (await plain.open()).pipe(await compressor("zstd")).toArray());
    const files = await tarOf([{ ...plain, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", open: async () => Readable.from([bytes]) }]);
    expect(files.get("etc/zstd")?.data).toBe("z");
  });

  it.each([
    ["an artifact's blob", "application/vnd.cncf.helm.chart.content.v1.tar+gzip", /not a filesystem layer/],
  ])("refuses %s as unsupported (exit 7) before writing anything", async (_name, mediaType, message) => {
    const good = await layer([{ name: "a", data: "a" }]);
    let opened = false;
    const odd: LayerInput = { ...good, mediaType, open: async () => ((opened = true), good.open()) };
    const err = await tarOf([odd, good]).catch((e) => e);
    expect(err).toBeInstanceOf(RegcliError);
    expect((err as RegcliError).exitCode).toBe(7);
    expect((err as RegcliError).message).toMatch(message);
    expect(opened).toBe(false);
  });

  it("an output that fails stops the export with its error (no hang); a walk error never reaches the output as one", async () => {
    const big = await layer(Array.from({ length: 100 }, (_, i) => ({ name: `f${i}`, data: "x".repeat(100_000) })));
    let writes = 0;
    const full = new Writable({ write: (_c, _e, cb) => cb(++writes > 5 ? Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }) : null) });
    await expect(exportToTar([big], full)).rejects.toThrow(/ENOSPC/);
    const out = new PassThrough();
    out.resume();
    const errors: Error[] = [];
    out.on("error", (e) => errors.push(e));
    await expect(exportToTar([await layer([{ name: "../x", data: "x" }])], out)).rejects.toThrow(/escapes the root/);
    expect(errors).toEqual([]);
  });

  it("strips setuid/setgid bits by default", async () => {
    const files = await tarOf([await layer([{ name: "bin/su", data: "x", mode: 0o4755 }])]);
    expect(files.get("bin/su")?.mode).toBe(0o755);
  });
});

describe("extraction into a directory", () => {
  it("extracts a flattened image, re-rooting absolute symlinks inside", async () => {
    const { dir } = await sandbox();
    const base = await layer([{ name: "usr/lib64/libc.so", data: "libc" }, { name: "lib64", type: "symlink", linkname: "/usr/lib64" }, { name: "etc/hostname", data: "old" }]);
    const top = await layer([{ name: "etc/hostname", data: "new" }, { name: "etc/hosts", type: "link", linkname: "etc/hostname" }]);
    await exportToDirectory([base, top], dir);
    expect(await readFile(join(dir, "etc/hostname"), "utf8")).toBe("new");
    expect(await readlink(join(dir, "lib64"))).toBe("/usr/lib64");
    expect((await stat(join(dir, "etc/hosts"))).ino).toBe((await stat(join(dir, "etc/hostname"))).ino);
  });

  const escapes: Array<[string, Entry[][]]> = [
    ["a ../ entry", [[{ name: "../evil", data: "x" }]]],
    ["a nested .. entry", [[{ name: "a/../../evil", data: "x" }]]],
    ["symlink then write through it", [[{ name: "evil", type: "symlink", linkname: ".." }, { name: "evil/evil", data: "x" }]]],
    ["a hardlink to a file outside", [[{ name: "passwd", type: "link", linkname: "../../etc/passwd" }]]],
    ["a hardlink through a symlink", [[{ name: "out", type: "symlink", linkname: "/etc" }, { name: "pw", type: "link", linkname: "out/passwd" }]]],
    ["a very long path", [[{ name: `${"a".repeat(200)}/`.repeat(25) + "f", data: "x" }]]],
  ];
  it.each(escapes)("refuses %s and writes nothing outside", async (_name, layers) => {
    const { parent, dir } = await sandbox();
    const before = (await readdir(parent)).sort();
    const err = await exportToDirectory(await Promise.all(layers.map((l) => layer(l))), dir).catch((e) => e);
    expect(err).toBeInstanceOf(RegcliError);
    expect((err as RegcliError).exitCode).toBe(5);
    expect((await readdir(parent)).filter((f) => f !== "rootfs").sort()).toEqual(before.filter((f) => f !== "rootfs"));
    expect(await lstat(join(parent, "evil")).catch(() => undefined)).toBeUndefined();
    expect(await lstat("/tmp/evil").catch(() => undefined)).toBeUndefined();
  });

  it("a symlink in a lower layer under an upper layer's directory stays inside (the directory wins)", async () => {
    const { dir } = await sandbox();
    await exportToDirectory([await layer([{ name: "evil", type: "symlink", linkname: "/tmp" }]), await layer([{ name: "evil/evil", data: "x" }])], dir);
    expect((await lstat(join(dir, "evil"))).isDirectory()).toBe(true);
    expect(await readFile(join(dir, "evil/evil"), "utf8")).toBe("x");
    expect(await lstat("/tmp/evil").catch(() => undefined)).toBeUndefined();
  });

  it.runIf(process.getuid?.() === 0)("creates device nodes and fifos with devices (as root)", async () => {
    const { dir } = await sandbox();
    const l = await layer([{ name: "dev/null", type: "character-device" }, { name: "run/fifo", type: "fifo" as never }]);
    const r = await exportToDirectory([l], dir, { devices: true });
    expect(r.skipped).toBe(0);
    expect((await lstat(join(dir, "dev/null"))).isCharacterDevice()).toBe(true);
    expect((await lstat(join(dir, "run/fifo"))).isFIFO()).toBe(true);
  });

  it.runIf(process.getuid?.() === 0)("keeps owners, set-id bits and mtimes (as root), directories' after their contents", async () => {
    const { dir } = await sandbox();
    const when = new Date("2023-11-14T22:13:20Z");
    const base = await layer([
      { name: "tmp/", type: "directory", mode: 0o1777, mtime: when },
      { name: "etc/", type: "directory", mtime: when },
      { name: "etc/shadow", data: "root:*:", mode: 0o640, gid: 42, mtime: when },
      { name: "usr/bin/chage", data: "elf", mode: 0o2755, gid: 42, mtime: when },
      { name: "home/user/", type: "directory", mode: 0o700, uid: 1000, gid: 1000, mtime: when },
      { name: "bin", type: "symlink", linkname: "usr/bin", mtime: when },
    ]);
    const top = await layer([{ name: "tmp/x", data: "x" }, { name: "home/user/.profile", data: "p", uid: 1000, gid: 1000 }, { name: "etc/gshadow", type: "link", linkname: "etc/shadow" }]);
    await exportToDirectory([base, top], dir, { preservePermissions: true });
    const meta = async (p: string) => {
      const s = await lstat(join(dir, p));
      return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: s.mtime.getTime() };
    };
    expect(await meta("tmp")).toEqual({ mode: 0o1777, uid: 0, gid: 0, mtime: when.getTime() });
    expect(await meta("home/user")).toEqual({ mode: 0o700, uid: 1000, gid: 1000, mtime: when.getTime() });
    expect(await meta("home/user/.profile")).toMatchObject({ uid: 1000, gid: 1000, mtime: 0 });
    expect(await meta("etc/shadow")).toEqual({ mode: 0o640, uid: 0, gid: 42, mtime: when.getTime() });
    expect(await meta("etc")).toMatchObject({ mtime: when.getTime() }); // after the hard link was made in it
    expect(await meta("usr/bin/chage")).toEqual({ mode: 0o2755, uid: 0, gid: 42, mtime: when.getTime() });
    expect(await meta("bin")).toMatchObject({ mtime: when.getTime() });
    // A setgid directory of an upper layer does not pass its bit to a directory a lower layer only implies under it.
    const { dir: second } = await sandbox();
    await exportToDirectory([await layer([{ name: "var/mail/sub/x", data: "x" }]), await layer([{ name: "var/mail/", type: "directory", mode: 0o2775, gid: 8 }])], second, { preservePermissions: true });
    expect((await lstat(join(second, "var/mail"))).mode & 0o7777).toBe(0o2775);
    expect((await lstat(join(second, "var/mail/sub"))).mode & 0o7777).toBe(0o755);
  });

  it("skips device nodes", async () => {
    const { dir } = await sandbox();
    const r = await exportToDirectory([await layer([{ name: "dev/null", type: "character-device" }, { name: "f", data: "x" }])], dir);
    expect(r.skipped).toBe(1);
    expect(await lstat(join(dir, "dev/null")).catch(() => undefined)).toBeUndefined();
  });
});

describe("cat", () => {
  async function catText(layers: LayerInput[], path: string): Promise<string> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    await catFile(layers, path, out);
    return Buffer.concat(chunks).toString();
  }

  it("prints the topmost version, follows symlinks inside the image, honours whiteouts", async () => {
    const base = await layer([{ name: "etc/os-release", data: "base" }, { name: "etc/gone", data: "x" }, { name: "usr/lib/os-release", data: "real" }]);
    const top = await layer([{ name: "etc/os-release", data: "top" }, { name: "etc/.wh.gone" }, { name: "etc/link", type: "symlink", linkname: "../usr/lib/os-release" }, { name: "abs", type: "symlink", linkname: "/usr/lib/os-release" }]);
    expect(await catText([base, top], "/etc/os-release")).toBe("top");
    expect(await catText([base, top], "etc/link")).toBe("real");
    expect(await catText([base, top], "/abs")).toBe("real");
    await expect(catText([base, top], "/etc/gone")).rejects.toThrow(/no file \/etc\/gone/);
    await expect(catText([base, top], "/etc")).rejects.toThrow(/is a directory/);
  });

  it("resolves every component like the kernel in a chroot: symlinked directories, absolute targets, .. clamped", async () => {
    const base = await layer([
      { name: "usr/bin/bash", data: "bash" },
      { name: "usr/lib/x86_64-linux-gnu/ld.so", data: "ld" },
      { name: "usr/lib64/ld.so", type: "symlink", linkname: "/lib/x86_64-linux-gnu/ld.so" },
      { name: "usr/etc/conf", data: "usr/etc" },
      { name: "etc/conf", data: "etc" },
      { name: "bin", type: "symlink", linkname: "usr/bin" },
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "lib64", type: "symlink", linkname: "usr/lib64" },
      { name: "etc/alternatives/sh", type: "symlink", linkname: "/bin/bash" },
      { name: "loop/a", type: "symlink", linkname: "b" },
      { name: "loop/b", type: "symlink", linkname: "a" },
      { name: "usr/bin/hard", type: "link", linkname: "usr/lib/x86_64-linux-gnu/ld.so" },
    ]);
    const top = await layer([{ name: "usr/bin/bash", data: "new bash" }]);
    const layers = [base, top];
    expect(await catText(layers, "/bin/bash")).toBe("new bash");
    expect(await catText(layers, "/lib64/ld.so")).toBe("ld"); // through lib64, then an absolute link through lib
    expect(await catText(layers, "/etc/alternatives/sh")).toBe("new bash");
    expect(await catText(layers, "/../../bin/../etc/conf")).toBe("usr/etc"); // bin/.. is usr, not the root
    expect(await catText(layers, "/bin/hard")).toBe("ld");
    await expect(catText(layers, "/loop/a")).rejects.toThrow(/too many levels of symbolic links resolving \/loop\/a/);
    await expect(catText(layers, "/bin/bash/x")).rejects.toThrow(/no file \/bin\/bash\/x in the image \(\/usr\/bin\/bash is not a directory\)/);
    await expect(catText(layers, "/bin/nope")).rejects.toThrow(/no file \/bin\/nope in the image/);
  });
});
