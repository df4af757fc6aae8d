import { pipeline, Transform, type Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { RegistryAuth, type CredentialSource } from "../auth/session.js";
import { RegcliError } from "../errors.js";
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, parseManifest, referrersIndex, verifyBytes, type Descriptor, type ManifestData } from "../oci/index.js";
import { isPlainHttpServerError, isTransientNetworkError, networkError } from "../transport/errors.js";
import { backoffMs, readLimited, type HttpMethod, type HttpResponse, type HttpTransport } from "../transport/http.js";
import { registryFailure } from "./errors.js";
import type { SchemeCache } from "./scheme-cache.js";
import type { TokenCache } from "../auth/token-cache.js";
import { RatePacer, readRateLimit, type RateLimit } from "./ratelimit.js";

export interface Endpoint {
  /** The registry as references name it ("docker.io", "localhost:5000"): for messages and credentials. */
  registry: string;
  /** Where its API is served ("registry-1.docker.io"). */
  host: string;
  /** A fixed scheme (mirror URLs, --plain-http); otherwise https, falling back to http on loopback hosts. */
  scheme?: "http" | "https";
  /** Loopback hosts try https first and fall back to plain http when the server does not speak TLS. */
  loopback: boolean;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface ManifestHead {
  digest: string;
  mediaType: string | undefined;
  size: number;
  /** The pull limit the registry reported with the answer (Docker Hub). */
  rateLimit?: RateLimit;
}

interface CallOptions {
  method: HttpMethod;
  url: URL;
  scopes: string[];
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
  followRedirects?: boolean;
  /** Safe to send again after a network failure (see HttpRequest.idempotent). */
  idempotent?: boolean;
  /** Ask the token service even when a token is at hand (login checks the credentials themselves). */
  freshToken?: boolean;
}

const MAX_LIST_PAGE_BYTES = 16 * 1024 * 1024;
const PAGE_SIZE = 1000;

export const pullScope = (repo: string) => `repository:${repo}:pull`;
export const pushScope = (repo: string) => `repository:${repo}:pull,push`;
export const deleteScope = (repo: string) => `repository:${repo}:delete`;
/** How a listing (tags, a catalog) is asked for: Distribution's `n` and `last` parameters. */
export interface ListOptions {
  /** Entries asked for per page (`n`). */
  pageSize?: number;
  /** Start after this name (`last`). */
  last?: string;
  /** Only the first page, no Link followed. */
  onePage?: boolean;
}

export const CATALOG_SCOPE = "registry:catalog:*";

function nextLink(res: HttpResponse): URL | undefined {
  const link = res.header("link");
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (m?.[1]) return new URL(m[1], res.url);
  }
  return undefined;
}

/**
 * Read an answer's body away and let undici take its connection back: a request sent in the same tick would find
 * the connection still busy and open another one (seen with /v2/ then HEAD: two connections for one command).
 */
async function drain(res: HttpResponse): Promise<void> {
  await res.body.dump().catch(() => undefined);
  await new Promise(setImmediate);
}

/** What a registry answers to GET /v2/: OK, or a challenge. */
const isRegistryAnswer = (status: number) => (status >= 200 && status < 300) || status === 401;

/** One typed method per Distribution API endpoint, for one registry endpoint. */
export class RegistryClient {
  /**
   * Whether the registry has the referrers API, once learned this run (a referrers answer, or OCI-Subject or its
   * absence on a push of a manifest with a subject): without it, the referrers tag schema is read and kept instead.
   */
  referrersApi: boolean | undefined;
  private base: URL | undefined;
  private ready: Promise<void> | undefined;
  private auth: RegistryAuth | undefined;
  private readonly pacer: RatePacer;

  constructor(
    readonly endpoint: Endpoint,
    private readonly transport: HttpTransport,
    private readonly credentials: CredentialSource,
    /** Where loopback / insecure hosts found speaking plain HTTP are noted, to skip the HTTPS attempt next time. */
    private readonly schemes?: SchemeCache,
    /** Where Bearer tokens are kept between runs. */
    private readonly tokens?: TokenCache,
  ) {
    this.pacer = new RatePacer(endpoint.registry, transport.options.notice);
  }

  get registry(): string {
    return this.endpoint.registry;
  }

  /** How many times a failed transfer is resumed without progress before giving up (--retries). */
  get retries(): number {
    return this.transport.options.retries;
  }

