// A fault-injection HTTP reverse proxy for tests: it sits between a registry client and a real registry
// (plain HTTP on loopback) and forwards every request, streaming both bodies, unless a rule injects a fault.
import {
  Agent,
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type OutgoingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tally } from "./tally.js";

export type Fault =
  /** Destroy the client socket without forwarding anything. */
  | { kind: "reset-before" }
  /**
   * Forward the request, but after `after` request-body bytes destroy both the upstream request and the client socket.
   * With `lateUntilNext`, the upstream side stays open (the registry gets neither the rest nor the end) until the next
   * request to the same path (query ignored) has been answered: the registry handles the cut only after that request.
   */
  | { kind: "reset-request"; after: number; lateUntilNext?: boolean }
  /** Read `after` request-body bytes from the client without forwarding anything, then destroy the client socket. */
  | { kind: "reset-request-unforwarded"; after: number }
  /** Forward; send the response headers and `after` body bytes, then destroy the client socket. */
  | { kind: "reset-response"; after: number }
  /** Forward; send the headers unchanged (original Content-Length) and `after` body bytes, then end the socket. */
  | { kind: "truncate"; after: number }
  /** Forward; XOR 0xff the response body byte at offset `at` (counted across chunks). */
  | { kind: "flip"; at: number }
  /** Forward headers and `after` body bytes, optionally trickle a few more, then send nothing and keep the socket open. */
  | { kind: "stall"; after: number; trickle?: { bytes: number; everyMs: number; forMs: number } }
  /** Answer directly, never forward. */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  /** Forward; replace (or, with undefined, remove) one response header. */
  | { kind: "header"; name: string; value: string | undefined }
  /** Forward; add (or replace) these response headers, e.g. a registry's rate-limit headers. */
  | { kind: "headers"; set: Record<string, string> }
  /** Answer 307 (or `status`) with Location `${to}${originalPathAndQuery}` without forwarding. */
  | { kind: "redirect"; to: string; status?: number }
  /** Wait, then forward normally. */
  | { kind: "delay"; ms: number }
  /** Forward without the request's Range (and If-Range) header: a server that ignores Range answers 200, full body. */
  | { kind: "strip-range" };

/** What a rule's `when` predicate sees of a request. */
export interface RequestInfo {
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
}

export interface FaultRule {
  method?: string;
  /** Tested against path+query, e.g. /\/blobs\/sha256:/. */
  path?: RegExp;
  /** Only the Nth matching request (1-based) gets the fault; undefined = every matching request. */
  nth?: number;
  /** At most this many injections by this rule. */
  times?: number;
  /** Inject with this probability (0..1) using the proxy's seeded PRNG; undefined = always. */
  rate?: number;
  /**
   * The rule matches only requests for which this returns true (checked after method and path, before nth
   * counting). Called once per request that passes method and path, so it may keep state.
   */
  when?: (req: RequestInfo) => boolean;
  fault: Fault;
}

export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number | undefined;
  /** Request body bytes received from the client (for reset-request faults: at most `after`). */
  requestBytes: number;
  /** Response body bytes sent to the client. */
  responseBytes: number;
  fault?: Fault["kind"];
  /** Whether the request carried an Authorization header. */
  authorization: boolean;
  /** The request's Range header, if any. */
  range?: string;
}

export interface FaultProxy {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** "127.0.0.1:PORT" */
  host: string;
  /** Mutable: tests replace it between steps. */
  rules: FaultRule[];
  log: ProxyLogEntry[];
  faultsInjected: number;
  /** Sum of response body bytes sent for requests whose path matches (finished and in-flight ones). */
  bytesSent(path: RegExp, method?: string): number;
  /** Sum of request body bytes received for requests whose path matches (finished and in-flight ones). */
  bytesReceived(path: RegExp, method?: string): number;
  /** How many requests matching `path` (and `method`) are in flight right now. */
  inFlight(path?: RegExp, method?: string): number;
  /** Clear the log, counters and rule counters (not the rules), and reseed the PRNG. */
  reset(): void;
  /** Stop listening and destroy every connection (stalled ones included). */
  close(): Promise<void>;
}

