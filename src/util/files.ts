import { mkdir, open, rename, stat, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/**
 * `mkdir -p`, but failing with the real reason: Node's recursive mkdir reports ENOENT where the directory could
 * not be made because the file system is read-only (EROFS) or not writable (EACCES). Then the first missing
 * component is made without `recursive`, which fails with the kernel's own error.
 */
export async function makeDirectory(path: string, mode?: number): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    let missing = path;
    while (dirname(missing) !== missing && !(await stat(dirname(missing)).then(() => true, () => false))) missing = dirname(missing);
    await mkdir(missing, { mode });
    await mkdir(path, { recursive: true, mode });
  }
}

/** regcli's cache directory: ${XDG_CACHE_HOME:-~/.cache}/regcli. */
export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "regcli");
}

/**
 * A JSON cache file's content, or undefined when it cannot be trusted: missing, unreadable, larger than
 * `maxBytes`, not a regular file, owned by another user, writable by group or others, or not JSON.
 */
export async function readCacheFile(file: string, maxBytes: number): Promise<unknown> {
  try {
    const handle = await open(file, "r");
    try {
      const st = await handle.stat();
      if (!st.isFile() || st.size > maxBytes || (st.mode & 0o022) !== 0) return undefined;
      if (process.getuid && st.uid !== process.getuid()) return undefined;
      return JSON.parse(await handle.readFile("utf8"));
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** Replace a cache file whole (owner-only, written beside it and renamed into place); failing is silent. */
export async function writeCacheFile(file: string, content: unknown): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await makeDirectory(dirname(file), 0o700);
    await unlink(temp).catch(() => undefined);
    await writeFile(temp, JSON.stringify(content), { mode: 0o600, flag: "wx" });
    await rename(temp, file);
  } catch {
    await unlink(temp).catch(() => undefined);
  }
}
