import { constants as fsConstants, createWriteStream } from "node:fs";
import { chmod, link, lstat, mkdir, rm, symlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { RegcliError } from "../errors.js";
import { childProcess } from "../util/builtins.js";

export interface LayerInput {
  digest: string;
  mediaType: string;
  /** The layer's bytes as stored (gzip or plain tar), verified by the caller's stream. */
  open(): Promise<Readable>;
}

export interface FlattenOptions {
  /** Keep setuid/setgid/sticky bits (default: stripped). */
  preservePermissions?: boolean;
  /** Create device nodes and fifos (directory output needs root); skipped by default. */
  devices?: boolean;
}

const SPECIAL_TYPES = new Set(["block-device", "character-device", "fifo"]);

type Header = tar.Header;

const MAX_PATH_BYTES = 4096;
const MAX_COMPONENT_BYTES = 255;
const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/** Entry names as paths relative to the root: "./a/b/" -> "a/b"; ".." anywhere is refused. */
export function normalizeEntryName(name: string, where: string): string {
  const clean = name.replace(/^(\.?\/)+/, "").replace(/\/+$/, "").replace(/\/\.\//g, "/").replace(/\/{2,}/g, "/");
  if (clean === "" || clean === ".") return "";
  const parts = clean.split("/");
  if (parts.includes("..")) throw new RegcliError("integrity", `layer ${where} has an entry that escapes the root: "${name.slice(0, 200)}"`);
  if (Buffer.byteLength(clean) > MAX_PATH_BYTES || parts.some((p) => Buffer.byteLength(p) > MAX_COMPONENT_BYTES)) {
    throw new RegcliError("integrity", `layer ${where} has an entry whose path is too long (${Buffer.byteLength(clean)} bytes)`);
  }
  return clean;
}

function ancestors(path: string): string[] {
  const parts = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

async function layerEntries(layer: LayerInput, onEntry: (header: Header, stream: Readable) => Promise<void>): Promise<void> {
  if (layer.mediaType.includes("zstd")) throw new RegcliError("general", `layer ${layer.digest} is zstd-compressed, which is not supported yet`);
  const raw = await layer.open();
  // Peek at the first bytes: gzip is recognised by its magic number whatever the media type says.
  const first: Buffer = await new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = raw.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      raw.off("readable", onReadable);
      raw.off("end", onEnd);
      raw.off("error", onError);
    };
    raw.on("readable", onReadable);
    raw.on("end", onEnd);
    raw.on("error", onError);
  });
  const gzip = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b;
  const body = new PassThrough();
  body.write(first);
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    onEntry(header, stream as unknown as Readable).then(
      () => {
        (stream as unknown as Readable).resume();
        next();
      },
      (err) => extract.destroy(err),
    );
  });
  // One pipeline from the download on: a failure anywhere (the output's disk full) ends the download too.
  await (gzip ? pipeline(raw, body, createGunzip(), extract) : pipeline(raw, body, extract));
}

/**
 * Walk the flattened filesystem: layers from the top down, each path reported once (by the highest layer that
 * has it), honouring `.wh.NAME` deletions and `.wh..wh..opq` opaque directories against lower layers only.
 * Memory grows with the number of paths, never with file sizes.
 */
