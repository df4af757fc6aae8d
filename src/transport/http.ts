import { readFileSync } from "node:fs";
import type { SecureContext } from "node:tls";
import type { Readable } from "node:stream";
import { Agent, loadEnvHttpProxyAgent, request, tlsConnector, type Dispatcher } from "./undici.js";
import { findHostCertDir, readCertDir } from "./certs.js";
import { RegcliError } from "../errors.js";
import { tls as loadTls } from "../util/builtins.js";
import { humanDuration } from "../util/duration.js";
import { isTransientNetworkError, networkError } from "./errors.js";
import { redactHeaders, redactUrl } from "./redact.js";

/** The variables undici's EnvHttpProxyAgent reads a proxy from. */
const PROXY_ENV = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";

export interface TransportOptions {
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  /** Extra PEM files to trust, on top of the system roots. */
  caFiles?: string[];
  /** How many times an idempotent request is retried after a transient failure. */
  retries?: number;
  /** Milliseconds to wait for response headers, and for each chunk of a body. */
  timeoutMs?: number;
  userAgent?: string;
  /** Receives request/response lines with secrets redacted (--debug). */
  debug?: (line: string) => void;
  /** Receives what the user should hear about (waiting for a rate limit); the CLI prints it on stderr. */
  notice?: (event: TransportNotice) => void;
  /**
   * The certificate directory of an HTTPS host (`explicit`: one the user named, which must exist). Default: the
   * host's certs.d directory (findHostCertDir).
   */
  certDirFor?: (host: string) => { dir: string | undefined; explicit?: boolean };
}

/** Something worth telling the user, as a progress event: `message` is the line, the rest the JSON fields. */
export interface TransportNotice {
  type: string;
  message: string;
  [field: string]: unknown;
}

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
  /** Follow 3xx redirects (default: for GET and HEAD). Authorization is dropped when the origin changes. */
  followRedirects?: boolean;
  /** Retry on transient failures (default: when the body can be sent again and the method is not POST/PATCH). */
  idempotent?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  /** The URL that answered, after redirects: relative Location headers resolve against it. */
  url: URL;
  /** How many times the request was sent (more than 1 after retries of 429/5xx answers). */
  tries?: number;
  header(name: string): string | undefined;
}