  /** A line for --debug output. */
  debug(line: string): void {
    this.transport.options.debug?.(line);
  }

  /** GET /v2/: find the scheme and the auth challenge. Done once per client. */
  ping(): Promise<void> {
    this.ready ??= this.doPing().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async doPing(): Promise<void> {
    const { host, scheme, loopback } = this.endpoint;
    const probing = !scheme && loopback;
    // A host that answered plain HTTP a moment ago is asked over HTTP straight away; any other answer there
    // (refused, a TLS server's 400, not a registry) means the note is stale: probe again from the start.
    if (probing && this.schemes?.isPlainHttp(host)) {
      try {
        const base = new URL(`http://${host}`);
        const res = await this.transport.send({ method: "GET", url: new URL("/v2/", base) });
        await drain(res);
        if (isRegistryAnswer(res.status)) {
          this.debug(`${host} answered plain HTTP before (cached): no HTTPS attempt`);
          return this.pinged(base, res);
        }
        this.debug(`${host}: cached plain HTTP answered HTTP ${res.status}; probing again`);
      } catch (err) {
        this.debug(`${host}: cached plain HTTP failed (${(err as Error).message}); probing again`);
      }
    }
    const candidates: string[] = scheme ? [scheme] : loopback ? ["https", "http"] : ["https"];
    let lastError: unknown;
    for (const candidate of candidates) {
      const base = new URL(`${candidate}://${host}`);
      let res: HttpResponse;
      try {
        res = await this.transport.send({ method: "GET", url: new URL("/v2/", base) });
      } catch (err) {
        lastError = err;
        if (candidate === "https" && candidates.length > 1 && isPlainHttpServerError(err)) continue;
        throw err;
      }
      await drain(res);
      if (probing) this.schemes?.remember(host, candidate === "http" && isRegistryAnswer(res.status));
      return this.pinged(base, res);
    }
    throw lastError;
  }

  /** Take the answer to GET /v2/ at `base`: the scheme, and the auth challenge if any. */
  private pinged(base: URL, res: HttpResponse): void {
    this.base = base;
    this.auth = new RegistryAuth(base, this.transport, this.credentials, this.tokens);
    if (res.status === 401) {
      if (!this.auth.learn(res)) {
        throw new RegcliError("auth", `${this.registry} requires authentication but sent no usable challenge`);
      }
      return;
    }
    if (res.status >= 200 && res.status < 300) return;
    throw new RegcliError("registry", `${this.endpoint.host} is not a container registry (GET /v2/ answered HTTP ${res.status})`);
  }

  async baseUrl(): Promise<URL> {
    await this.ping();
    return this.base!;
  }

  private async url(path: string): Promise<URL> {
    try {
      return new URL(path, await this.baseUrl());
    } catch (err) {
      throw this.naming(err, path);
    }
  }

  /** A connection failure (DNS, refused, TLS, timeout) names the image it happened for, not only the host. */
  private naming(err: unknown, path: string): unknown {
    if (!(err instanceof RegcliError) || err.kind !== "network") return err;
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags)\/([^/?]*)/.exec(path);
    if (!m) return err;
    const [, repo, kind, rest] = m as unknown as [string, string, string, string];
    const name = `${this.registry}/${repo}`;
    const subject = kind === "tags" || (kind === "blobs" && !rest.includes(":")) ? `repository ${name}` : `image ${name}${rest.includes(":") ? "@" : ":"}${rest}`;
    return new RegcliError("network", `${err.message} (${subject})`, { hint: err.hint, code: err.code, cause: err.cause ?? err });
  }

  /** Send a request with the right Authorization, refreshing it once on 401 when the body can be resent. */
  private async call(opts: CallOptions): Promise<HttpResponse> {
    try {
      return await this.authorizedCall(opts);
    } catch (err) {
      throw this.naming(err, opts.url.pathname);
    }
  }

