import { join } from "node:path";
import { crypto } from "../util/builtins.js";
import { cacheHome, readCacheFile, writeCacheFile } from "../util/files.js";

/**
 * Bearer tokens kept between runs, so a command right after another skips the token request. One JSON file in
 * the cache directory (owner-only), { key: { host, header, expiresAt } }. A key names everything a token was
 * issued for: the registry origin, the realm, the service, the scopes and whose credentials (a hash of the user
 * name; anonymous otherwise), so a token is never offered for another host, scope or user. A token is only a
 * hint: a registry that rejects it gets a fresh one (RegistryAuth.refresh), and the entry is replaced. Anything
 * unexpected (unreadable, foreign owner, writable by others, bad JSON, a malformed or expired entry, an expiry
 * too far ahead) reads as "no entry"; failing to write is silent. Passwords and identity tokens are never stored.
 */
export const TOKEN_CACHE_MAX_TTL_MS = 60 * 60 * 1000;
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_ENTRIES = 200;

export interface StoredToken {
  header: string;
  expiresAt: number;
}

interface Entry extends StoredToken {
  host: string;
}

export interface TokenKey {
  /** The registry's origin (scheme://host:port) the token is for. */
  origin: string;
  realm: string;
  service: string | undefined;
  /** The scope set, as scopeKey() writes it. */
  scope: string;
  /** The user name of the credentials the token was asked with ("" for an identity token without one); undefined: none. */
  username: string | undefined;
}

const sha256 = (text: string) => crypto().createHash("sha256").update(text).digest("hex");

export class TokenCache {
  constructor(private readonly file = join(cacheHome(), "tokens.json")) {}

  static key(k: TokenKey): string {
    const who = k.username === undefined ? "anonymous" : `user:${sha256(k.username)}`;
    return JSON.stringify([k.origin, k.realm, k.service ?? "", k.scope, who]);
  }

  private read(): Record<string, Entry> {
    const entries: Record<string, Entry> = {};
    const parsed = readCacheFile(this.file, MAX_FILE_BYTES);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return entries;
    const now = Date.now();
    for (const [key, e] of Object.entries(parsed as Record<string, Partial<Entry> | null>)) {
      if (typeof e?.header !== "string" || !e.header.startsWith("Bearer ") || typeof e.host !== "string") continue;
      if (typeof e.expiresAt !== "number" || e.expiresAt <= now || e.expiresAt > now + TOKEN_CACHE_MAX_TTL_MS) continue;
      entries[key] = { host: e.host, header: e.header, expiresAt: e.expiresAt };
    }
    return entries;
  }

  get(key: string): StoredToken | undefined {
    const entry = this.read()[key];
    return entry && { header: entry.header, expiresAt: entry.expiresAt };
  }

  /** Keep `token` for `host` under each of `keys`. */
  put(host: string, keys: string[], token: StoredToken): void {
    const expiresAt = Math.min(token.expiresAt, Date.now() + TOKEN_CACHE_MAX_TTL_MS);
    this.update((entries) => {
      for (const key of keys) entries[key] = { host, header: token.header, expiresAt };
    });
  }

  /** Drop the token under `key` if it is still `header` (the registry rejected it). */
  drop(key: string, header: string): void {
    this.update((entries) => {
      if (entries[key]?.header === header) delete entries[key];
    });
  }

  /** Drop every token kept for `host` (host[:port]): after a logout, none of them may be used. */
  forget(host: string): void {
    // Kept under the URL's host, which leaves out the scheme's default port.
    const names = new Set([host, new URL(`https://${host}`).host, new URL(`http://${host}`).host]);
    this.update((entries) => {
      for (const [key, e] of Object.entries(entries)) if (names.has(e.host)) delete entries[key];
    });
  }

  /** Read, change and write back the file (expired entries left out, the MAX_ENTRIES latest to expire kept). */
  private update(change: (entries: Record<string, Entry>) => void): void {
    const entries = this.read();
    const before = JSON.stringify(entries);
    change(entries);
    if (JSON.stringify(entries) === before) return;
    const kept = Object.entries(entries)
      .sort(([, a], [, b]) => b.expiresAt - a.expiresAt)
      .slice(0, MAX_ENTRIES);
    writeCacheFile(this.file, Object.fromEntries(kept));
  }
}
