// export and cat on a real Debian bookworm rootfs (mmdebstrap), compared with `tar -x` of regcli's own tar export
// and with umoci's unpack: every path, type, mode, owner, mtime, link target and content. Runs as root.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, link, lstat, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, tempDir, type CliResult } from "../helpers/cli.js";
import { sha256 } from "../helpers/images.js";
import { differences, fileDigest, snapshot, type Node } from "../helpers/tree.js";
import tar from "tar-stream";

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;
const EPOCH = "1700000000";
const MMDEBSTRAP = ["--variant=minbase", "--mode=root", "bookworm"];
const LAYER = "application/vnd.oci.image.layer.v1.tar";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}


/** The rootfs tarball, built once and cached under a path keyed by the command that makes it. */
async function debianRootfs(): Promise<string> {
  const command = `SOURCE_DATE_EPOCH=${EPOCH} mmdebstrap ${MMDEBSTRAP.join(" ")}`;
  const key = createHash("sha256").update(command).digest("hex").slice(0, 16);
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "regcli-test", `debian-${key}`);
  const file = join(dir, "rootfs.tar");
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  const partial = join(dir, `rootfs.${process.pid}.tar`); // mmdebstrap picks the format from the extension
  await run("mmdebstrap", [...MMDEBSTRAP, partial], { env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH }, maxBuffer: 64 << 20 });
  await rename(partial, file);
  return file;
}

type Entry = { name: string; type?: "file" | "directory" | "link"; data?: string; linkname?: string; mode?: number; uid?: number; gid?: number };

/**
 * An upper layer that only implies /tmp and /root (no entries for them), adds a hard link to a file of the
 * Debian layer, and a setuid file of a non-root owner.
 */
async function upperLayer(): Promise<Buffer> {
  const entries: Entry[] = [
    { name: "tmp/upper", data: "in /tmp\n" },
    { name: "root/.upper", data: "secret\n", mode: 0o600 },
    { name: "usr/bin/chage-link", type: "link", linkname: "usr/bin/chage" },
    { name: "opt/app/", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
    { name: "opt/app/run", data: "#!/bin/sh\n", mode: 0o4755, uid: 1000, gid: 1000 },
  ];
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = { name: e.name, type, linkname: e.linkname, mode: e.mode ?? (type === "directory" ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date(1_700_001_234_000) };
    if (type === "file") pack.entry(header, Buffer.from(e.data ?? ""));
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An OCI layout holding the Debian tarball as its (uncompressed) base layer and `upper` above it. */
async function debianLayout(rootfs: string, upper: Buffer): Promise<string> {
  const dir = await tempDir("regcli-debian-oci-");
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer) => {
    const digest = sha256(data);
    await writeFile(join(blobs, digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const base = { digest: await fileDigest(rootfs), size: (await lstat(rootfs)).size };
  await link(rootfs, join(blobs, base.digest.slice(7))).catch(() => copyFile(rootfs, join(blobs, base.digest.slice(7))));
  const top = await put(upper);
  const config = await put(
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["bash"] }, rootfs: { type: "layers", diff_ids: [base.digest, top.digest] } })),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [base, top].map((l) => ({ mediaType: LAYER, ...l })),
      }),
    ),
  );
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "debian" } }],
    }),
  );
  return dir;
}

describe.runIf(asRoot)("export and cat of a Debian bookworm rootfs (as root)", () => {
  let layout: string;
  let work: string;
  let exported: Map<string, Node>;
  const image = () => `oci:${layout}:debian`;

  beforeAll(async () => {
    layout = await debianLayout(await debianRootfs(), await upperLayer());
    work = await tempDir("regcli-debian-");
    ok(await regcli(["export", image(), "-o", `${join(work, "dir")}/`, "--preserve-permissions", "--devices"], { timeoutMs: 300_000 }));
    exported = await snapshot(join(work, "dir"));
  }, 900_000);
  // About 700 MB of trees: not left for the end of the process.
  afterAll(async () => {
    for (const dir of [work, layout]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the directory export keeps owners, set-id bits, modes of implied directories and mtimes", () => {
    expect(exported.size).toBeGreaterThan(8000);
    expect(exported.get("usr/bin/chage")).toMatchObject({ type: "file", mode: 0o2755, uid: 0, gid: 42, mtime: Number(EPOCH) });
    expect(exported.get("etc/shadow")).toMatchObject({ type: "file", mode: 0o640, uid: 0, gid: 42, mtime: Number(EPOCH) });
    expect(exported.get("tmp")).toMatchObject({ type: "dir", mode: 0o1777 });
    expect(exported.get("root")).toMatchObject({ type: "dir", mode: 0o700 });
    expect(exported.get("usr/bin")).toMatchObject({ type: "dir", mtime: Number(EPOCH) }); // set after its contents
    expect(exported.get("tmp/upper")).toMatchObject({ type: "file", mtime: 1_700_001_234 });
    expect(exported.get("opt/app")).toMatchObject({ type: "dir", mode: 0o750, uid: 1000, gid: 1000 });
    expect(exported.get("opt/app/run")).toMatchObject({ mode: 0o4755, uid: 1000, gid: 1000 });
    expect(exported.get("usr/bin/chage-link")?.links).toBe("usr/bin/chage usr/bin/chage-link");
    expect(exported.get("bin")).toMatchObject({ type: "symlink", target: "usr/bin" });
    expect(exported.get("dev/null")).toMatchObject({ type: "chr", mode: 0o666 });
  });

  it("equals `tar -x --numeric-owner -p` of the tar export, path for path", async () => {
    const tarFile = join(work, "rootfs.tar");
    ok(await regcli(["export", image(), "-o", tarFile, "--preserve-permissions", "--devices"], { timeoutMs: 300_000 }));
    const extracted = join(work, "tar-x");
    await mkdir(extracted);
    await run("tar", ["-x", "--numeric-owner", "-p", "-f", tarFile, "-C", extracted]);
    expect(differences(exported, await snapshot(extracted))).toEqual([]);
  }, 300_000);

  it("equals umoci's unpack of the same image", async () => {
    const bundle = join(work, "umoci");
    await run("umoci", ["unpack", "--image", image().slice(4), bundle], { maxBuffer: 64 << 20 });
    expect(differences(exported, await snapshot(join(bundle, "rootfs")))).toEqual([]);
  }, 300_000);

  it("cat resolves symlinked directories on the way: /bin/bash, /lib64/ld-linux-x86-64.so.2", async () => {
    const bash = ok(await regcli(["cat", image(), "/bin/bash"], { timeoutMs: 300_000 })).stdoutBuffer;
    expect(sha256(bash)).toBe(exported.get("usr/bin/bash")!.content);
    // lib64 -> usr/lib64, whose ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/..., and lib -> usr/lib.
    const ld = ok(await regcli(["cat", image(), "/lib64/ld-linux-x86-64.so.2"], { timeoutMs: 300_000 })).stdoutBuffer;
    expect(sha256(ld)).toBe(exported.get("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")!.content);
  }, 600_000);
});