export interface StorageHost {
  url: string;
  host: string;
  log: ProxyLogEntry[];
  close(): Promise<void>;
}

/** Request headers that belong to one connection and are never forwarded. */
const HOP_BY_HOP_REQUEST = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer", "expect"]);
/** Response headers that belong to one connection and are never forwarded (node sets its own). */
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "trailer"]);
/** How long to wait for written bytes to reach the kernel before destroying a socket anyway. */
const FLUSH_TIMEOUT_MS = 2000;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function withoutQuery(path: string): string {
  return path.split("?")[0]!;
}

function testPath(re: RegExp, path: string): boolean {
  re.lastIndex = 0;
  return re.test(path);
}

interface RuleState {
  matched: number;
  injected: number;
}

class FaultProxyServer implements FaultProxy {
  url = "";
  host = "";
  rules: FaultRule[] = [];
  log: ProxyLogEntry[] = [];
  faultsInjected = 0;

  readonly #upstream: URL;
  readonly #upstreamHostname: string;
  readonly #bindHost: string;
  readonly #seed: number;
  #rand: () => number;
  #ruleStates = new WeakMap<FaultRule, RuleState>();
  /** In-flight requests, each with the function that moves its entry into the log. */
  readonly #active = new Map<ProxyLogEntry, () => void>();
  readonly #sockets = new Set<Socket>();
  readonly #upstreamRequests = new Set<ClientRequest>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Cut requests still open upstream (lateUntilNext), by path without query: released once the next request there is answered. */
  readonly #late = new Map<string, Array<() => void>>();
  readonly #agent = new Agent({ keepAlive: true });
  readonly #server: Server;
  /** Matches an absolute URL naming the upstream (127.0.0.1 and localhost are the same loopback host). */
  #upstreamPrefix: RegExp;
  #closed = false;

