import { open, rename, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { makeDirectory } from "../util/files.js";

/**
 * Which loopback / insecure hosts answered over plain HTTP, so the next run skips the HTTPS attempt that
 * fails there. One JSON file, { "host:port": expiry in ms since the epoch }. Only a host the caller would
 * already let fall back to HTTP is ever looked up; a hit is a hint, checked by the request it saves (a wrong
 * answer falls back to the full probe). Anything unexpected (unreadable, foreign owner, writable by others,
 * bad JSON, an expiry too far ahead) reads as "no entry"; failing to write is silent.
 */
export const SCHEME_CACHE_TTL_MS = 10 * 60 * 1000;
const MAX_FILE_BYTES = 64 * 1024;

export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "regcli");
}

export class SchemeCache {
  constructor(private readonly file = join(cacheHome(), "plain-http.json")) {}

  private async read(): Promise<Record<string, number>> {
    const entries: Record<string, number> = {};
    let parsed: unknown;
    try {
      const handle = await open(this.file, "r");
      try {
        const st = await handle.stat();
        if (!st.isFile() || st.size > MAX_FILE_BYTES || (st.mode & 0o022) !== 0) return entries;
        if (process.getuid && st.uid !== process.getuid()) return entries;
        parsed = JSON.parse(await handle.readFile("utf8"));
      } finally {
        await handle.close();
      }
    } catch {
      return entries;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return entries;
    const now = Date.now();
    for (const [host, until] of Object.entries(parsed)) {
      if (typeof until === "number" && until > now && until <= now + SCHEME_CACHE_TTL_MS) entries[host] = until;
    }
    return entries;
  }

  /** Whether `host` (host:port, exactly) answered over plain HTTP less than the lifetime ago. */
  async isPlainHttp(host: string): Promise<boolean> {
    return Object.hasOwn(await this.read(), host);
  }

  /** Record the answer of a full probe: plain HTTP (remembered) or not (forgotten). */
  async remember(host: string, plainHttp: boolean): Promise<void> {
    const entries = await this.read();
    if (!plainHttp && !Object.hasOwn(entries, host)) return;
    if (plainHttp) entries[host] = Date.now() + SCHEME_CACHE_TTL_MS;
    else delete entries[host];
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      await makeDirectory(join(this.file, ".."), 0o700);
      await unlink(temp).catch(() => undefined);
      await writeFile(temp, JSON.stringify(entries), { mode: 0o600, flag: "wx" });
      await rename(temp, this.file);
    } catch {
      await unlink(temp).catch(() => undefined);
    }
  }
}
