import { isIP } from "node:net";
import { RegcliError } from "../errors.js";
import { readLimited, type HttpResponse, type HttpTransport } from "../transport/http.js";
import { parseWWWAuthenticate, type Challenge } from "./challenge.js";
import type { Credential } from "./credentials.js";
import { TokenCache, type StoredToken } from "./token-cache.js";

export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** Tokens one endpoint holds in memory (one per scope set): a server asked for many repositories drops the oldest. */
const MAX_HELD_TOKENS = 1000;

/** Where credentials for a registry come from; resolved lazily, at most once per registry and process. */
export type CredentialSource = () => Promise<Credential | undefined>;

type CachedToken = StoredToken;

function isLoopbackOrPrivate(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) {
    const [a, b] = h.split(".").map(Number) as [number, number];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || a === 0;
  }
  if (isIP(h) === 6) return h === "::1" || h.startsWith("fc") || h.startsWith("fd") || h.startsWith("fe80");
  return false;
}

export function scopeKey(scopes: string[]): string {
  return [...new Set(scopes)].sort().join(" ");
}

/**
 * Authorization for one registry endpoint: learns the challenge, holds credentials, and fetches and caches
 * Bearer tokens per scope set. Decides where credentials may be sent: only to the registry's own origin,
 * and to a token realm only when that realm is safe (see realmMayReceiveCredentials).
 */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private credential: Promise<Credential | undefined> | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly fetching = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly base: URL,
    private readonly transport: HttpTransport,
    private readonly credentials: CredentialSource,
    /** Tokens kept between runs (see TokenCache); none: each run asks the token service. */
    private readonly store?: TokenCache,
  ) {}

  /** Record the challenge from a /v2/ ping or a 401; returns whether one was found. */
  learn(res: HttpResponse): boolean {
    const challenges = parseWWWAuthenticate(res.headers["www-authenticate"]);
    const chosen = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
    if (chosen) this.challenge = chosen;
    return chosen !== undefined;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  private getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.credentials();
    return this.credential;
  }

  async hasCredential(): Promise<boolean> {
    return (await this.getCredential()) !== undefined;
  }

  /** The Authorization header for a request needing `scopes`, or undefined when none applies (yet). */
  async header(scopes: string[], fresh = false): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      const cred = await this.getCredential();
      if (cred?.username !== undefined && cred.password !== undefined) {
        return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
      }
      return undefined;
    }
    if (challenge.scheme !== "bearer") return undefined;
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (!fresh && cached && cached.expiresAt > Date.now()) return cached.header;
    return (await this.fetchShared(key, challenge, scopes, fresh)).header;
  }

  /**
   * Concurrent requests that need the same token wait for one fetch instead of each asking the realm. Unless
   * `fresh`, a token kept by an earlier run for the same registry, realm, service, scopes and user is taken first.
   */
  private fetchShared(key: string, challenge: Challenge, scopes: string[], fresh: boolean): Promise<CachedToken> {
    // Anyone may wait for a fresh fetch; a fresh one never waits for a look-up that may find the rejected token.
    const pendingKey = fresh ? `fresh ${key}` : key;
    let pending = this.fetching.get(`fresh ${key}`) ?? this.fetching.get(pendingKey);
    if (!pending) {
      pending = (async () => {
        const storeKey = await this.storeKey(challenge, key);
        const stored = !fresh && storeKey ? this.store!.get(storeKey) : undefined;
        if (stored) {
          this.transport.options.debug?.(`token for "${key}" from the cache (${Math.round((stored.expiresAt - Date.now()) / 1000)} s left)`);
          return stored;
        }
        const token = await this.fetchToken(challenge, scopes);
        if (storeKey) this.store!.put(this.base.host, [storeKey], token);
        return token;
      })()
        .then((token) => {
          this.hold(key, token);
          return token;
        })
        .finally(() => this.fetching.delete(pendingKey));
      this.fetching.set(pendingKey, pending);
    }
    return pending;
  }

  private hold(key: string, token: CachedToken): void {
    this.tokens.delete(key);
    this.tokens.set(key, token);
    if (this.tokens.size > MAX_HELD_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
  }

  /** The credentials the token service at `realm` may receive (see realmMayReceiveCredentials). */
  private async credentialFor(realm: URL): Promise<Credential | undefined> {
    const cred = await this.getCredential();
    return cred && this.realmMayReceiveCredentials(realm) ? cred : undefined;
  }

  /** Where a token for `scope` (a scopeKey) is kept between runs; undefined when it is not. */
  private async storeKey(challenge: Challenge, scope: string): Promise<string | undefined> {
    if (!this.store) return undefined;
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm ?? "");
    } catch {
      return undefined;
    }
    const cred = await this.credentialFor(realm);
    return TokenCache.key({ origin: this.base.origin, realm: realm.href, service: challenge.params.service, scope, username: cred ? (cred.username ?? "") : undefined });
  }

  /** A 401 came back: learn its challenge and get a fresh header (once). Undefined means nothing more to try. */
  async refresh(res: HttpResponse, scopes: string[]): Promise<string | undefined> {
    // The token sent was rejected: an earlier run's copy of it is of no more use.
    const rejected = this.tokens.get(scopeKey(scopes));
    if (rejected && this.challenge?.scheme === "bearer") {
      const storeKey = await this.storeKey(this.challenge, scopeKey(scopes));
      if (storeKey) this.store!.drop(storeKey, rejected.header);
    }
    this.learn(res);
    const wanted = [...scopes];
    const extra = this.challenge?.params.scope;
    if (extra) wanted.push(...extra.split(" ").filter(Boolean));
    const header = await this.header(wanted, true);
    // The fresh token covers `scopes` too: cache it under them, or later requests for `scopes` keep sending the
    // rejected token whenever the challenge names the access differently (Distribution: "push,pull" or "pull").
    const token = this.tokens.get(scopeKey(wanted));
    if (token && scopeKey(wanted) !== scopeKey(scopes)) {
      this.hold(scopeKey(scopes), token);
      const storeKey = this.challenge?.scheme === "bearer" ? await this.storeKey(this.challenge, scopeKey(scopes)) : undefined;
      if (storeKey) this.store!.put(this.base.host, [storeKey], token);
    }
    return header;
  }

  private realmMayReceiveCredentials(realm: URL): boolean {
    const registryHost = this.base.hostname;
    if (realm.hostname !== registryHost && isLoopbackOrPrivate(realm.hostname)) return false;
    if (realm.protocol === "https:") return true;
    return this.base.protocol === "http:" && isLoopbackOrPrivate(registryHost) && isLoopbackOrPrivate(realm.hostname);
  }

  private async fetchToken(challenge: Challenge, scopes: string[]): Promise<CachedToken> {
    const realmText = challenge.params.realm;
    let realm: URL;
    try {
      realm = new URL(realmText ?? "");
    } catch {
      throw new RegcliError("auth", `registry ${this.base.host} sent an invalid token realm "${realmText ?? ""}"`);
    }
    if (realm.protocol !== "https:" && realm.protocol !== "http:") {
      throw new RegcliError("auth", `registry ${this.base.host} sent a token realm with unsupported scheme ${realm.protocol}`);
    }
    const service = challenge.params.service;
    const uniqueScopes = [...new Set(scopes)];
    const cred = await this.credentialFor(realm);

    let res: HttpResponse;
    if (cred?.identityToken) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: cred.identityToken, client_id: "regcli" });
      if (service) form.set("service", service);
      if (uniqueScopes.length) form.set("scope", uniqueScopes.join(" "));
      res = await this.transport.send({
        method: "POST",
        url: realm,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        followRedirects: false,
        idempotent: true,
      });
    } else {
      const url = new URL(realm);
      if (service) url.searchParams.set("service", service);
      for (const s of uniqueScopes) url.searchParams.append("scope", s);
      const headers: Record<string, string> = {};
      if (cred?.username !== undefined && cred.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
      }
      res = await this.transport.send({ method: "GET", url, headers, followRedirects: false });
    }
    const body = await readLimited(res, MAX_TOKEN_RESPONSE_BYTES, "token response");
    if (res.status === 401 || res.status === 403) {
      throw new RegcliError("auth", `authentication to ${this.base.host} failed: the token service at ${realm.host} refused the credentials (HTTP ${res.status})`, {
        hint: cred ? `check the credentials with regcli login ${this.base.host}` : `log in with regcli login ${this.base.host}`,
      });
    }
    if (res.status !== 200) {
      throw new RegcliError("registry", `token service at ${realm.host} for ${this.base.host} answered HTTP ${res.status}`);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new RegcliError("registry", `token service at ${realm.host} sent invalid JSON`);
    }
    const token = typeof parsed.token === "string" && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== "string" || !token) {
      throw new RegcliError("registry", `token service at ${realm.host} sent no token`);
    }
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    const issued = typeof parsed.issued_at === "string" ? Date.parse(parsed.issued_at) : NaN;
    const start = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued;
    return { header: `Bearer ${token}`, expiresAt: start + expiresIn * 1000 - TOKEN_EXPIRY_MARGIN_MS };
  }
}
