import { mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

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
