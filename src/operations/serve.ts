import { stat } from "node:fs/promises";
import { RegcliError } from "../errors.js";
import { RegistryRepository } from "../locations/registry.js";
import { registryOfUrl, type RegistryContext } from "../registry/context.js";
import { htpasswdAuthenticator } from "../server/htpasswd.js";
import type { ProxyOptions } from "../server/proxy.js";
import { RegistryServer, type ServeOptions } from "../server/server.js";
import { cacheRoots } from "../server/retention.js";
import { RegistryStorage } from "../server/storage.js";

export interface ServeSettings extends Omit<ServeOptions, "authenticate" | "proxy"> {
  htpasswd?: string;
  proxy?: ProxySettings;
}

/** A pull-through cache: --proxy URL (every repository), --proxy-namespace NAME=URL (repositories under NAME/). */
export interface ProxySettings {
  /** The upstream side's clients (tokens, retries, --ca-file), with --proxy-username's credential bound to its registry. */
  context: RegistryContext;
  upstream?: string;
  namespaces: Array<{ name: string; url: string }>;
  ttlMs: number;
}

/** The registry an upstream URL's credentials are under (Docker Hub's API host is docker.io). */
export function proxyRegistry(url: string): string {
  return registryOfUrl(url, "upstream URL").registry;
}

/** Upstream repositories kept for reuse by a cache: the most recently asked for, at most this many. */
export const UPSTREAM_REPOSITORIES_KEPT = 256;

/** Which upstream repository each repository of the server reads from; Docker Hub's official images are library/NAME. */
export function proxyOptions(p: ProxySettings): ProxyOptions {
  const target = (name: string): { url: string; repository: string } | undefined => {
    for (const ns of p.namespaces) if (name.startsWith(`${ns.name}/`)) return { url: ns.url, repository: name.slice(ns.name.length + 1) };
    return p.upstream === undefined ? undefined : { url: p.upstream, repository: name };
  };
  // One RegistryRepository per upstream repository, reused (least recently asked for dropped past the bound).
  const kept = new Map<string, RegistryRepository>();
  return {
    ttlMs: p.ttlMs,
    cached: (name) => target(name) !== undefined,
    upstream: (name) => {
      const t = target(name);
      if (!t) return undefined;
      const client = p.context.urlClient(t.url, "upstream URL");
      const repository = client.registry === "docker.io" && !t.repository.includes("/") ? `library/${t.repository}` : t.repository;
      const key = `${t.url}\n${repository}`;
      const repo = kept.get(key) ?? new RegistryRepository(client, repository);
      kept.delete(key);
      kept.set(key, repo);
      if (kept.size > UPSTREAM_REPOSITORIES_KEPT) kept.delete(kept.keys().next().value!);
      return repo;
    },
    catalog: p.upstream === undefined ? undefined : () => p.context.urlClient(p.upstream!, "upstream URL").catalog(),
  };
}

/** Local failures: a full disk, a denied or read-only path, a quota. */
const IO_CODES = new Set(["ENOSPC", "EACCES", "EPERM", "EROFS", "EDQUOT", "EIO"]);