export async function walkFlattened(
  layers: LayerInput[],
  visit: (path: string, header: Header, stream: Readable, layer: LayerInput) => Promise<void | "stop">,
): Promise<void> {
  const seen = new Set<string>(); // decided by a higher layer
  const dirs = new Set<string>(); // known to be directories in the result
  const deleted = new Set<string>();
  const opaque = new Set<string>();
  let stopped = false;
  for (let i = layers.length - 1; i >= 0 && !stopped; i--) {
    const layer = layers[i]!;
    const pendingDeleted: string[] = [];
    const pendingOpaque: string[] = [];
    const layerSymlinks = new Set<string>();
    await layerEntries(layer, async (header, stream) => {
      if (stopped) return;
      const path = normalizeEntryName(header.name, layer.digest);
      if (path === "") return;
      const base = posix.basename(path);
      const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
      if (base === OPAQUE) {
        pendingOpaque.push(dir);
        return;
      }
      if (base.startsWith(WHITEOUT)) {
        pendingDeleted.push(dir ? `${dir}/${base.slice(WHITEOUT.length)}` : base.slice(WHITEOUT.length));
        return;
      }
      for (const a of ancestors(path)) {
        if (layerSymlinks.has(a)) {
          throw new RegcliError("integrity", `layer ${layer.digest} writes "${path}" through its own symlink "${a}"`);
        }
      }
      if (header.type === "symlink") layerSymlinks.add(path);
      if (seen.has(path) || deleted.has(path)) return;
      for (const a of ancestors(path)) {
        if (deleted.has(a) || opaque.has(a)) return;
        if (seen.has(a) && !dirs.has(a)) return; // a higher layer made the parent a non-directory
      }
      if (opaque.has(path) && header.type !== "directory") return;
      seen.add(path);
      if (header.type === "directory") dirs.add(path);
      for (const a of ancestors(path)) {
        if (!seen.has(a)) {
          seen.add(a);
          dirs.add(a);
        }
      }
      if ((await visit(path, { ...header, name: path }, stream, layer)) === "stop") stopped = true;
    });
    for (const d of pendingDeleted) deleted.add(d);
    for (const o of pendingOpaque) if (o) opaque.add(o);
    if (pendingOpaque.includes("")) break; // an opaque root hides every lower layer
  }
}

function cleanMode(mode: number | undefined, options: FlattenOptions): number | undefined {
  if (mode === undefined) return undefined;
  return options.preservePermissions ? mode & 0o7777 : mode & 0o777;
}

/** The flattened filesystem as one tar stream (like `crane export`). */
export async function exportToTar(layers: LayerInput[], out: Writable, options: FlattenOptions = {}): Promise<{ entries: number }> {
  const pack = tar.pack();
  const done = pipeline(pack, out);
  // An output that fails (disk full) destroys the pack: end then, not wait for an entry that never finishes.
  const failed = done.then(() => new Promise<never>(() => undefined));
  failed.catch(() => undefined);
  let entries = 0;
  try {
    await walkFlattened(layers, async (path, header, stream) => {
      if (SPECIAL_TYPES.has(header.type ?? "") && !options.devices) return;
      const name = header.type === "directory" ? `${path}/` : path;
      const linkname = header.type === "link" && header.linkname ? normalizeEntryName(header.linkname, "link") : header.linkname;
      const h = { ...header, name, linkname, mode: cleanMode(header.mode, options) };
      const written = new Promise<void>((resolve, reject) => {
        const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
        if (header.type === "file" || header.type === "contiguous-file") pipeline(stream, sink as unknown as Writable).catch(reject);
        else (sink as unknown as Writable).end();
      });
      await Promise.race([written, failed]);
      entries++;
    });
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    // The pipeline settles with the first failure: the output's own (disk full) rather than what it caused.
    throw await done.then(() => err, (first: unknown) => first);
  }
  return { entries };
}

async function assertNoSymlinkOnTheWay(root: string, path: string): Promise<void> {
  let current = root;
  for (const part of path.split("/").slice(0, -1)) {
    current = join(current, part);
    let s;
    try {
      s = await lstat(current);
    } catch {
      await mkdir(current, { mode: 0o755 });
      continue;
    }
    if (s.isSymbolicLink()) throw new RegcliError("integrity", `refusing to write "${path}" through the symlink "${current.slice(root.length + 1)}"`);
    if (!s.isDirectory()) throw new RegcliError("integrity", `refusing to write "${path}": "${current.slice(root.length + 1)}" is not a directory`);
  }
}

/**
 * Extract the flattened filesystem into `dir`, never writing outside it: no writes through symlinks,
 * hardlinks only to regular files inside, device nodes skipped, setuid/setgid bits stripped by default.
 */
