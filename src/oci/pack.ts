// A directory as a layer tar that is the same on every machine: entries sorted by name (bytes), owners 0:0 without
// names unless asked, mtimes clamped to SOURCE_DATE_EPOCH, symlinks kept, hard links as tar hard links, PAX headers
// only where USTAR cannot hold a name. Streams: one file's bytes at a time, never the whole tree.
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { localFileError, RegcliError } from "../errors.js";

export interface PackOptions {
  /** Keep the files' uid/gid (numbers only; default 0:0). */
  keepOwner?: boolean;
  /** Device nodes and fifos are written (sockets, which a tar cannot hold, are left out); refused otherwise. */
  allowDevices?: boolean;
  /** Seconds since the epoch: no mtime later than this (SOURCE_DATE_EPOCH). */
  epoch?: number;
}

/** Names compared as bytes, as `LC_ALL=C sort` and Go's sort.Strings order them. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Linux's dev_t split (glibc's gnu_dev_major/minor). */
function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  const high = Math.floor(rdev / 2 ** 32);
  const low = rdev % 2 ** 32;
  return { devmajor: ((low >>> 8) & 0xfff) | ((high & 0xfffff000) >>> 0), devminor: (low & 0xff) | ((low >>> 12) & 0xfff00) };
}

function typeOf(st: Stats): tar.Header["type"] | "socket" | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "character-device";
  if (st.isBlockDevice()) return "block-device";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return undefined;
}

/** The tar stream of `root`'s contents (root itself is the layer's /, not an entry). */
export function packDirectory(root: string, options: PackOptions = {}): Readable {
  const pack = tar.pack();
  const links = new Map<string, string>();
  const entry = (header: Partial<tar.Header> & { name: string }, path?: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      if (!path) return;
      pipeline(createReadStream(path, { highWaterMark: 256 * 1024 }), sink).catch((err: unknown) => reject(localFileError(err, path, "read") ?? err));
    });

  const add = async (rel: string, path: string, st: Stats): Promise<void> => {
    const type = typeOf(st);
    if (type === undefined) throw new RegcliError("usage", `${path}: a file of a kind a layer cannot hold`);
    if (type === "socket" || type === "character-device" || type === "block-device" || type === "fifo") {
      if (!options.allowDevices) throw new RegcliError("usage", `${path} is a ${type.replace("-", " ")}: a layer from a directory holds none unless asked`, { hint: "remove it, or (as root) give --allow-devices" });
      if (type === "socket") return; // as tar does: a socket cannot be archived
    }
    const mtime = Math.floor(st.mtimeMs / 1000);
    const header: Partial<tar.Header> & { name: string } = {
      name: type === "directory" ? `${rel}/` : rel,
      mode: st.mode & 0o7777,
      uid: options.keepOwner ? st.uid : 0,
      gid: options.keepOwner ? st.gid : 0,
      mtime: new Date((options.epoch !== undefined ? Math.min(mtime, options.epoch) : mtime) * 1000),
      type,
      size: 0,
    };
    if (type === "symlink") header.linkname = await readlink(path);
    if (type === "character-device" || type === "block-device") Object.assign(header, deviceNumbers(st.rdev));
    if (type === "file" && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) return entry({ ...header, type: "link", linkname: first });
      links.set(key, rel);
    }
    if (type === "file") {
      header.size = st.size;
      return entry(header, path);
    }
    await entry(header);
    if (type === "directory") await walk(rel, path);
  };

  const walk = async (rel: string, dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort(byBytes);
    for (const name of names) {
      const path = join(dir, name);
      await add(rel ? `${rel}/${name}` : name, path, await lstat(path));
    }
  };

  (async () => {
    const st = await lstat(root);
    if (!st.isDirectory()) throw new RegcliError("usage", `${root} is not a directory`);
    await walk("", root);
    pack.finalize();
  })().catch((err: unknown) => pack.destroy((localFileError(err, undefined, "read") ?? err) as Error));
  return pack as unknown as Readable;
}