/** Why serving could not start, as one line with the exit code that fits (usage or local I/O), never a crash. */
function startFailure(err: unknown, settings: ServeSettings): unknown {
  if (err instanceof RegcliError) return err;
  const e = err as NodeJS.ErrnoException;
  const listening = `cannot listen on ${settings.addr}`;
  switch (e.syscall === "listen" || e.syscall === "bind" || e.code === "EADDRINUSE" ? e.code : undefined) {
    case "EADDRINUSE":
      return new RegcliError("usage", `${listening}: address already in use`, { hint: "stop what listens there or pick another --addr" });
    case "EACCES":
      return new RegcliError("usage", `${listening}: permission denied`, { hint: "ports below 1024 need root; pick another --addr" });
    case "EADDRNOTAVAIL":
      return new RegcliError("usage", `${listening}: no such address on this machine`, { hint: "use 127.0.0.1, 0.0.0.0 or an address of this machine" });
  }
  if (e.code === "ENOTFOUND" || e.code === "EAI_AGAIN") return new RegcliError("usage", `${listening}: unknown host name`);
  if (e.path && e.code) {
    const reason = e.code === "ENOENT" ? "no such file or directory" : e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
    const what = e.path === settings.tlsCert ? "--tls-cert " : e.path === settings.tlsKey ? "--tls-key " : "";
    return new RegcliError(IO_CODES.has(e.code) ? "io" : "usage", `cannot use ${what}${e.path}: ${reason}`);
  }
  if (settings.tlsCert && /PEM|ERR_OSSL|key values mismatch|certificate/i.test(`${e.code ?? ""} ${e.message}`)) {
    return new RegcliError("usage", `cannot serve TLS with --tls-cert ${settings.tlsCert} and --tls-key ${settings.tlsKey}: ${e.message}`, {
      hint: "give a PEM certificate and its matching private key",
    });
  }
  return err;
}

export async function serve(settings: ServeSettings): Promise<{ server: RegistryServer; url: string }> {
  const server = new RegistryServer({
    ...settings,
    authenticate: settings.htpasswd ? htpasswdAuthenticator(settings.htpasswd) : undefined,
    proxy: settings.proxy && proxyOptions(settings.proxy),
  });
  const p = settings.proxy;
  // What `serve gc` needs to know of the cache without these flags: which repositories it holds, and its TTL.
  const scope = p && { ttlMs: p.ttlMs, ...(p.upstream === undefined ? { namespaces: p.namespaces.map((n) => n.name) } : {}) };
  const address = await server
    .start()
    .then(async (a) => (await server.storage.recordCacheScope(scope), a))
    .catch((err: unknown) => {
      throw startFailure(err, settings);
    });
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { server, url: `${settings.tlsCert ? "https" : "http"}://${host}:${address.port}` };
}

/** A cache's partial download untouched this long is left over (a fetch in progress writes to it; one that gave up keeps it to be resumed). */
const PARTIAL_MAX_AGE_MS = 3600_000;

/**
 * Blobs no manifest references; removed unless `dryRun`. In a pull-through cache's storage (as `regcli serve --proxy`
 * recorded it), cached manifests count only while within the TTL: expired ones go too (`manifests`, as NAME@DIGEST),
 * with their tags, and the blobs only they needed; and partial downloads untouched for an hour (`partials`).
 */
export async function garbageCollect(root: string, dryRun: boolean): Promise<{ blobs: string[]; bytes: number; manifests: string[]; partials: string[] }> {
  const storage = new RegistryStorage(root);
  if (!(await storage.hasLayout())) {
    const missing = await stat(root).then(() => false, () => true);
    throw new RegcliError("usage", `${root} ${missing ? "does not exist" : "is not a regcli serve storage root (no blobs/sha256 and repositories directories)"}`, {
      hint: "give --root the directory regcli serve was started with",
    });
  }
  const scope = await storage.cacheScope();
  const cache = scope ? await cacheRoots(storage, scope) : undefined;
  const blobs = await storage.unreferencedBlobs(cache?.keep);
  const expired = cache?.expired ?? [];
  const now = Date.now();
  const partials = (await storage.partialEntries()).filter((p) => now - p.mtimeMs > PARTIAL_MAX_AGE_MS).map((p) => p.digest);
  let bytes = 0;
  if (!dryRun) {
    for (const [name, digest] of expired) await storage.deleteManifest(name, digest);
    for (const digest of blobs) bytes += await storage.removeBlob(digest);
    for (const digest of partials) bytes += await storage.expirePartial(digest, PARTIAL_MAX_AGE_MS);
  }
  return { blobs, bytes, manifests: expired.map(([name, digest]) => `${name}@${digest}`), partials: partials.map((d) => `proxy/partial/${d.slice(7)}`) };
}
