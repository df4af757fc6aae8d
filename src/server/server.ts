import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { localFileError, RegcliError } from "../errors.js";
import { CacheRetention } from "./retention.js";
import { PullThroughCache, upstreamFailure, type CachedBlob, type ProxyOptions, type UpstreamRepository } from "./proxy.js";
import { sendFile } from "./send-file.js";
import { RegistryStorage, StorageError } from "./storage.js";

export interface ServeOptions {
  addr: string;
  root: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Checks Basic credentials; absent means open access. */
  authenticate?: (username: string, password: string) => Promise<boolean>;
  readOnly?: boolean;
  deleteEnabled?: boolean;
  log?: (line: string) => void;
  /** Uploads untouched this long are removed (default one day). */
  uploadExpiryMs?: number;
  /** A pull-through cache (--proxy, --proxy-namespace): which repositories are read from which upstream. */
  proxy?: ProxyOptions;
  /** With `proxy`: keep the storage's blobs under this many bytes by evicting cached ones (--proxy-max-size). */
  cacheMaxBytes?: number;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const NAME = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*";
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ROUTES = {
  manifest: new RegExp(`^/v2/(${NAME})/manifests/([^/]+)$`),
  blob: new RegExp(`^/v2/(${NAME})/blobs/(sha256:[a-f0-9]{64}|[^/]+:[^/]+)$`),
  uploads: new RegExp(`^/v2/(${NAME})/blobs/uploads/?$`),
  upload: new RegExp(`^/v2/(${NAME})/blobs/uploads/([^/]+)$`),
  tags: new RegExp(`^/v2/(${NAME})/tags/list$`),
  referrers: new RegExp(`^/v2/(${NAME})/referrers/([^/]+)$`),
};
const INDEX_TYPES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
  res.end(body);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, "SIZE_INVALID", `body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new HttpError(413, "SIZE_INVALID", `body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function paginate(items: string[], url: URL, path: string): { page: string[]; link?: string } {
  const n = url.searchParams.has("n") ? Number(url.searchParams.get("n")) : undefined;
  const last = url.searchParams.get("last");
  let rest = last ? items.filter((i) => i > last) : items;
  if (n === undefined || !Number.isInteger(n) || n < 0) return { page: rest };
  const page = rest.slice(0, n);
  rest = rest.slice(n);
  if (!rest.length || !page.length) return { page };
  return { page, link: nextPage(path, n, page) };
}

/** The Link to the page after `page` (this server's own path: a client pages through the server, never around it). */
function nextPage(path: string, n: number, page: string[]): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
}

/** An OCI Distribution Spec 1.1 registry on a directory (`regcli serve`). */
export class RegistryServer {
  readonly storage: RegistryStorage;
  private readonly cache: PullThroughCache | undefined;
  private readonly retention: CacheRetention | undefined;
  private server: Server | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(readonly options: ServeOptions) {
    this.storage = new RegistryStorage(options.root);
    this.cache = options.proxy && new PullThroughCache(this.storage, options.proxy, (line) => options.log?.(line));
    const proxy = options.proxy;
    if (proxy && options.cacheMaxBytes !== undefined) {
      this.retention = new CacheRetention(this.storage, { maxBytes: options.cacheMaxBytes, ttlMs: proxy.ttlMs, cached: proxy.cached, fetching: (digest) => this.cache!.fetching(digest), log: (line) => options.log?.(line) });
    }
  }