  private async authorizedCall(opts: CallOptions): Promise<HttpResponse> {
    await this.ping();
    const auth = this.auth!;
    // Credentials go only to the registry's own origin, never to a Location on another host.
    const sameOrigin = opts.url.origin === this.base!.origin;
    const headers = { ...opts.headers };
    const header = sameOrigin ? await auth.header(opts.scopes, opts.freshToken) : undefined;
    if (header) headers.authorization = header;
    const send = () =>
      this.transport.send({
        method: opts.method,
        url: opts.url,
        headers,
        body: opts.body,
        followRedirects: opts.followRedirects,
        idempotent: opts.idempotent,
      });
    let res = await send();
    const replayable = opts.body === undefined || typeof opts.body === "string" || Buffer.isBuffer(opts.body);
    if (res.status === 401 && sameOrigin) {
      // A token can expire mid-operation: fetch a fresh one. A streamed body cannot be sent again here, but the
      // fresh token is cached, so the caller's resume uses it.
      const fresh = await auth.refresh(res, opts.scopes);
      if (fresh && replayable) {
        await res.body.dump().catch(() => undefined);
        headers.authorization = fresh;
        res = await send();
      } else if (!fresh && !(await auth.hasCredential())) {
        await res.body.dump().catch(() => undefined);
        throw new RegcliError("auth", `authentication required by ${this.registry}`, {
          hint: `log in with regcli login ${this.registry}`,
          code: "UNAUTHORIZED",
        });
      }
    }
    // Docker Hub reports its pull limit on manifest answers: counted GETs slow down before it runs out.
    if (opts.url.pathname.includes("/manifests/")) this.pacer.observe(res);
    return res;
  }