export async function exportToDirectory(layers: LayerInput[], dir: string, options: FlattenOptions = {}): Promise<{ entries: number; skipped: number }> {
  await mkdir(dir, { recursive: true });
  let entries = 0;
  let skipped = 0;
  const hardlinks: Array<{ path: string; target: string }> = [];
  await walkFlattened(layers, async (path, header, stream) => {
    const target = join(dir, path);
    await assertNoSymlinkOnTheWay(dir, path);
    const existing = await lstat(target).catch(() => undefined);
    const mode = cleanMode(header.mode, options);
    switch (header.type) {
      case "directory":
        if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
        await mkdir(target, { recursive: true });
        if (mode !== undefined) await chmod(target, mode | 0o700);
        break;
      case "file":
      case "contiguous-file": {
        if (existing) await rm(target, { recursive: true, force: true });
        // O_EXCL | O_NOFOLLOW: never open through a link that appeared in the meantime.
        const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
        await pipeline(stream, createWriteStream(target, { flags: flags as unknown as string, mode: mode ?? 0o644 }));
        if (mode !== undefined) await chmod(target, mode);
        break;
      }
      case "symlink":
        if (existing) await rm(target, { recursive: true, force: true });
        await symlink(header.linkname ?? "", target);
        break;
      case "link":
        hardlinks.push({ path, target: normalizeEntryName(header.linkname ?? "", `hardlink ${path}`) });
        return;
      case "block-device":
      case "character-device":
      case "fifo":
        if (!options.devices || process.getuid?.() !== 0) {
          skipped++;
          return;
        }
        if (existing) await rm(target, { recursive: true, force: true });
        await makeNode(target, header);
        if (mode !== undefined) await chmod(target, mode);
        break;
      default:
        skipped++; // unknown types are never created
        return;
    }
    entries++;
  });
  for (const h of hardlinks) {
    if (!h.target) throw new RegcliError("integrity", `hardlink "${h.path}" points at the root`);
    await assertNoSymlinkOnTheWay(dir, h.target);
    const s = await lstat(join(dir, h.target)).catch(() => undefined);
    if (!s || !s.isFile()) throw new RegcliError("integrity", `hardlink "${h.path}" points at "${h.target}", which is not a regular file in the image`);
    await assertNoSymlinkOnTheWay(dir, h.path);
    await rm(join(dir, h.path), { force: true });
    await link(join(dir, h.target), join(dir, h.path));
    entries++;
  }
  return { entries, skipped };
}

/** Node has no mknod(2): the coreutils program makes device nodes and fifos (root only). */
async function makeNode(target: string, header: Header): Promise<void> {
  const kind = header.type === "fifo" ? ["p"] : [header.type === "block-device" ? "b" : "c", String(header.devmajor ?? 0), String(header.devminor ?? 0)];
  const { execFile } = childProcess();
  await new Promise<void>((resolve, reject) =>
    execFile("mknod", [target, ...kind], (err) => (err ? reject(new RegcliError("general", `cannot create device node ${target}: ${err.message}`)) : resolve())),
  );
}

/** Where a symlink found at `path` points, re-rooted inside the image. */
function resolveLink(path: string, linkname: string): string {
  const base = linkname.startsWith("/") ? linkname : posix.join(posix.dirname(path), linkname);
  return posix.normalize(`/${base}`).replace(/^\/+/, "");
}

/** Stream one file of the image (the topmost version, following symlinks inside the image) into `out`. */
export async function catFile(layers: LayerInput[], wanted: string, out: Writable): Promise<void> {
  let path = posix.normalize(`/${wanted}`).replace(/^\/+/, "");
  for (let hop = 0; hop <= 16; hop++) {
    let found: { type: string; linkname?: string } | undefined;
    await walkFlattened(layers, async (p, header, stream) => {
      if (p.startsWith(`${path}/`)) {
        found = { type: "directory" };
        return "stop";
      }
      if (p !== path) return;
      found = { type: header.type ?? "file", linkname: header.linkname ?? undefined };
      if (header.type === "file" || header.type === "contiguous-file") await pipeline(stream, out, { end: false });
      return "stop";
    });
    if (!found) throw new RegcliError("not-found", `no file /${path} in the image`);
    const f = found as { type: string; linkname?: string };
    if (f.type === "file" || f.type === "contiguous-file") return;
    if (f.type === "directory") throw new RegcliError("usage", `/${path} is a directory in the image`);
    if (f.type === "symlink" || f.type === "link") {
      path = f.type === "link" ? normalizeEntryName(f.linkname ?? "", "link") : resolveLink(path, f.linkname ?? "");
      continue;
    }
    throw new RegcliError("usage", `/${path} is not a regular file in the image (${f.type})`);
  }
  throw new RegcliError("usage", `too many symlinks resolving /${wanted} in the image`);
}