const MAX_REDIRECTS = 5;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** The longest Retry-After regcli waits out; a server asking for more gets an error that says when to come back. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** Retry-After in milliseconds: delay-seconds or an HTTP date (RFC 9110 10.2.3). */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Bounded exponential backoff with jitter, for the `attempt`-th retry (0-based). */
export function backoffMs(attempt: number): number {
  const base = Math.min(200 * 2 ** attempt, 5_000);
  return base / 2 + Math.random() * (base / 2);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class HttpTransport {
  /** The agent, or (with a proxy in the environment) the proxy-aware agent once its code has loaded. */
  private readonly dispatcher: Dispatcher | Promise<Dispatcher>;
  /** Hosts with a certificate directory get their own agent: their CAs and client certificate serve no other host. */
  private readonly hostDispatchers = new Map<string, Dispatcher | Promise<Dispatcher>>();
  /** The client certificate file presented to each host that has one (named in errors). */
  private readonly clientCertificates = new Map<string, string>();
  /** --ca-file's certificates, trusted for every host. */
  private readonly extraCa: string[] = [];
  readonly options: Required<Omit<TransportOptions, "debug" | "caFiles" | "notice" | "certDirFor">> & Pick<TransportOptions, "debug" | "caFiles" | "notice" | "certDirFor">;

  constructor(options: TransportOptions = {}) {
    this.options = {
      insecure: options.insecure ?? false,
      caFiles: options.caFiles,
      retries: options.retries ?? 3,
      timeoutMs: options.timeoutMs ?? 60_000,
      userAgent: options.userAgent ?? "regcli",
      debug: options.debug,
      notice: options.notice,
      certDirFor: options.certDirFor,
    };
    for (const file of options.caFiles ?? []) {
      try {
        this.extraCa.push(readFileSync(file, "utf8"));
      } catch (err) {
        throw new RegcliError("usage", `cannot read CA file ${file}: ${(err as Error).message}`);
      }
    }
    // One context for every connection: given `ca` instead, Node parses all the roots again for each
    // connection (about 40 ms of CPU each here; 1.2 s for a 60-image copy over 32 connections).
    this.dispatcher = this.createDispatcher(this.extraCa.length ? { ca: this.extraCa } : undefined);
  }

  /** An agent whose TLS trusts the system roots plus `extra` CAs and presents `extra`'s client certificate. */
  private createDispatcher(extra?: { ca: string[]; cert?: string; key?: string }): Dispatcher | Promise<Dispatcher> {
    const tls: { rejectUnauthorized: boolean; secureContext?: SecureContext } = { rejectUnauthorized: !this.options.insecure };
    if (extra) {
      // node:tls is loaded only here: undici loads it itself at the first https connection, and a plain-http run
      // (or one that never connects) is spared its start-up cost.
      const { createSecureContext, rootCertificates } = loadTls();
      tls.secureContext = createSecureContext({ ca: [...rootCertificates, ...extra.ca], cert: extra.cert, key: extra.key });
    }
    const agentOptions = {
      // --timeout bounds connecting too (TCP connect and TLS handshake), not only the wait for an answer.
      connect: tlsConnector({ ...tls, timeout: this.options.timeoutMs }),
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
      keepAliveTimeout: 10_000,
      connections: 16,
    };
    // The proxy-aware agent matches every request against NO_PROXY; without a proxy configured, skip that.
    return PROXY_ENV.some((name) => process.env[name])
      ? loadEnvHttpProxyAgent().then((EnvHttpProxyAgent) => new EnvHttpProxyAgent({ ...agentOptions, connect: { ...tls, timeout: this.options.timeoutMs }, requestTls: tls }))
      : new Agent(agentOptions);
  }

  /** The agent for a URL: its host's own when the host has a certificate directory (HTTPS only). */
  private dispatcherFor(url: URL): Dispatcher | Promise<Dispatcher> {
    if (url.protocol !== "https:") return this.dispatcher;
    let dispatcher = this.hostDispatchers.get(url.host);
    if (!dispatcher) {
      const { dir, explicit } = this.options.certDirFor?.(url.host) ?? { dir: findHostCertDir(url.host) };
      const found = dir === undefined ? undefined : readCertDir(dir, explicit);
      if (found) this.debug(`TLS for ${url.host} from ${found.dir}: ${found.ca.length} CA certificate(s)${found.client ? `, client certificate ${found.client.certFile}` : ""}`);
      try {
        dispatcher = found ? this.createDispatcher({ ca: [...this.extraCa, ...found.ca], cert: found.client?.cert, key: found.client?.key }) : this.dispatcher;
      } catch (err) {
        throw new RegcliError("usage", `cannot use the certificates in ${found!.dir}: ${(err as Error).message}`, { cause: err });
      }
      this.hostDispatchers.set(url.host, dispatcher);
      if (found?.client) this.clientCertificates.set(url.host, found.client.certFile);
    }
    return dispatcher;
  }

  /** Close the connections; `abort`: without waiting for requests in flight (a command that failed). */
  async close(abort = false): Promise<void> {
    const all = new Set([this.dispatcher, ...this.hostDispatchers.values()]);
    await Promise.all(
      [...all].map(async (pending) => {
        const dispatcher = await pending;
        await (abort ? dispatcher.destroy() : dispatcher.close());
      }),
    );
  }

  private debug(line: string): void {
    this.options.debug?.(line);
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const streamBody = req.body !== undefined && typeof req.body !== "string" && !Buffer.isBuffer(req.body);
    const idempotent = req.idempotent ?? (!streamBody && req.method !== "POST" && req.method !== "PATCH");
    const retries = idempotent ? this.options.retries : 0;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.sendFollowingRedirects(req);
      } catch (err) {
        if (attempt < retries && isTransientNetworkError(err)) {
          const wait = backoffMs(attempt);
          this.debug(`! ${req.method} ${redactUrl(req.url)}: ${(err as Error).message}; retry ${attempt + 1}/${retries} in ${Math.round(wait)} ms`);
          await sleep(wait);
          continue;
        }
        const failure = networkError(err, req.url, this.clientCertificates.get(req.url.host));
        if (attempt > 0) {
          throw new RegcliError(failure.kind, `${failure.message} (after ${attempt + 1} tries)`, {
            hint: failure.hint,
            code: failure.code,
            cause: err,
          });
        }
        throw failure;
      }
      if (attempt < retries && RETRYABLE_STATUS.has(res.status)) {
        const retryAfter = res.header("retry-after");
        const asked = retryAfterMs(retryAfter);
        if (asked !== undefined && asked > MAX_RETRY_AFTER_MS) {
          // Waiting a minute and asking again would only meet the same answer: say when to come back instead.
          await res.body.dump().catch(() => undefined);
          throw new RegcliError("registry", `${req.url.host} asks to wait ${humanDuration(asked)} (HTTP ${res.status}, Retry-After: ${retryAfter}), longer than regcli waits (${humanDuration(MAX_RETRY_AFTER_MS)})`, {
            hint: `try again after ${new Date(Date.now() + asked).toISOString()}`,
            code: res.status === 429 ? "TOOMANYREQUESTS" : undefined,
          });
        }
        const wait = asked ?? backoffMs(attempt);
        await res.body.dump().catch(() => undefined);
        this.debug(`! ${req.method} ${redactUrl(req.url)}: HTTP ${res.status}; retry ${attempt + 1}/${retries} in ${Math.round(wait)} ms`);
        if (res.status === 429 || asked !== undefined) {
          const why = res.status === 429 ? "rate limited (HTTP 429)" : `HTTP ${res.status}`;
          this.options.notice?.({
            type: "wait",
            message: `${req.url.host}: ${why}, waiting ${(wait / 1000).toFixed(1)} s${retryAfter !== undefined ? ` as its Retry-After asks` : ""} (retry ${attempt + 1} of ${retries})`,
            host: req.url.host,
            status: res.status,
            retryAfter,
            waitMs: Math.round(wait),
            retry: attempt + 1,
            retries,
          });
        }
        await sleep(wait);
        continue;
      }
      res.tries = attempt + 1;
      return res;
    }
  }

  private async sendFollowingRedirects(req: HttpRequest): Promise<HttpResponse> {
    const follow = req.followRedirects ?? (req.method === "GET" || req.method === "HEAD");
    let url = req.url;
    let headers: Record<string, string> = { "user-agent": this.options.userAgent, ...req.headers };
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(req.method, url, headers, req.body);
      const location = res.header("location");
      if (!follow || res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
      await res.body.dump().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) {
        throw new RegcliError("registry", `too many redirects from ${req.url.host}`);
      }
      const next = new URL(location, url);
      if (url.protocol === "https:" && next.protocol !== "https:") {
        throw new RegcliError("registry", `refused redirect from ${url.host} to insecure ${next.protocol}//${next.host}`);
      }
      if (next.origin !== url.origin) {
        // Credentials belong to the origin that asked for them: a CDN or storage host gets none.
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "authorization"));
      }
      url = next;
    }
  }

  private async sendOnce(
    method: HttpMethod,
    url: URL,
    headers: Record<string, string>,
    body: HttpRequest["body"],
  ): Promise<HttpResponse> {
    if (this.options.debug) this.debug(`> ${method} ${redactUrl(url)} ${JSON.stringify(redactHeaders(headers))}`);
    const res = await request(url, {
      method,
      headers,
      body: body as Dispatcher.DispatchOptions["body"],
      dispatcher: await this.dispatcherFor(url),
      // undici closes the connection after every HEAD (in case a server sends a body anyway), which costs a new
      // TCP connection per existence check; registries answer HEAD properly, so keep the connection.
      reset: method === "HEAD" ? false : undefined,
    });
    if (this.options.debug) this.debug(`< ${res.statusCode} ${method} ${redactUrl(url)} ${JSON.stringify(redactHeaders(res.headers))}`);
    // A body refused unread (too large, wrong size or Content-Range) is destroyed, and undici then emits an abort
    // error on it; whoever reads a body has its own listener, so this one only keeps that from crashing the process.
    res.body.on("error", () => undefined);
    return {
      status: res.statusCode,
      headers: res.headers,
      body: res.body,
      url,
      header(name: string): string | undefined {
        const v = res.headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      },
    };
  }
}

/** Read a response body into memory, refusing more than `limit` bytes without reading them all. */
export async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.header("content-length"));
  const tooLarge = (detail: string) => new RegcliError("registry", `${what} from ${res.url.host} is too large (${detail})`);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw tooLarge(`${declared} bytes, limit ${limit}`);
  }
  // Plain listeners rather than `for await`: the async iterator builds an error object (stack and all) for the
  // stream's close at the end of every body, which is measurable over hundreds of small manifests.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const body = res.body;
    // Already read away (an error answer to a HEAD, dumped first): no 'end' is coming.
    if (body.readableEnded) return resolve(Buffer.alloc(0));
    if (body.destroyed) return reject(new Error("the response body was already discarded"));
    body.on("data", (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        body.destroy();
        reject(tooLarge(`over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    body.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    body.once("error", reject);
    body.once("close", () => {
      if (!body.readableEnded) reject(new Error("the response body closed before its end"));
    });
  });
}