  /**
   * A 200 answer read whole (manifests, listings). A body cut mid-way is a transient fault like a failed
   * connect: the GET is sent again, within --retries.
   */
  private async getWhole(opts: CallOptions, limit: number, what: string): Promise<{ res: HttpResponse; bytes: Buffer }> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.call(opts);
      if (res.status !== 200) return this.fail(res, what);
      try {
        return { res, bytes: await readLimited(res, limit, what) };
      } catch (err) {
        if (err instanceof RegcliError) throw err;
        if (attempt >= this.retries || !isTransientNetworkError(err)) {
          const failure = networkError(err, res.url);
          throw new RegcliError(failure.kind, `reading ${what}: ${failure.message}${attempt > 0 ? ` (after ${attempt + 1} tries)` : ""}`, {
            hint: failure.hint,
            cause: err,
          });
        }
        this.debug(`! ${what}: ${(err as Error).message}; retry ${attempt + 1}/${this.retries}`);
        await sleep(backoffMs(attempt));
      }
    }
  }

  private async fail(res: HttpResponse, what: string): Promise<never> {
    throw await registryFailure(res, what, this.registry);
  }

  private display(repo: string, ref?: string): string {
    if (!ref) return `${this.registry}/${repo}`;
    return `${this.registry}/${repo}${ref.includes(":") ? "@" : ":"}${ref}`;
  }

  // ---- manifests ----

  /** The manifest, with the ETag it was served with (for a conditional write back: see putManifest's ifMatch). */
  async getManifest(repo: string, reference: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<ManifestData & { etag?: string }> {
    const what = `manifest ${this.display(repo, reference)}`;
    await this.pacer.pace();
    const { res, bytes } = await this.getWhole(
      { method: "GET", url: await this.url(`/v2/${repo}/manifests/${reference}`), scopes: [pullScope(repo)], headers: { accept: accept.join(", ") } },
      MAX_MANIFEST_BYTES,
      what,
    );
    const data = parseManifest(bytes, res.header("content-type"), this.display(repo, reference));
    const byDigest = reference.includes(":");
    const served = res.header("docker-content-digest");
    if (byDigest) {
      verifyBytes(bytes, reference, `${this.registry} (${what})`);
      data.digest = reference;
    } else if (served && served.startsWith("sha256:")) {
      verifyBytes(bytes, served, `${this.registry} (${what}, Docker-Content-Digest)`);
    }
    const etag = res.header("etag");
    return etag ? { ...data, etag } : data;
  }

  /** HEAD a manifest: its digest without downloading it (not counted against Docker Hub's pull limit). */
  async headManifest(repo: string, reference: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<ManifestHead | undefined> {
    const res = await this.call({
      method: "HEAD",
      url: await this.url(`/v2/${repo}/manifests/${reference}`),
      scopes: [pullScope(repo)],
      headers: { accept: accept.join(", ") },
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `manifest ${this.display(repo, reference)}`);
    let digest = res.header("docker-content-digest");
    let mediaType = res.header("content-type")?.split(";")[0]?.trim();
    let size = Number(res.header("content-length"));
    if (!digest) {
      const full = await this.getManifest(repo, reference, accept);
      digest = full.digest;
      mediaType = full.mediaType;
      size = full.bytes.length;
    }
    return { digest, mediaType, size, rateLimit: readRateLimit(res) };
  }

  /**
   * PUT a manifest. `subject`: the OCI-Subject the registry answered with, which says it has the referrers API and
   * has indexed the manifest's subject. With `ifMatch` the write is conditional on the tag's current ETag; a
   * registry that honours it answers 412 when someone else wrote first (thrown with code PRECONDITION_FAILED).
   */
  async putManifest(
    repo: string,
    reference: string,
    manifest: Pick<ManifestData, "bytes" | "mediaType" | "digest">,
    options: { ifMatch?: string } = {},
  ): Promise<{ digest: string; subject?: string }> {
    const what = `manifest ${this.display(repo, reference)}`;
    let res: HttpResponse;
    for (let attempt = 0; ; attempt++) {
      res = await this.call({
        method: "PUT",
        url: await this.url(`/v2/${repo}/manifests/${reference}`),
        scopes: [pushScope(repo)],
        headers: { "content-type": manifest.mediaType, ...(options.ifMatch && { "if-match": options.ifMatch }) },
        body: manifest.bytes,
      });
      if (res.status !== 400) break;
      // Distribution 2.x briefly does not see a blob while another client uploads the same one (8 concurrent
      // attaches sharing the empty config): a manifest naming it is refused with MANIFEST_BLOB_UNKNOWN although
      // our upload of it succeeded. Sent again after a pause, it goes through.
      const failure = await registryFailure(res, `push of ${what}`, this.registry);
      if (failure.code !== "MANIFEST_BLOB_UNKNOWN" || attempt >= this.retries) throw failure;
      this.debug(`! push of ${what}: ${failure.message}; retry ${attempt + 1}/${this.retries}`);
      await sleep(backoffMs(attempt));
    }
    if (res.status === 412 && options.ifMatch) {
      await res.body.dump().catch(() => undefined);
      throw new RegcliError("registry", `${what} changed while it was being updated (HTTP 412)`, { code: "PRECONDITION_FAILED" });
    }
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) return this.fail(res, `push of ${what}`);
    await res.body.dump().catch(() => undefined);
    const served = res.header("docker-content-digest");
    if (served && served.startsWith("sha256:") && manifest.digest.startsWith("sha256:") && served !== manifest.digest) {
      throw new RegcliError("integrity", `${this.registry} stored ${what} under digest ${served}, expected ${manifest.digest}`);
    }
    const subject = res.header("oci-subject");
    return { digest: manifest.digest, ...(subject && { subject }) };
  }

  async deleteManifest(repo: string, digest: string): Promise<void> {
    const what = `manifest ${this.display(repo, digest)}`;
    const res = await this.call({
      method: "DELETE",
      url: await this.url(`/v2/${repo}/manifests/${digest}`),
      scopes: [deleteScope(repo)],
    });
    if (res.status === 202 || res.status === 200 || res.status === 204) {
      await res.body.dump().catch(() => undefined);
      return;
    }
    if (res.status === 405) {
      await res.body.dump().catch(() => undefined);
      throw new RegcliError("registry", `${this.registry} does not allow deleting ${what} (HTTP 405)`, {
        hint: "deletes are disabled on this registry (for Distribution: storage.delete.enabled: true)",
        code: "UNSUPPORTED",
      });
    }
    return this.fail(res, `delete of ${what}`);
  }

  /**
   * Remove one tag, leaving its manifest (OCI 1.1 DELETE /v2/<name>/manifests/<tag>). Registries that can only
   * delete by digest refuse it: Distribution 2.8 answers 400 DIGEST_INVALID (405 UNSUPPORTED with deletes off).
   */
  async deleteTag(repo: string, tag: string): Promise<void> {
    const what = this.display(repo, tag);
    const res = await this.call({ method: "DELETE", url: await this.url(`/v2/${repo}/manifests/${tag}`), scopes: [deleteScope(repo)] });
    if (res.status === 202 || res.status === 200 || res.status === 204) {
      await res.body.dump().catch(() => undefined);
      return;
    }
    if (res.status === 400 || res.status === 405) {
      const failure = await registryFailure(res, `untag of ${what}`, this.registry);
      throw new RegcliError("registry", `${this.registry} cannot remove only the tag ${what} (${failure.code ?? `HTTP ${res.status}`}): it can only delete manifests (by digest)${res.status === 405 ? ", or deletes are disabled" : ""}`, {
        hint: `regcli delete ${what} deletes the manifest with every tag pointing at it`,
        code: failure.code ?? "UNSUPPORTED",
      });
    }
    return this.fail(res, `untag of ${what}`);
  }

  // ---- referrers ----

  /**
   * GET /v2/<name>/referrers/<digest>: every page of the referrers API's index (Link rel=next on the same host),
   * each an OCI image index within the manifest size limit. With `artifactType` the registry is asked to filter;
   * `filtered` says whether it did (OCI-Filters-Applied). Undefined when the registry has no referrers API: the
   * distribution spec has registries with the API never answer 404 here, and those without it do (Distribution
   * 2.8: a plain-text "404 page not found"); the caller then reads the referrers tag schema.
   */
  async getReferrers(repo: string, digest: string, artifactType?: string): Promise<{ manifests: Descriptor[]; filtered: boolean } | undefined> {
    const what = `referrers of ${this.display(repo, digest)}`;
    const query = artifactType === undefined ? "" : `?${new URLSearchParams({ artifactType })}`;
    const first = await this.url(`/v2/${repo}/referrers/${digest}${query}`);
    const manifests: Descriptor[] = [];
    let filtered = artifactType !== undefined;
    let pages = 0;
    try {
      for await (const { res, bytes } of this.pageBodies(first, { scopes: [pullScope(repo)], headers: { accept: MediaType.OciIndex } }, what, MAX_MANIFEST_BYTES)) {
        const where = `${this.registry} (${what})`;
        manifests.push(...referrersIndex(parseManifest(bytes, res.header("content-type"), where), where));
        const applied = (res.header("oci-filters-applied") ?? "").split(",").map((f) => f.trim());
        if (!applied.includes("artifactType")) filtered = false;
        pages++;
      }
    } catch (err) {
      if (!(err instanceof RegcliError && err.kind === "not-found" && pages === 0)) throw err;
      // Only a 404 without an OCI error code says there is no API (Distribution's plain "404 page not found"): one
      // with a code is a registry with the API answering for a repository (NAME_UNKNOWN) or a subject (older Quay:
      // MANIFEST_UNKNOWN) it lacks, and what is learned here holds for the whole registry, a server's life long.
      if (err.code === "404") this.referrersApi = false; // the bare status: the answer carried no error code
      return undefined;
    }
    this.referrersApi = true;
    return { manifests, filtered };
  }

  // ---- blobs ----

  async headBlob(repo: string, digest: string): Promise<BlobInfo | undefined> {
    const res = await this.call({
      method: "HEAD",
      url: await this.url(`/v2/${repo}/blobs/${digest}`),
      scopes: [pullScope(repo)],
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `blob ${this.display(repo, digest)}`);
    return { digest, size: Number(res.header("content-length") ?? -1) };
  }

  /**
   * The blob's body from byte `offset` (redirects to storage hosts followed without credentials). Not verified
   * here. A 206 must start exactly at `offset`; a server that ignores Range (200) has the bytes before it
   * skipped, so the body always starts where it was asked to. `size` is the whole blob's, when known.
   */
  async getBlob(repo: string, digest: string, offset = 0): Promise<{ body: Readable; size: number | undefined; url: URL }> {
    const what = `blob ${this.display(repo, digest)}`;
    const res = await this.call({
      method: "GET",
      url: await this.url(`/v2/${repo}/blobs/${digest}`),
      scopes: [pullScope(repo)],
      headers: offset > 0 ? { range: `bytes=${offset}-` } : undefined,
    });
    if (offset > 0 && res.status === 206) {
      const range = res.header("content-range") ?? "";
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range.trim());
      if (!m || Number(m[1]) !== offset) {
        res.body.destroy();
        throw new RegcliError("registry", `${res.url.host} answered a request for ${what} from byte ${offset} with Content-Range "${range}"`);
      }
      return { body: res.body, size: m[3] === "*" ? undefined : Number(m[3]), url: res.url };
    }
    if (res.status !== 200) return this.fail(res, what);
    const length = res.header("content-length");
    const size = length === undefined ? undefined : Number(length);
    return { body: offset > 0 ? pipeline(res.body, skipBytes(offset), () => undefined) : res.body, size, url: res.url };
  }

  /** Start an upload; returns its absolute location (resolved against the response that sent it). */
  async startUpload(repo: string, extraScopes: string[] = [], query = ""): Promise<{ status: number; location: URL | undefined; chunkMin?: number }> {
    const res = await this.call({
      method: "POST",
      url: await this.url(`/v2/${repo}/blobs/uploads/${query}`),
      scopes: [pushScope(repo), ...extraScopes],
      headers: { "content-length": "0" },
      body: "",
      // Sending it again at worst leaves an unused upload session, which registries expire.
      idempotent: true,
    });
    if (res.status !== 202 && res.status !== 201) return this.fail(res, `upload to ${this.display(repo)}`);
    await res.body.dump().catch(() => undefined);
    const location = res.header("location");
    if (res.status === 202 && !location) {
      throw new RegcliError("registry", `${this.registry} started an upload to ${repo} without a Location`);
    }
    const chunkMin = Number(res.header("oci-chunk-min-length"));
    return { status: res.status, location: location ? this.uploadLocation(res, location) : undefined, chunkMin: chunkMin > 0 ? chunkMin : undefined };
  }

  /** An upload Location resolved against the response that sent it; an https to http downgrade is refused. */
  private uploadLocation(res: HttpResponse, location: string): URL {
    const resolved = new URL(location, res.url);
    if (res.url.protocol === "https:" && resolved.protocol !== "https:") {
      throw new RegcliError("registry", `${this.registry} sent an upload location that downgrades to ${resolved.protocol}`);
    }
    return resolved;
  }

  /** Where an open upload stands (GET on its location): the bytes received and the location to continue at. */
  async uploadStatus(repo: string, location: URL): Promise<{ offset: number; location: URL } | undefined> {
    const res = await this.call({ method: "GET", url: location, scopes: [pushScope(repo)] });
    await res.body.dump().catch(() => undefined);
    if (res.status !== 204 && res.status !== 200) return undefined;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(res.header("range")?.trim() ?? "");
    // "0-0" is what Distribution sends for both 0 and 1 bytes: take 0, the safe reading.
    const offset = m && Number(m[1]) > 0 ? Number(m[1]) + 1 : 0;
    const next = res.header("location");
    return { offset, location: next ? this.uploadLocation(res, next) : location };
  }

  /** Append one chunk at `start` (PATCH); returns the location to continue at. */
  async patchUpload(repo: string, location: URL, body: Buffer | Readable, start: number, length: number): Promise<URL> {
    const res = await this.call({
      method: "PATCH",
      url: location,
      scopes: [pushScope(repo)],
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(length),
        "content-range": `${start}-${start + length - 1}`,
      },
      body,
    });
    if (res.status !== 202 && res.status !== 204) throw await uploadFailure(res, `upload to ${this.display(repo)}`, this.registry);
    await res.body.dump().catch(() => undefined);
    const next = res.header("location");
    return next ? this.uploadLocation(res, next) : location;
  }

  /** Close an upload with PUT ?digest=, sending `body` (the rest of the blob) when given. */
  async completeUpload(repo: string, location: URL, blob: BlobInfo, body?: Buffer | Readable, length = 0): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", blob.digest);
    const res = await this.call({
      method: "PUT",
      url,
      scopes: [pushScope(repo)],
      headers: { "content-type": "application/octet-stream", "content-length": String(body ? length : 0) },
      body: body ?? Buffer.alloc(0),
    });
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      throw await uploadFailure(res, `upload of blob ${blob.digest} to ${this.display(repo)}`, this.registry);
    }
    await res.body.dump().catch(() => undefined);
  }

  /** Cross-repository mount. Returns true when mounted; otherwise the upload location the registry opened. */
  async mountBlob(
    repo: string,
    digest: string,
    fromRepo: string,
  ): Promise<{ mounted: true } | { mounted: false; location: URL; chunkMin?: number }> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const started = await this.startUpload(repo, fromRepo === repo ? [] : [pullScope(fromRepo)], query);
    if (started.status === 201) return { mounted: true };
    return { mounted: false, location: started.location!, chunkMin: started.chunkMin };
  }

  // ---- listings ----

  /** Every page of a paginated answer, following `Link: rel=next` on the same host, each read whole within `limit`. */
  private async *pageBodies(first: URL, opts: Omit<CallOptions, "url" | "method">, what: string, limit: number): AsyncGenerator<{ res: HttpResponse; bytes: Buffer }> {
    let url: URL | undefined = first;
    const seen = new Set<string>();
    while (url) {
      if (seen.has(url.href)) throw new RegcliError("registry", `${this.registry} sent a pagination loop for ${what}`);
      seen.add(url.href);
      const page = await this.getWhole({ ...opts, method: "GET", url }, limit, what);
      yield page;
      const next = nextLink(page.res);
      if (next && next.origin !== url.origin) {
        throw new RegcliError("registry", `${this.registry} paginated ${what} to another host (${next.host})`);
      }
      url = next;
    }
  }

  /** Each page's names, and whether the registry linked a next page. */
  private async *pages(first: URL, scopes: string[], what: string, field: "tags" | "repositories"): AsyncGenerator<{ items: string[]; more: boolean }> {
    for await (const { res, bytes: body } of this.pageBodies(first, { scopes }, what, MAX_LIST_PAGE_BYTES)) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        throw new RegcliError("registry", `${this.registry} sent invalid JSON for ${what}`);
      }
      const items = parsed[field];
      if (items !== null && items !== undefined && !Array.isArray(items)) {
        throw new RegcliError("registry", `${this.registry} sent a malformed ${what}`);
      }
      yield { items: (items ?? []).filter((x): x is string => typeof x === "string"), more: nextLink(res) !== undefined };
    }
  }

  async listTags(repo: string, options: ListOptions = {}): Promise<string[]> {
    return (await this.tagsPage(repo, options)).items;
  }

  /** The tags as listTags lists them, and with `onePage` whether the registry has more after them. */
  tagsPage(repo: string, options: ListOptions = {}): Promise<{ items: string[]; more: boolean }> {
    return this.listing(`/v2/${repo}/tags/list`, options, [pullScope(repo)], `tags of ${this.display(repo)}`, "tags");
  }

  async catalog(options: ListOptions = {}): Promise<string[]> {
    return (await this.listing("/v2/_catalog", options, [CATALOG_SCOPE], `repository list of ${this.registry}`, "repositories")).items;
  }

  /** Every page of a listing from `last` on, or only the first (onePage: `more` tells whether another was linked). */
  private async listing(path: string, options: ListOptions, scopes: string[], what: string, field: "tags" | "repositories"): Promise<{ items: string[]; more: boolean }> {
    const query = new URLSearchParams({ n: String(options.pageSize ?? PAGE_SIZE), ...(options.last !== undefined && { last: options.last }) });
    const items: string[] = [];
    let more = false;
    for await (const page of this.pages(await this.url(`${path}?${query}`), scopes, what, field)) {
      items.push(...page.items);
      more = page.more;
      if (options.onePage) break;
    }
    return { items, more };
  }

  /** Check credentials (login): ping, then ask for a token (Bearer) or /v2/ with Basic. */
  async checkLogin(): Promise<void> {
    await this.ping();
    const auth = this.auth!;
    if (!auth.scheme) return;
    const res = await this.call({ method: "GET", url: await this.url("/v2/"), scopes: [], freshToken: true });
    await res.body.dump().catch(() => undefined);
    if (res.status === 401 || res.status === 403) {
      throw new RegcliError("auth", `login to ${this.registry} failed: invalid username or password`);
    }
    if (res.status !== 200) throw await registryFailure(res, "login", this.registry);
  }
}