  constructor(upstream: string, bindHost: string, seed: number) {
    this.#upstream = new URL(upstream);
    if (this.#upstream.protocol !== "http:") throw new Error(`fault proxy: upstream must be plain http, got ${upstream}`);
    this.#upstreamHostname = this.#upstream.hostname.replace(/^\[|\]$/g, "");
    this.#bindHost = bindHost;
    this.#seed = seed;
    this.#rand = mulberry32(seed);
    const port = this.#upstream.port || "80";
    const names = [this.#upstream.hostname];
    if (this.#upstream.hostname === "127.0.0.1") names.push("localhost");
    if (this.#upstream.hostname === "localhost") names.push("127.0.0.1");
    this.#upstreamPrefix = new RegExp(`^https?://(?:${names.map(escapeRegExp).join("|")}):${port}(?=[/?#]|$)`, "i");
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Uploads can be slow and stalls are deliberate: no server-side request timeouts.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = 0;
    this.#server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    this.#server.on("clientError", (_err, socket: Socket) => socket.destroy());
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, this.#bindHost, () => {
        this.#server.off("error", reject);
        const { port } = this.#server.address() as AddressInfo;
        this.host = hostPort(this.#bindHost, port);
        this.url = `http://${this.host}`;
        resolve();
      });
    });
  }

  bytesSent(path: RegExp, method?: string): number {
    return this.#sum(path, method, (e) => e.responseBytes);
  }

  bytesReceived(path: RegExp, method?: string): number {
    return this.#sum(path, method, (e) => e.requestBytes);
  }

  inFlight(path?: RegExp, method?: string): number {
    let n = 0;
    for (const e of this.#active.keys()) {
      if (method !== undefined && e.method.toUpperCase() !== method.toUpperCase()) continue;
      if (path !== undefined && !testPath(path, e.path)) continue;
      n++;
    }
    return n;
  }

  reset(): void {
    this.log = [];
    this.faultsInjected = 0;
    this.#ruleStates = new WeakMap();
    this.#rand = mulberry32(this.#seed);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const r of this.#upstreamRequests) r.destroy();
    for (const s of this.#sockets) s.destroy();
    this.#agent.destroy();
    await closed;
    // Requests cut off by close() (stalls) are logged even if their 'close' events have not run yet.
    for (const finish of [...this.#active.values()]) finish();
  }

  #sum(path: RegExp, method: string | undefined, pick: (e: ProxyLogEntry) => number): number {
    let total = 0;
    for (const e of [...this.log, ...this.#active.keys()]) {
      if (method !== undefined && e.method.toUpperCase() !== method.toUpperCase()) continue;
      if (!testPath(path, e.path)) continue;
      total += pick(e);
    }
    return total;
  }

  #setTimer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #clearTimer(t: NodeJS.Timeout | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    clearInterval(t);
    this.#timers.delete(t);
  }

  /** Calls `fn` once everything written to `out` has been handed to the kernel (or the socket is gone). */
  #whenFlushed(out: OutgoingMessage, fn: () => void): void {
    const started = Date.now();
    const check = () => {
      const socket = out.socket;
      const flushed = socket !== null && !socket.connecting && out.writableLength === 0;
      if (flushed || socket?.destroyed || this.#closed || Date.now() - started > FLUSH_TIMEOUT_MS) fn();
      else this.#setTimer(check, 1);
    };
    check();
  }

  #pick(method: string, path: string, headers: IncomingHttpHeaders): Fault | undefined {
    let chosen: Fault | undefined;
    for (const rule of this.rules) {
      if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path !== undefined && !testPath(rule.path, path)) continue;
      if (rule.when !== undefined && !rule.when({ method, path, headers })) continue;
      let state = this.#ruleStates.get(rule);
      if (!state) this.#ruleStates.set(rule, (state = { matched: 0, injected: 0 }));
      state.matched++;
      if (chosen) continue;
      if (rule.nth !== undefined && state.matched !== rule.nth) continue;
      if (rule.times !== undefined && state.injected >= rule.times) continue;
      if (rule.rate !== undefined && !(this.#rand() < rule.rate)) continue;
      state.injected++;
      chosen = rule.fault;
    }
    return chosen;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const entry: ProxyLogEntry = {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      status: undefined,
      requestBytes: 0,
      responseBytes: 0,
      authorization: req.headers.authorization !== undefined,
    };
    if (typeof req.headers.range === "string") entry.range = req.headers.range;
    const finish = () => {
      if (!this.#active.delete(entry)) return;
      this.log.push(entry);
      tally("fault proxy: requests relayed");
      tally("fault proxy: bytes relayed", entry.requestBytes + entry.responseBytes);
    };
    this.#active.set(entry, finish);
    res.once("close", finish);
    const late = this.#late.get(withoutQuery(entry.path));
    if (late) {
      this.#late.delete(withoutQuery(entry.path));
      res.once("close", () => late.forEach((release) => release()));
    }
    req.on("error", () => {});
    res.on("error", () => {});

    const fault = this.#pick(entry.method, entry.path, req.headers);
    if (fault) {
      entry.fault = fault.kind;
      this.faultsInjected++;
      tally(`faults injected: ${fault.kind}`);
    }

    switch (fault?.kind) {
      case "reset-before":
        req.socket.destroy();
        return;
      case "reset-request-unforwarded": {
        const after = fault.after;
        if (after <= 0) {
          req.socket.destroy();
          return;
        }
        req.on("data", (chunk: Buffer) => {
          if (req.socket.destroyed) return;
          entry.requestBytes += Math.min(chunk.length, after - entry.requestBytes);
          if (entry.requestBytes >= after) req.socket.destroy();
        });
        req.on("end", () => req.socket.destroy());
        return;
      }
      case "status": {
        this.#drain(req, entry);
        const status = fault.status;
        const bodyless = status === 204 || status === 304 || status < 200;
        const body = bodyless ? undefined : Buffer.from(fault.body ?? "");
        const headers: OutgoingHttpHeaders = { ...fault.headers };
        const hasLength = Object.keys(headers).some((k) => k.toLowerCase() === "content-length");
        if (body && !hasLength) headers["content-length"] = body.length;
        entry.status = status;
        res.writeHead(status, headers);
        if (body && entry.method !== "HEAD") entry.responseBytes = body.length;
        res.end(body);
        return;
      }
      case "redirect": {
        this.#drain(req, entry);
        const status = fault.status ?? 307;
        entry.status = status;
        res.writeHead(status, { location: `${fault.to}${entry.path}`, "content-length": 0 });
        res.end();
        return;
      }
      case "delay": {
        req.pause();
        const timer = this.#setTimer(() => {
          if (!res.destroyed) this.#forward(req, res, entry, undefined);
        }, fault.ms);
        res.once("close", () => this.#clearTimer(timer));
        return;
      }
      default:
        this.#forward(req, res, entry, fault);
    }
  }

  /** Reads (and counts) the request body without forwarding it. */
  #drain(req: IncomingMessage, entry: ProxyLogEntry): void {
    req.on("data", (chunk: Buffer) => {
      entry.requestBytes += chunk.length;
    });
    req.resume();
  }

  #responseHeaders(raw: string[], fault: Fault | undefined): string[] {
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      let value = raw[i + 1]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP_RESPONSE.has(lower)) continue;
      if (lower === "location") value = value.replace(this.#upstreamPrefix, this.url);
      out.push(name, value);
    }
    if (fault?.kind === "headers") {
      const names = new Set(Object.keys(fault.set).map((n) => n.toLowerCase()));
      const kept = out.filter((_, i) => !names.has(out[i - (i % 2)]!.toLowerCase()));
      for (const [name, value] of Object.entries(fault.set)) kept.push(name, value);
      return kept;
    }
    if (fault?.kind !== "header") return out;
    const target = fault.name.toLowerCase();
    const dropTe = target === "content-length" && fault.value !== undefined;
    const kept: string[] = [];
    for (let i = 0; i < out.length; i += 2) {
      const lower = out[i]!.toLowerCase();
      if (lower === target || (dropTe && lower === "transfer-encoding")) continue;
      kept.push(out[i]!, out[i + 1]!);
    }
    if (fault.value !== undefined) kept.push(fault.name, fault.value);
    return kept;
  }

