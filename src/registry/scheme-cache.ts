import { join } from "node:path";
import { cacheHome, readCacheFile, writeCacheFile } from "../util/files.js";

/**
 * Which loopback / insecure hosts answered over plain HTTP, so the next run skips the HTTPS attempt that
 * fails there. One JSON file, { "host:port": expiry in ms since the epoch }. Only a host the caller would
 * already let fall back to HTTP is ever looked up; a hit is a hint, checked by the request it saves (a wrong
 * answer falls back to the full probe). Anything unexpected (unreadable, foreign owner, writable by others,
 * bad JSON, an expiry too far ahead) reads as "no entry"; failing to write is silent.
 */
export const SCHEME_CACHE_TTL_MS = 10 * 60 * 1000;
const MAX_FILE_BYTES = 64 * 1024;

export class SchemeCache {
  constructor(private readonly file = join(cacheHome(), "plain-http.json")) {}

  private read(): Record<string, number> {
    const entries: Record<string, number> = {};
    const parsed = readCacheFile(this.file, MAX_FILE_BYTES);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return entries;
    const now = Date.now();
    for (const [host, until] of Object.entries(parsed)) {
      if (typeof until === "number" && until > now && until <= now + SCHEME_CACHE_TTL_MS) entries[host] = until;
    }
    return entries;
  }

  /** Whether `host` (host:port, exactly) answered over plain HTTP less than the lifetime ago. */
  isPlainHttp(host: string): boolean {
    return Object.hasOwn(this.read(), host);
  }

  /** Record the answer of a full probe: plain HTTP (remembered) or not (forgotten). */
  remember(host: string, plainHttp: boolean): void {
    const entries = this.read();
    if (!plainHttp && !Object.hasOwn(entries, host)) return;
    if (plainHttp) entries[host] = Date.now() + SCHEME_CACHE_TTL_MS;
    else delete entries[host];
    writeCacheFile(this.file, entries);
  }
}
