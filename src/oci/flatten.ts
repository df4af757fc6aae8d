import { constants as fsConstants, createWriteStream } from "node:fs";
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, rm, symlink, utimes } from "node:fs/promises";
import { join, posix } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { RegcliError } from "../errors.js";
import { decompressed } from "./compress.js";
import { layerCompression, type LayerCompression } from "./media-types.js";
import { childProcess } from "../util/builtins.js";

export interface LayerInput {
  digest: string;
  mediaType: string;
  /** The layer's bytes as stored (gzip, zstd or plain tar), verified by the caller's stream. */
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

/** Refuse, before reading anything, layers regcli cannot read: media types that are not filesystem layers. */
function assertReadable(layers: LayerInput[]): void {
  for (const layer of layers) {
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      throw new RegcliError("unsupported", `layer ${layer.digest} has media type ${layer.mediaType}, which is not a filesystem layer regcli can read`);
    }
  }
}

async function layerEntries(layer: LayerInput, onEntry: (header: Header, stream: Readable) => Promise<void>): Promise<void> {
  // The first bytes say gzip, zstd or plain tar, whatever the media type says.
  const { stream, compression } = await decompressed(await layer.open());
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
  try {
    await pipeline(stream, extract);
  } catch (err) {
    throw notATar(err, layer, compression) ?? err;
  }
}

/**
 * The layer's own bytes could not be read as a (gzipped) tar: content the registry served is bad, not a bug
 * here. tar-stream's parse errors carry no code; zlib's are Z_*; errors of our own or the file system's pass.
 */