  async start(): Promise<AddressInfo> {
    const { host, port } = splitAddr(this.options.addr);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.options.tlsCert
      ? createHttpsServer({ cert: readFileSync(this.options.tlsCert), key: readFileSync(this.options.tlsKey ?? "") }, handler)
      : createHttpServer(handler);
    this.server.keepAliveTimeout = 30_000;
    await this.storage.init();
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    const expiry = this.options.uploadExpiryMs ?? 24 * 3600_000;
    await this.storage.expireUploads(expiry);
    this.expiryTimer = setInterval(() => void this.storage.expireUploads(expiry).catch(() => undefined), Math.min(expiry, 3600_000));
    this.expiryTimer.unref();
    this.retention?.start();
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    clearInterval(this.expiryTimer);
    await this.retention?.stop();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    res.on("finish", () => {
      // The socket is gone when an error answer destroyed it mid-body (e.g. the disk filled during an upload).
      this.options.log?.(`${req.socket?.remoteAddress ?? "-"} "${req.method} ${req.url} HTTP/${req.httpVersion}" ${res.statusCode} ${res.getHeader("content-length") ?? "-"} ${Date.now() - started}ms`);
    });
    res.setHeader("docker-distribution-api-version", "registry/2.0");
    try {
      if (this.options.authenticate && !(await this.authorized(req))) {
        req.resume();
        throw new HttpError(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": 'Basic realm="regcli"' });
      }
      await this.route(req, res);
    } catch (err) {
      req.resume();
      if (err instanceof HttpError || err instanceof StorageError) {
        sendError(res, err.status, err.code, err.message, err instanceof HttpError ? err.headers : {});
      } else if (["ENOSPC", "EDQUOT"].includes((err as NodeJS.ErrnoException).code ?? "")) {
        // 507, not 500: a client retries a 500, and a full disk stays full.
        this.options.log?.(`error: ${localFileError(err, this.options.root)?.toLine() ?? String(err)}`);
        sendError(res, 507, "UNKNOWN", "the registry's storage is full (no space left on its device); free space on the server, or remove images and run `regcli serve gc`");
      } else if (clientWentAway(err, req, res)) {
        // A client that stops reading (a cancelled pull) is not the server's error: one line, no stack.
        this.options.log?.(`${req.socket?.remoteAddress ?? "-"} "${req.method} ${req.url} HTTP/${req.httpVersion}" closed by the client after ${res.socket?.bytesWritten ?? "?"} bytes, ${Date.now() - started}ms`);
      } else {
        this.options.log?.(`error: ${localFileError(err, this.options.root)?.toLine() ?? (err as Error).stack ?? err}`);
        sendError(res, 500, "UNKNOWN", "internal error");
      }
    }
  }

  private async authorized(req: IncomingMessage): Promise<boolean> {
    const header = req.headers.authorization;
    if (!header?.startsWith("Basic ")) return false;
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    return this.options.authenticate!(decoded.slice(0, colon), decoded.slice(colon + 1));
  }

  private write(name: string): void {
    if (this.options.readOnly) throw new HttpError(405, "UNSUPPORTED", "the registry is read-only");
    const up = this.cache?.upstream(name);
    if (up) throw new HttpError(405, "UNSUPPORTED", `${name} is a read-only cache of ${up.description}`);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://registry");
    const path = url.pathname;
    const method = req.method ?? "GET";
    let m: RegExpExecArray | null;
    if (path === "/v2/" || path === "/v2") {
      res.writeHead(200, { "content-type": "application/json", "content-length": "2" }).end("{}");
      return;
    }
    if (path === "/v2/_catalog" && method === "GET") {
      const catalog = this.cache?.options.catalog;
      const repositories = await this.fromUpstream(catalog && (async () => (await catalog()).sort()), "the catalog", () => this.storage.repositories());
      const { page, link } = paginate(repositories, url, "/v2/_catalog");
      return json(res, 200, { repositories: page }, link ? { link } : {});
    }
    if ((m = ROUTES.tags.exec(path)) && method === "GET") {
      const name = m[1]!;
      const up = this.cache?.upstream(name);
      const local = async () => {
        if (!(await this.storage.repositoryExists(name))) throw new HttpError(404, "NAME_UNKNOWN", `repository ${name} is not known`);
        return this.storage.tags(name);
      };
      const tagsPath = `/v2/${name}/tags/list`;
      const n = Number(url.searchParams.get("n") ?? NaN);
      // A page asked for (n) is one page asked of upstream, with the client's n and last; a Link when upstream has more.
      // An upstream that ignores n and last (Distribution 2.8 lists every tag, unsorted) is paged here.
      const onePage = async (up: UpstreamRepository) => {
        const last = url.searchParams.get("last") || undefined;
        const { items, more } = await up.tagsPage({ pageSize: n, last, onePage: true });
        // An upstream that pages (more) but answered tags up to `last` ignored it (or pages by other means): then
        // its pages cannot be followed by `last`, and the whole list is paged here.
        if (more && last !== undefined && items.some((tag) => tag <= last)) return paginate((await up.tagsPage({})).items.sort(), url, tagsPath);
        const { page, link } = paginate(items.sort(), url, tagsPath);
        return { page, link: link ?? (more && page.length ? nextPage(tagsPath, n, page) : undefined) };
      };
      const fromUpstream = up && (Number.isInteger(n) && n > 0 ? () => onePage(up) : async () => paginate((await up.tagsPage({})).items.sort(), url, tagsPath));
      const { page, link } = await this.fromUpstream(fromUpstream, `the tags of ${name}`, async () => paginate(await local(), url, tagsPath));
      return json(res, 200, { name, tags: page }, link ? { link } : {});
    }
    if ((m = ROUTES.referrers.exec(path)) && method === "GET") return this.referrers(res, m[1]!, m[2]!, url);
    if ((m = ROUTES.manifest.exec(path))) return this.manifest(req, res, method, m[1]!, m[2]!);
    if ((m = ROUTES.uploads.exec(path)) && method === "POST") return this.startUpload(req, res, m[1]!, url);
    if ((m = ROUTES.upload.exec(path))) return this.upload(req, res, method, m[1]!, m[2]!, url);
    if ((m = ROUTES.blob.exec(path))) {
      // The cache's retention never evicts a blob while it is served, and counts the use.
      const release = method === "GET" ? this.retention?.serving(m[2]!) : undefined;
      try {
        if (release) await this.retention!.removed(m[2]!);
        return await this.blob(req, res, method, m[1]!, m[2]!);
      } finally {
        release?.();
      }
    }
    throw new HttpError(404, "NOT_FOUND", `no route for ${method} ${path}`);
  }

  /**
   * A listing from upstream when it answers (Distribution's proxy does the same), else what the cache holds. Only
   * "not found" from upstream is final; what the cache does not hold either is upstream's failure.
   */
  private async fromUpstream<T>(upstream: (() => Promise<T>) | undefined, what: string, local: () => Promise<T>): Promise<T> {
    if (!upstream) return local();
    try {
      return await upstream();
    } catch (err) {
      if (!(err instanceof RegcliError)) throw err;
      if (err.kind === "not-found") throw new HttpError(404, "NAME_UNKNOWN", err.message);
      const cached = await local().catch((missing: unknown) => {
        if (missing instanceof HttpError && missing.status === 404) upstreamFailure(err, what, "NAME_UNKNOWN");
        throw missing;
      });
      this.options.log?.(`warning: ${what} from the cache only: ${err.message}`);
      return cached;
    }
  }

  private async manifest(req: IncomingMessage, res: ServerResponse, method: string, name: string, reference: string): Promise<void> {
    const byDigest = reference.includes(":");
    if (byDigest ? !DIGEST.test(reference) : !TAG.test(reference)) {
      // A read of a reference that cannot exist finds nothing (the conformance suite asks for
      // .INVALID_MANIFEST_NAME); writes and deletes are refused with the spec's code.
      if (method === "GET" || method === "HEAD") throw new HttpError(404, "MANIFEST_UNKNOWN", `manifest ${name}:${reference} is not known`);
      throw new HttpError(400, byDigest ? "DIGEST_INVALID" : "TAG_INVALID", `invalid reference ${reference}`);
    }
    const up = this.cache?.upstream(name);
    if (up && (method === "GET" || method === "HEAD")) return this.cachedManifest(req, res, method, up, name, reference);
    if (method === "GET" || method === "HEAD") {
      const digest = await this.storage.resolve(name, reference);
      const found = digest ? await this.storage.getManifest(name, digest) : undefined;
      if (!digest || !found) throw new HttpError(404, "MANIFEST_UNKNOWN", `manifest ${name}:${reference} is not known`);
      res.writeHead(200, {
        "content-type": found.mediaType,
        "content-length": String(found.bytes.length),
        "docker-content-digest": digest,
        etag: `"${digest}"`,
      });
      res.end(method === "HEAD" ? undefined : found.bytes);
      return;
    }
    if (method === "PUT") return this.putManifest(req, res, name, reference, byDigest);
    if (method === "DELETE") {
      this.write(name);
      if (!this.options.deleteEnabled) throw new HttpError(405, "UNSUPPORTED", "deletes are disabled (start with --delete)");
      if (byDigest) {
        if (!(await this.storage.deleteManifest(name, reference))) throw new HttpError(404, "MANIFEST_UNKNOWN", `manifest ${reference} is not known`);
      } else if (!(await this.storage.deleteTag(name, reference))) {
        throw new HttpError(404, "MANIFEST_UNKNOWN", `tag ${reference} is not known`);
      }
      res.writeHead(202, { "content-length": "0" }).end();
      return;
    }
    throw new HttpError(405, "UNSUPPORTED", `${method} is not supported on manifests`);
  }

  private async cachedManifest(req: IncomingMessage, res: ServerResponse, method: string, up: UpstreamRepository, name: string, reference: string): Promise<void> {
    const accept = (req.headers.accept ?? "")
      .split(",")
      .map((t) => t.split(";")[0]!.trim().toLowerCase())
      .filter(Boolean);
    const any = accept.length === 0 || accept.some((t) => t === "*/*" || t === "application/*");
    const found = await this.cache!.manifest(up, name, reference, any ? undefined : accept);
    this.retention?.serving(found.digest)(); // a use: a manifest fetched by digest stays within the TTL of its last use
    const headers: Record<string, string> = {
      "content-type": found.mediaType,
      "content-length": String(found.bytes.length),
      "docker-content-digest": found.digest,
      etag: `"${found.digest}"`,
    };
    if (found.stale) headers.warning = '110 - "Response is Stale"';
    res.writeHead(200, headers);
    res.end(method === "HEAD" ? undefined : found.bytes);
  }

  private async putManifest(req: IncomingMessage, res: ServerResponse, name: string, reference: string, byDigest: boolean): Promise<void> {
    this.write(name);
    const bytes = await readBody(req, MAX_MANIFEST_BYTES).catch((err) => {
      if (err instanceof HttpError && err.code === "SIZE_INVALID") throw new HttpError(413, "MANIFEST_INVALID", `manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
      throw err;
    });
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (byDigest && digest !== reference) throw new HttpError(400, "DIGEST_INVALID", `manifest digest ${digest} does not match ${reference}`);
    let doc: { mediaType?: string; schemaVersion?: number; config?: { digest: string }; layers?: Array<{ digest: string }>; manifests?: Array<{ digest: string }>; subject?: { digest: string }; artifactType?: string; annotations?: Record<string, string> };
    try {
      doc = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new HttpError(400, "MANIFEST_INVALID", "manifest is not valid JSON");
    }
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
    const mediaType = doc.mediaType ?? contentType;
    if (!mediaType) throw new HttpError(400, "MANIFEST_INVALID", "manifest has no media type");
    if (doc.mediaType && contentType && contentType !== doc.mediaType) {
      throw new HttpError(400, "MANIFEST_INVALID", `Content-Type ${contentType} disagrees with mediaType ${doc.mediaType}`);
    }
    if (doc.schemaVersion !== 2) throw new HttpError(400, "MANIFEST_INVALID", "schemaVersion must be 2");
    if (doc.manifests && (doc.layers || doc.config)) throw new HttpError(400, "MANIFEST_INVALID", "manifest has both manifests and layers");
    if (INDEX_TYPES.includes(mediaType) || doc.manifests) {
      for (const child of doc.manifests ?? []) {
        if (!(await this.storage.hasManifest(name, child.digest))) {
          throw new HttpError(400, "MANIFEST_BLOB_UNKNOWN", `child manifest ${child.digest} is not in ${name}`);
        }
      }
    } else {
      if (!doc.config || !Array.isArray(doc.layers)) throw new HttpError(400, "MANIFEST_INVALID", "image manifest needs config and layers");
      for (const blob of [doc.config, ...doc.layers]) {
        if ((await this.storage.blobSize(name, blob.digest)) === undefined) {
          throw new HttpError(400, "MANIFEST_BLOB_UNKNOWN", `blob ${blob.digest} is not in ${name}`);
        }
      }
    }
    await this.storage.putManifest(name, digest, bytes, mediaType, byDigest ? undefined : reference);
    const headers: Record<string, string> = { location: `/v2/${name}/manifests/${digest}`, "docker-content-digest": digest, "content-length": "0" };
    if (doc.subject?.digest) {
      await this.storage.indexReferrer(name, doc.subject.digest, {
        mediaType,
        digest,
        size: bytes.length,
        ...(doc.artifactType || doc.config ? { artifactType: doc.artifactType ?? (doc.config as { mediaType?: string }).mediaType } : {}),
        ...(doc.annotations ? { annotations: doc.annotations } : {}),
      });
      headers["oci-subject"] = doc.subject.digest;
    }
    res.writeHead(201, headers).end();
  }

  private async referrers(res: ServerResponse, name: string, subject: string, url: URL): Promise<void> {
    if (!DIGEST.test(subject)) throw new HttpError(400, "DIGEST_INVALID", `invalid digest ${subject}`);
    const filter = url.searchParams.get("artifactType");
    const up = this.cache?.upstream(name);
    const local = () => this.storage.referrers(name, subject);
    let manifests = up
      ? await this.fromUpstream(async () => (await up.referrers(subject, { artifactType: filter ?? undefined })) as unknown as Array<Record<string, unknown>>, `the referrers of ${name}@${subject}`, local)
      : await local();
    const headers: Record<string, string> = {};
    if (filter) {
      manifests = manifests.filter((d) => d.artifactType === filter);
      headers["oci-filters-applied"] = "artifactType";
    }
    json(res, 200, { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }, headers, "application/vnd.oci.image.index.v1+json");
  }

  private async blob(req: IncomingMessage, res: ServerResponse, method: string, name: string, digest: string): Promise<void> {
    if (!DIGEST.test(digest)) throw new HttpError(400, "DIGEST_INVALID", `invalid digest ${digest}`);
    if (method === "DELETE") {
      this.write(name);
      if (!this.options.deleteEnabled) throw new HttpError(405, "UNSUPPORTED", "deletes are disabled (start with --delete)");
      if (!(await this.storage.unlinkBlob(name, digest))) throw new HttpError(404, "BLOB_UNKNOWN", `blob ${digest} is not in ${name}`);
      res.writeHead(202, { "content-length": "0" }).end();
      return;
    }
    if (method !== "GET" && method !== "HEAD") throw new HttpError(405, "UNSUPPORTED", `${method} is not supported on blobs`);
    const up = this.cache?.upstream(name);
    let size: number | undefined;
    // A blob being fetched into the cache is streamed as it grows (`open`); any other is a whole file (`path`).
    let blob: Pick<CachedBlob, "path" | "open"> = { path: this.storage.blobPath(digest) };
    if (up && method === "HEAD") size = await this.cache!.blobSize(up, name, digest);
    else if (up) ({ size, ...blob } = await this.cache!.blob(up, name, digest));
    else size = await this.storage.blobSize(name, digest);
    if (size === undefined) throw new HttpError(404, "BLOB_UNKNOWN", `blob ${digest} is not in ${name}`);
    /** The answer's status and headers, then its bytes `start` to `end` (a file is opened first: gone is a 404). */
    const send = async (status: number, head: Record<string, string>, start: number, end: number): Promise<void> => {
      if (method === "HEAD") return void res.writeHead(status, head).end();
      if (!blob.path) {
        res.writeHead(status, head);
        return pipeline(blob.open!({ start, end }), res);
      }
      const file = await open(blob.path, "r").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") throw new HttpError(404, "BLOB_UNKNOWN", `blob ${digest} is not in ${name}`);
        throw err;
      });
      res.writeHead(status, head);
      return sendFile(file, res, start, end);
    };
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
      etag: `"${digest}"`,
      "accept-ranges": "bytes",
    };
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    if (range && (range[1] || range[2])) {
      let start = range[1] ? Number(range[1]) : size - Number(range[2]);
      let end = range[1] && range[2] ? Number(range[2]) : size - 1;
      start = Math.max(0, start);
      end = Math.min(end, size - 1);
      if (start > end || start >= size) {
        throw new HttpError(416, "RANGE_INVALID", "range not satisfiable", { "content-range": `bytes */${size}` });
      }
      return send(206, { ...headers, "content-length": String(end - start + 1), "content-range": `bytes ${start}-${end}/${size}` }, start, end);
    }
    return send(200, { ...headers, "content-length": String(size) }, 0, size - 1);
  }

  private async startUpload(req: IncomingMessage, res: ServerResponse, name: string, url: URL): Promise<void> {
    this.write(name);
    const mount = url.searchParams.get("mount");
    const from = url.searchParams.get("from");
    if (mount && from && DIGEST.test(mount) && new RegExp(`^${NAME}$`).test(from)) {
      const mounted = await this.ownBlob(mount, async () => {
        if ((await this.storage.blobSize(from, mount)) === undefined) return false;
        await this.storage.linkBlob(name, mount);
        return true;
      });
      if (mounted) {
        req.resume();
        res.writeHead(201, { location: `/v2/${name}/blobs/${mount}`, "docker-content-digest": mount, "content-length": "0" }).end();
        return;
      }
    }
    const id = await this.storage.startUpload(name);
    const digest = url.searchParams.get("digest");
    if (digest) {
      if (!DIGEST.test(digest)) throw new HttpError(400, "DIGEST_INVALID", `invalid digest ${digest}`);
      await this.storage.appendUpload(id, req, contentLength(req));
      await this.ownBlob(digest, () => this.storage.finishUpload(name, id, digest));
      res.writeHead(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest, "content-length": "0" }).end();
      return;
    }
    req.resume();
    res.writeHead(202, { location: `/v2/${name}/blobs/uploads/${id}`, range: "0-0", "docker-upload-uuid": id, "content-length": "0" }).end();
  }

  /**
   * Link a blob to one of the server's own repositories (a mount, or the upload of a blob the cache may hold): the
   * cache's retention keeps it while this runs and from then on, and a removal under way is waited for first.
   */
  private async ownBlob<T>(digest: string, link: () => Promise<T>): Promise<T> {
    const release = this.retention?.serving(digest);
    try {
      if (release) await this.retention!.removed(digest);
      const result = await link();
      this.retention?.claim(digest);
      return result;
    } finally {
      release?.();
    }
  }

  private async upload(req: IncomingMessage, res: ServerResponse, method: string, name: string, id: string, url: URL): Promise<void> {
    const info = await this.storage.uploadInfo(name, id);
    if (!info) throw new HttpError(404, "BLOB_UPLOAD_UNKNOWN", `upload ${id} is not known`);
    const progress = (size: number) => ({ location: `/v2/${name}/blobs/uploads/${id}`, range: `0-${Math.max(0, size - 1)}`, "docker-upload-uuid": id, "content-length": "0" });
    if (method === "GET") {
      res.writeHead(204, progress(info.size)).end();
      return;
    }
    if (method === "DELETE") {
      await this.storage.cancelUpload(id);
      res.writeHead(204, { "content-length": "0" }).end();
      return;
    }
    this.write(name);
    if (method === "PATCH") {
      const cr = req.headers["content-range"];
      if (cr !== undefined) {
        const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(String(cr));
        if (!m || Number(m[1]) !== info.size || Number(m[2]) < Number(m[1])) {
          throw new HttpError(416, "BLOB_UPLOAD_INVALID", `Content-Range ${cr} does not continue at offset ${info.size}`, progress(info.size));
        }
      }
      const size = await this.storage.appendUpload(id, req, contentLength(req));
      res.writeHead(202, progress(size)).end();
      return;
    }
    if (method === "PUT") {
      const digest = url.searchParams.get("digest");
      if (!digest || !DIGEST.test(digest)) throw new HttpError(400, "DIGEST_INVALID", `invalid or missing digest ${digest ?? ""}`);
      await this.storage.appendUpload(id, req, contentLength(req));
      await this.ownBlob(digest, () => this.storage.finishUpload(name, id, digest));
      res.writeHead(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest, "content-length": "0" }).end();
      return;
    }
    throw new HttpError(405, "UNSUPPORTED", `${method} is not supported on uploads`);
  }
}

function contentLength(req: IncomingMessage): number | undefined {
  const n = Number(req.headers["content-length"]);
  return Number.isFinite(n) ? n : undefined;
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}, type = "application/json"): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": type, "content-length": String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

export function splitAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m || Number(m[3]) > 65535) throw new RegcliError("usage", `invalid address "${addr}": expected HOST:PORT (e.g. 127.0.0.1:5000, [::1]:5000 or :5000)`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
}

/**
 * The answer was cut because the client closed the connection, not because anything failed here. A source that
 * ended early makes the same error, but then the pipeline destroyed the answer with it (`res.errored`); a client
 * that left closed the answer without one.
 */
function clientWentAway(err: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return ["ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED", "ECONNRESET", "EPIPE"].includes(code ?? "") && (res.destroyed || req.socket.destroyed) && !res.writableFinished && !res.errored;
}
