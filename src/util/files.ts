import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
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

// The cache files are read and written synchronously: they are small, and a one-shot command that touched them
// through fs/promises started libuv's thread pool (four threads, joined again at exit) for these reads alone.

/**
 * A JSON cache file's content, or undefined when it cannot be trusted: missing, unreadable, larger than
 * `maxBytes`, not a regular file, owned by another user, writable by group or others, or not JSON.
 */
export function readCacheFile(file: string, maxBytes: number): unknown {
  let fd: number | undefined;
  try {
    // Not blocking on a FIFO put in its place: it is then no regular file, and ignored.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes || (st.mode & 0o022) !== 0) return undefined;
    if (process.getuid && st.uid !== process.getuid()) return undefined;
    return JSON.parse(readFileSync(fd, "utf8"));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replace a cache file whole (owner-only, written beside it and renamed into place); failing is silent. */
export function writeCacheFile(file: string, content: unknown): void {
  const temp = `${file}.${process.pid}.tmp`;
  const removeTemp = () => rmSync(temp, { force: true });
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    removeTemp();
    writeFileSync(temp, JSON.stringify(content), { mode: 0o600, flag: "wx" });
    renameSync(temp, file);
  } catch {
    try {
      removeTemp();
    } catch {
      // no directory to remove it from
    }
  }
}

/**
 * Write all of `buffers` at `position`, in as many writes as it takes: a write may take fewer bytes than it was
 * given without failing (POSIX allows it; Linux does it on a file system about to be full), and a caller that took
 * the rest as written would leave a hole in the file. Returns the bytes written.
 */
export async function writeFully(file: { writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }> }, buffers: Buffer[], position: number): Promise<number> {
  let pending = buffers.filter((b) => b.length > 0);
  let total = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, position + total);
    if (bytesWritten <= 0) throw Object.assign(new Error(`a write at byte ${position + total} took no bytes`), { code: "EIO" });
    total += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < pending.length && skip >= pending[i]!.length) skip -= pending[i++]!.length;
    pending = i < pending.length ? [pending[i]!.subarray(skip), ...pending.slice(i + 1)] : [];
  }
  return total;
}