  #forward(req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, fault: Fault | undefined): void {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP_REQUEST.has(name)) continue;
      if (fault?.kind === "strip-range" && (name === "range" || name === "if-range")) continue;
      headers[name] = value;
    }
    headers.host = this.#upstream.host;
    const upReq = httpRequest({
      hostname: this.#upstreamHostname,
      port: this.#upstream.port || 80,
      method: entry.method,
      path: entry.path,
      headers,
      agent: this.#agent,
    });
    this.#upstreamRequests.add(upReq);
    upReq.once("close", () => this.#upstreamRequests.delete(upReq));

    let intentional = false; // we destroyed the upstream side on purpose
    let upstreamDone = false;
    let late = false; // the client is gone but the upstream side is kept open (lateUntilNext)
    const timers: NodeJS.Timeout[] = [];
    const stopUpstream = () => {
      intentional = true;
      if (!upstreamDone) upReq.destroy();
    };
    const destroyClient = () => {
      stopUpstream();
      req.socket.destroy();
    };

    res.once("close", () => {
      for (const t of timers) this.#clearTimer(t);
      if (!late) stopUpstream();
    });

    upReq.on("error", () => {
      if (intentional) return;
      upstreamDone = true;
      if (!res.headersSent && !res.destroyed) {
        entry.status = 502;
        const body = Buffer.from("fault proxy: upstream request failed\n");
        res.writeHead(502, { "content-type": "text/plain", "content-length": body.length });
        entry.responseBytes = body.length;
        res.end(body);
      } else {
        req.socket.destroy();
      }
    });

    // ---- request body: client -> upstream ----
    const reqCut = fault?.kind === "reset-request" ? fault.after : Infinity;
    let reqStopped = false;
    const cutRequest = (last: Buffer) => {
      reqStopped = true;
      req.pause();
      if (last.length > 0) upReq.write(last);
      else upReq.flushHeaders();
      if (fault?.kind !== "reset-request" || !fault.lateUntilNext) {
        this.#whenFlushed(upReq, destroyClient);
        return;
      }
      this.#whenFlushed(upReq, () => {
        late = true;
        const key = withoutQuery(entry.path);
        this.#late.set(key, [...(this.#late.get(key) ?? []), stopUpstream]);
        req.socket.destroy();
      });
    };
    req.on("data", (chunk: Buffer) => {
      if (reqStopped) return;
      const room = reqCut - entry.requestBytes;
      if (chunk.length >= room) {
        entry.requestBytes += room;
        cutRequest(chunk.subarray(0, room));
        return;
      }
      entry.requestBytes += chunk.length;
      if (!upReq.write(chunk)) {
        req.pause();
        upReq.once("drain", () => {
          if (!reqStopped) req.resume();
        });
      }
    });
    req.on("end", () => {
      if (reqStopped) return;
      if (fault?.kind === "reset-request") cutRequest(Buffer.alloc(0));
      else upReq.end();
    });
    if (reqCut <= 0) cutRequest(Buffer.alloc(0));
    else req.resume();

    // ---- response: upstream -> client ----
    upReq.on("response", (upRes: IncomingMessage) => {
      const status = upRes.statusCode ?? 502;
      entry.status = status;
      upRes.on("error", () => {});
      upRes.once("aborted", () => {
        if (!intentional) req.socket.destroy();
      });
      if (res.destroyed) {
        upRes.resume();
        return;
      }
      const outHeaders = this.#responseHeaders(upRes.rawHeaders, fault);
      res.writeHead(status, upRes.statusMessage, outHeaders);

      const bodyless = entry.method === "HEAD" || status === 204 || status === 304 || status < 200;
      let declared: number | undefined;
      let chunked = false;
      for (let i = 0; i < outHeaders.length; i += 2) {
        const lower = outHeaders[i]!.toLowerCase();
        if (lower === "content-length") declared = Number(outHeaders[i + 1]);
        if (lower === "transfer-encoding") chunked = true;
      }
      if (chunked || bodyless || !Number.isFinite(declared)) declared = undefined;

      let cut = Infinity;
      if (fault?.kind === "reset-response" || fault?.kind === "truncate" || fault?.kind === "stall") cut = fault.after;
      const flipAt = fault?.kind === "flip" ? fault.at : undefined;

      let stopped = false;
      let received = 0; // upstream body bytes seen (for flip offsets)

      const write = (chunk: Buffer) => {
        if (chunk.length === 0) return;
        entry.responseBytes += chunk.length;
        if (!res.write(chunk)) {
          upRes.pause();
          res.once("drain", () => {
            if (!stopped) upRes.resume();
          });
        }
      };
      const destroyAfterFlush = () => {
        res.flushHeaders();
        this.#whenFlushed(res, destroyClient);
      };
      const endSocketAfterFlush = () => {
        res.flushHeaders();
        stopUpstream();
        this.#whenFlushed(res, () => {
          const socket = res.socket ?? req.socket;
          socket.destroySoon();
        });
      };
      const stall = (rest: Buffer) => {
        res.flushHeaders();
        upRes.pause();
        if (fault?.kind !== "stall" || !fault.trickle) return;
        const { bytes, everyMs, forMs } = fault.trickle;
        const pending: Buffer[] = rest.length > 0 ? [rest] : [];
        let pendingLength = rest.length;
        let ticks = Math.floor(forMs / everyMs);
        if (ticks <= 0 || bytes <= 0) return;
        const interval = setInterval(() => {
          while (pendingLength < bytes && !upstreamDone) {
            const more = upRes.read() as Buffer | null;
            if (!more) break;
            pending.push(more);
            pendingLength += more.length;
          }
          const all = Buffer.concat(pending);
          const n = Math.min(bytes, all.length);
          if (n > 0 && !res.destroyed) {
            entry.responseBytes += n;
            res.write(all.subarray(0, n));
          }
          pending.length = 0;
          if (all.length > n) pending.push(all.subarray(n));
          pendingLength = all.length - n;
          if (--ticks <= 0) this.#clearTimer(interval);
        }, everyMs);
        this.#timers.add(interval);
        timers.push(interval);
      };
      const cutAt = (room: number, chunk: Buffer) => {
        stopped = true;
        write(chunk.subarray(0, room));
        if (fault?.kind === "reset-response") {
          upRes.pause();
          destroyAfterFlush();
        } else if (fault?.kind === "truncate") endSocketAfterFlush();
        else stall(chunk.subarray(room));
      };

      if (bodyless) {
        upRes.resume();
        if (fault?.kind === "reset-response") destroyAfterFlush();
        else if (fault?.kind === "truncate") endSocketAfterFlush();
        else if (fault?.kind === "stall") stall(Buffer.alloc(0));
        else upRes.once("end", () => res.end());
        upRes.once("end", () => {
          upstreamDone = true;
        });
        return;
      }

      upRes.on("data", (data: Buffer) => {
        if (stopped) return;
        let chunk = data;
        if (flipAt !== undefined && flipAt >= received && flipAt < received + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - received] = chunk[flipAt - received]! ^ 0xff;
        }
        received += chunk.length;
        const faultRoom = cut - entry.responseBytes;
        const lengthRoom = declared === undefined ? Infinity : declared - entry.responseBytes;
        if (chunk.length < faultRoom && chunk.length <= lengthRoom) write(chunk);
        else if (faultRoom <= lengthRoom) cutAt(faultRoom, chunk);
        else {
          // A (faked) Content-Length smaller than the body: send that many bytes, then drop the connection.
          stopped = true;
          write(chunk.subarray(0, lengthRoom));
          upRes.pause();
          destroyAfterFlush();
        }
      });
      upRes.once("end", () => {
        upstreamDone = true;
        if (stopped) return;
        stopped = true;
        if (fault?.kind === "reset-response") destroyAfterFlush();
        else if (fault?.kind === "stall") stall(Buffer.alloc(0));
        else if (declared !== undefined && entry.responseBytes < declared) endSocketAfterFlush();
        else res.end();
      });
      if (cut <= 0) cutAt(0, Buffer.alloc(0));
    });
  }
}

/** Starts a fault-injecting reverse proxy in front of `upstream` ("http://127.0.0.1:PORT"). */
export async function startFaultProxy(upstream: string, options?: { seed?: number; bindHost?: string }): Promise<FaultProxy> {
  const proxy = new FaultProxyServer(upstream, options?.bindHost ?? "127.0.0.1", options?.seed ?? 1);
  await proxy.listen();
  return proxy;
}

/** A plain pass-through to `upstream` on another loopback address (default 127.0.0.2), standing in for a
 * storage host/CDN that blob GETs are redirected to; records whether any request carried Authorization. */
export async function startStorageHost(upstream: string, options?: { bindHost?: string }): Promise<StorageHost> {
  const proxy = new FaultProxyServer(upstream, options?.bindHost ?? "127.0.0.2", 1);
  await proxy.listen();
  return {
    url: proxy.url,
    host: proxy.host,
    get log() {
      return proxy.log;
    },
    close: () => proxy.close(),
  };
}