function notATar(err: unknown, layer: LayerInput, compression: LayerCompression): RegcliError | undefined {
  if (!(err instanceof Error) || err instanceof RegcliError) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  const parse = code === undefined ? /tar|Unexpected end of data/i.test(err.message) : code.startsWith("Z_");
  if (!parse) return undefined;
  return new RegcliError("integrity", `layer ${layer.digest} is not a valid ${compression === "none" ? "" : `${compression}-compressed `}tar: ${err.message}`, { cause: err });
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
  assertReadable(layers);
  const seen = new Set<string>(); // decided by a higher layer
  const dirs = new Set<string>(); // known to be directories in the result
  // Directories a higher layer only implies (it has "tmp/x" but no "tmp/"): the explicit entry of a lower
  // layer still gives their mode, owner and time (/tmp 1777, /home/user 0700).
  const implied = new Set<string>();
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
      if (deleted.has(path)) return;
      if (seen.has(path)) {
        const fillsIn = implied.has(path) && header.type === "directory";
        implied.delete(path);
        if (!fillsIn) return;
      }
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
          implied.add(a);
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
  // `out` is reached through a plain pipe(): a pipeline would destroy it with our error, which on stdout reads
  // as a failed write; it is closed without one instead.
  const relay = new PassThrough();
  const packed = pipeline(pack, relay);
  packed.catch(() => undefined);
  let outputError: unknown;
  // pipe() never ends process.stdout (it stays open, and emits no "finish"): there the tar is done once the relay
  // has handed over its last byte.
  const stays = out === process.stdout || out === process.stderr;
  const done = new Promise<void>((resolve, reject) => {
    if (stays) relay.on("end", resolve);
    else out.on("finish", resolve);
    out.on("error", (e: Error) => {
      outputError = e;
      pack.destroy(e); // stops the walk
      reject(e);
    });
  });
  done.catch(() => undefined);
  // An output that fails (disk full) destroys the pack: every wait for an entry races this, or it would never end.
  const failed = done.then(() => new Promise<never>(() => undefined));
  failed.catch(() => undefined);
  relay.pipe(out);
  let entries = 0;
  // A hard link must follow its target in the tar (`tar -x` links to what it has already extracted), but layers
  // are read top-down: a link whose target a lower layer holds waits until that target is written.
  const written = new Set<string>();
  const waiting = new Map<string, Header[]>();
  const write = async (header: Header, stream?: Readable): Promise<void> => {
    const path = header.name;
    const name = header.type === "directory" ? `${path}/` : path;
    const h = { ...header, name, mode: cleanMode(header.mode, options) };
    const entry = new Promise<void>((resolve, reject) => {
      const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
      if (stream && (header.type === "file" || header.type === "contiguous-file")) pipeline(stream, sink as unknown as Writable).catch(reject);
      else (sink as unknown as Writable).end();
    });
    await Promise.race([entry, failed]);
    entries++;
    if (header.type !== "file" && header.type !== "contiguous-file" && header.type !== "link") return;
    written.add(path);
    const links = waiting.get(path);
    waiting.delete(path);
    for (const link of links ?? []) await write(link);
  };
  try {
    await walkFlattened(layers, async (path, header, stream) => {
      if (SPECIAL_TYPES.has(header.type ?? "") && !options.devices) return;
      if (header.type === "link") {
        const target = normalizeEntryName(header.linkname ?? "", `hardlink ${path}`);
        const link = { ...header, linkname: target };
        if (!written.has(target)) return void waiting.set(target, [...(waiting.get(target) ?? []), link]);
        return write(link);
      }
      await write(header, stream);
    });
    const [target, links] = waiting.entries().next().value ?? [];
    if (target) throw new RegcliError("integrity", `hardlink "${links![0]!.name}" points at "${target}", which is not a regular file in the image`);
    pack.finalize();
    await Promise.all([packed, done]);
  } catch (err) {
    relay.unpipe(out);
    pack.destroy(err as Error);
    out.destroy();
    // The output's own failure (disk full) rather than what it caused.
    throw outputError ?? err;
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
 * Owner, mode and modification time as the image has them. Owners only as root (numeric ids, like
 * `tar -x --numeric-owner`); a setuid/setgid bit grants the owner's rights, so it stays only on an entry whose
 * owner was set.
 */
async function setMetadata(target: string, header: Header, mode: number | undefined, symbolic = false): Promise<void> {
  let owned = false;
  if (process.getuid?.() === 0 && header.uid !== undefined && header.gid !== undefined) {
    owned = await (symbolic ? lchown : chown)(target, header.uid, header.gid).then(
      () => true,
      () => false,
    );
  }
  if (!symbolic && mode !== undefined) await chmod(target, owned ? mode : mode & ~0o6000);
  if (header.mtime) await (symbolic ? lutimes : utimes)(target, header.mtime, header.mtime);
}

/**
 * Extract the flattened filesystem into `dir`, never writing outside it: no writes through symlinks,
 * hardlinks only to regular files inside, device nodes skipped, setuid/setgid bits stripped by default.
 * Owners are kept when running as root; directories get their mode, owner and time last, after their contents.
 */
export async function exportToDirectory(layers: LayerInput[], dir: string, options: FlattenOptions = {}): Promise<{ entries: number; skipped: number }> {
  await mkdir(dir, { recursive: true });
  let entries = 0;
  let skipped = 0;
  const hardlinks: Array<{ path: string; target: string }> = [];
  const directories: Array<{ path: string; header: Header }> = [];
  await walkFlattened(layers, async (path, header, stream) => {
    const target = join(dir, path);
    await assertNoSymlinkOnTheWay(dir, path);
    const existing = await lstat(target).catch(() => undefined);
    const mode = cleanMode(header.mode, options);
    switch (header.type) {
      case "directory":
        if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
        await mkdir(target, { recursive: true });
        // Writable by us until its contents are in, and no setgid yet: new subdirectories would inherit it.
        await chmod(target, 0o700 | ((mode ?? 0o755) & 0o1777));
        directories.push({ path, header });
        break;
      case "file":
      case "contiguous-file": {
        if (existing) await rm(target, { recursive: true, force: true });
        // O_EXCL | O_NOFOLLOW: never open through a link that appeared in the meantime.
        const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
        await pipeline(stream, createWriteStream(target, { flags: flags as unknown as string, mode: 0o600 }));
        await setMetadata(target, header, mode ?? 0o644);
        break;
      }
      case "symlink":
        if (existing) await rm(target, { recursive: true, force: true });
        await symlink(header.linkname ?? "", target);
        await setMetadata(target, header, undefined, true);
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
        await setMetadata(target, header, mode);
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
  // Deepest first: a parent without search permission for us must not hide its children.
  directories.sort((a, b) => b.path.length - a.path.length);
  for (const d of directories) await setMetadata(join(dir, d.path), d.header, cleanMode(d.header.mode, options) ?? 0o755);
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

type Found = { type: string; linkname?: string };

const MAX_SYMLINKS = 40; // Linux's MAXSYMLINKS

/**
 * Resolve `wanted` in the image the way the kernel does inside a chroot of it: every component, symlinks in the
 * middle included, absolute targets from the image root, `..` never above the root. Returns the path of the
 * final entry (a symlink at the end is followed too).
 */
function resolveInImage(entries: Map<string, Found>, wanted: string): { path: string; entry: Found } {
  const shown = `/${wanted.replace(/^\/+/, "")}`;
  const todo = wanted.split("/").filter((c) => c !== "" && c !== ".");
  const current: string[] = [];
  let links = 0;
  let entry: Found = { type: "directory" };
  while (todo.length) {
    const part = todo.shift()!;
    if (part === "..") {
      current.pop();
      entry = { type: "directory" };
      continue;
    }
    const path = [...current, part].join("/");
    const found = entries.get(path);
    if (!found) throw new RegcliError("not-found", `no file ${shown} in the image${current.length || links ? ` (/${path} does not exist)` : ""}`);
    if (found.type === "symlink") {
      if (++links > MAX_SYMLINKS) throw new RegcliError("usage", `too many levels of symbolic links resolving ${shown} in the image (a symlink loop?)`);
      const target = found.linkname ?? "";
      if (target === "") throw new RegcliError("not-found", `no file ${shown} in the image (/${path} is an empty symlink)`);
      if (target.startsWith("/")) current.length = 0;
      todo.unshift(...target.split("/").filter((c) => c !== "" && c !== "."));
      entry = { type: "directory" };
      continue;
    }
    if (todo.length && found.type !== "directory") {
      throw new RegcliError("not-found", `no file ${shown} in the image (/${path} is not a directory)`);
    }
    current.push(part);
    entry = found;
  }
  return { path: current.join("/"), entry };
}

/** Stream one file of the image (the topmost version, resolving symlinks inside the image) into `out`. */
export async function catFile(layers: LayerInput[], wanted: string, out: Writable): Promise<void> {
  // One pass notes every path; it streams the file at once when the path names it directly (an entry the
  // flattened walk reports has only directories above it). Otherwise the path is resolved on those notes and a
  // second pass streams the file it leads to.
  const parts = wanted.split("/").filter((c) => c !== "" && c !== ".");
  const direct = parts.includes("..") ? undefined : parts.join("/");
  const entries = new Map<string, Found>();
  let done = false;
  await walkFlattened(layers, async (p, header, stream) => {
    if (p === direct && (header.type === "file" || header.type === "contiguous-file")) {
      await pipeline(stream, out, { end: false });
      done = true;
      return "stop";
    }
    entries.set(p, { type: header.type ?? "file", linkname: header.linkname ?? undefined });
    for (const a of ancestors(p)) if (!entries.has(a)) entries.set(a, { type: "directory" });
  });
  if (done) return;
  let { path, entry } = resolveInImage(entries, wanted);
  for (let hop = 0; entry.type === "link"; hop++) {
    if (hop > MAX_SYMLINKS) throw new RegcliError("usage", `too many hard links resolving /${path} in the image`);
    ({ path, entry } = resolveInImage(entries, `/${normalizeEntryName(entry.linkname ?? "", "link")}`));
  }
  if (entry.type === "directory") throw new RegcliError("usage", `/${path} is a directory in the image`);
  if (entry.type !== "file" && entry.type !== "contiguous-file") throw new RegcliError("usage", `/${path} is not a regular file in the image (${entry.type})`);
  await walkFlattened(layers, async (p, _header, stream) => {
    if (p !== path) return;
    await pipeline(stream, out, { end: false });
    return "stop";
  });
}
