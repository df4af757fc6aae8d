import { open, readFile, rm } from "node:fs/promises";
import { localFileError, RegcliError } from "../errors.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process with this pid still runs (EPERM: it runs, as another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Run `action` holding an exclusive lock file between processes (O_EXCL create). A lock left by a process
 * that no longer runs (killed mid-update) is taken over, so a crash never wedges the store.
 */
export async function withFileLock<T>(lockPath: string, action: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      const handle = await open(lockPath, "wx", 0o644);
      try {
        await handle.writeFile(String(process.pid));
      } catch (writeError) {
        // Disk full: a lock without an owner would wedge the next run; a handle left open warns at garbage collection.
        await handle.close().catch(() => undefined);
        await rm(lockPath, { force: true }).catch(() => undefined);
        throw writeError;
      }
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw localFileError(err, lockPath) ?? err;
      const owner = Number((await readFile(lockPath, "utf8").catch(() => "")).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !alive(owner)) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new RegcliError("general", `timed out waiting for the lock ${lockPath} (held by process ${owner || "unknown"})`);
      }
      await sleep(wait + Math.random() * wait);
    }
  }
  try {
    return await action();
  } finally {
    await rm(lockPath, { force: true });
  }
}
