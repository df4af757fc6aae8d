// A directory tree as a comparison needs it (types, modes, owners, mtimes, link targets, contents, hard links):
// to check that two readers (regcli export, umoci unpack, tar -x) unpacked the same image alike.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";

export async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

export interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  target?: string;
  rdev?: number;
  content?: string;
  links?: string;
}

/** Every path under `root` (the root itself left out) with what a comparison needs. */
export async function snapshot(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const s = await lstat(join(root, path));
      const type = s.isDirectory() ? "dir" : s.isFile() ? "file" : s.isSymbolicLink() ? "symlink" : s.isCharacterDevice() ? "chr" : s.isBlockDevice() ? "blk" : s.isFIFO() ? "fifo" : "other";
      const node: Node = { type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: Math.floor(s.mtimeMs / 1000) };
      if (type === "symlink") node.target = await readlink(join(root, path));
      if (type === "chr" || type === "blk") node.rdev = s.rdev;
      if (type === "file") {
        node.content = await fileDigest(join(root, path));
        if (s.nlink > 1) inodes.set(s.ino, [...(inodes.get(s.ino) ?? []), path]);
      }
      out.set(path, node);
      if (type === "dir") await walk(path);
    }
  };
  await walk("");
  for (const paths of inodes.values()) for (const p of paths) out.get(p)!.links = paths.sort().join(" ");
  return out;
}

/** The paths where two trees differ, with both sides, to read in a failure. */
export function differences(a: Map<string, Node>, b: Map<string, Node>): string[] {
  const out: string[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const x = JSON.stringify(a.get(path));
    const y = JSON.stringify(b.get(path));
    if (x !== y) out.push(`${path}: ${x} vs ${y}`);
  }
  return out;
}