/** Statuses after which an upload is worth resuming: the registry or a proxy in front of it had a bad moment. */
const RESUMABLE_UPLOAD_STATUS = new Set([401, 408, 429, 500, 502, 503, 504]);

/**
 * A failed upload request, marked `resumable` when going on may work, and `sessionLost` when the registry no longer
 * accepts the upload session (a new one must be started; asking it for the offset would get the same answer).
 */
export class UploadError extends RegcliError {
  constructor(
    base: RegcliError,
    readonly resumable: boolean,
    readonly sessionLost = false,
  ) {
    super(base.kind, base.message, { hint: base.hint, code: base.code, cause: base });
  }
}

/** Codes of an upload the registry no longer knows (finished by a request whose answer was lost, or dropped). */
const LOST_UPLOAD_CODES = new Set(["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"]);

async function uploadFailure(res: HttpResponse, what: string, host: string): Promise<UploadError> {
  const failure = await registryFailure(res, what, host);
  const lost = LOST_UPLOAD_CODES.has(failure.code ?? "");
  return new UploadError(failure, lost || RESUMABLE_UPLOAD_STATUS.has(res.status), lost);
}

/** Drop the first `count` bytes of a stream (a server that answered a Range request with the whole blob). */
function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        callback();
        return;
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      callback(null, rest);
    },
  });
}
