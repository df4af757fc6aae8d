// Self-test of the fault-injection proxy against a tiny in-process upstream (no docker-registry needed).
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFaultProxy, startStorageHost, type FaultProxy } from "../helpers/fault-proxy.js";

const BLOB_SIZE = 1024 * 1024;
const BLOB = Buffer.alloc(BLOB_SIZE);
for (let i = 0; i < BLOB_SIZE; i++) BLOB[i] = (i * 31 + (i >>> 8)) & 0xff;
const BLOB_DIGEST = `sha256:${createHash("sha256").update(BLOB).digest("hex")}`;

interface UpstreamRecord {
  method: string;
  url: string;
  bytes: number;
  complete: boolean;
  /** The request is over on the upstream side (ended or cut). */
  closed: boolean;
  host: string | undefined;
  range: string | undefined;
}

let upstream: Server;
let upstreamUrl = "";
let upstreamRecords: UpstreamRecord[] = [];
let proxy: FaultProxy;
let agent: Agent;

function startUpstream(): Promise<void> {
  upstream = createServer((req, res) => {
    const rec: UpstreamRecord = { method: req.method ?? "", url: req.url ?? "", bytes: 0, complete: false, closed: false, host: req.headers.host, range: req.headers.range };
    upstreamRecords.push(rec);
    req.on("close", () => (rec.closed = true));
    req.on("data", (c: Buffer) => (rec.bytes += c.length));
    req.on("error", () => {});
    req.on("end", () => {
      rec.complete = true;
      const path = (req.url ?? "").split("?")[0];
      if (path === "/blob" && (req.method === "GET" || req.method === "HEAD")) {
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          "content-length": BLOB_SIZE,
          "docker-content-digest": BLOB_DIGEST,
        });
        res.end(req.method === "HEAD" ? undefined : BLOB);
      } else if (path === "/ranged" && req.method === "GET") {
        // Honours "bytes=N-" like a registry: 206 from byte N, else 200 with the whole blob.
        const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
        const start = m ? Number(m[1]) : 0;
        if (m && start < BLOB_SIZE) {
          res.writeHead(206, { "content-length": BLOB_SIZE - start, "content-range": `bytes ${start}-${BLOB_SIZE - 1}/${BLOB_SIZE}` });
          res.end(BLOB.subarray(start));
        } else {
          res.writeHead(200, { "content-length": BLOB_SIZE });
          res.end(BLOB);
        }
      } else if (path === "/chunked") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.write(BLOB.subarray(0, 1000));
        setTimeout(() => res.end(BLOB.subarray(1000, 3000)), 5);
      } else if (path === "/start") {
        res.writeHead(202, { location: `${upstreamUrl}/v2/x/blobs/uploads/u1?_state=a%2Bb%3D`, "content-length": 0 });
        res.end();
      } else if (path === "/relative") {
        res.writeHead(202, { location: "/v2/x/blobs/uploads/u2", "content-length": 0 });
        res.end();
      } else if (path === "/auth") {
        res.setHeader("www-authenticate", ['Bearer realm="http://127.0.0.1:1/token",service="a"', 'Basic realm="b"']);
        res.writeHead(401, { "content-length": 0 });
        res.end();
      } else if (path === "/empty") {
        res.writeHead(204);
        res.end();
      } else {
        const body = JSON.stringify({ received: rec.bytes });
        res.writeHead(req.method === "GET" || req.method === "HEAD" ? 200 : 201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      }
    });
  });
  return new Promise((resolve) =>
    upstream.listen(0, "127.0.0.1", () => {
      upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error("timed out waiting for condition");
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Got {
  status?: number;
  headers?: IncomingHttpHeaders;
  body: Buffer;
  error?: Error;
}

/** One request through undici; collects the body and any error (including one after some body bytes). */
async function send(
  url: string,
  opts: { method?: string; body?: Buffer; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Got> {
  const chunks: Buffer[] = [];
  const got: Got = { body: Buffer.alloc(0) };
  try {
    const res = await request(url, {
      method: (opts.method ?? "GET") as "GET",
      body: opts.body,
      headers: opts.headers,
      signal: opts.signal,
      dispatcher: agent,
    });
    got.status = res.statusCode;
    got.headers = res.headers as IncomingHttpHeaders;
    for await (const c of res.body) chunks.push(c as Buffer);
  } catch (err) {
    got.error = err as Error;
  }
  got.body = Buffer.concat(chunks);
  return got;
}

beforeAll(async () => {
  await startUpstream();
  proxy = await startFaultProxy(upstreamUrl);
  agent = new Agent({ keepAliveTimeout: 1000 });
});

afterAll(async () => {
  await agent?.close();
  await proxy?.close();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

beforeEach(() => {
  proxy.rules = [];
  proxy.reset();
  upstreamRecords = [];
});

describe("pass-through", () => {
  it("streams GET bodies unchanged and logs the exchange", async () => {
    const got = await send(`${proxy.url}/blob`, { headers: { authorization: "Bearer x", range: "bytes=0-" } });
    expect(got.error).toBeUndefined();
    expect(got.status).toBe(200);
    expect(got.headers?.["content-length"]).toBe(String(BLOB_SIZE));
    expect(got.headers?.["docker-content-digest"]).toBe(BLOB_DIGEST);
    expect(got.body.equals(BLOB)).toBe(true);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.log[0]).toEqual({
      method: "GET",
      path: "/blob",
      status: 200,
      requestBytes: 0,
      responseBytes: BLOB_SIZE,
      authorization: true,
      range: "bytes=0-",
    });
    expect(proxy.bytesSent(/\/blob/)).toBe(BLOB_SIZE);
    expect(proxy.bytesSent(/\/blob/, "HEAD")).toBe(0);
    expect(proxy.faultsInjected).toBe(0);
    expect(upstreamRecords[0]?.host).toBe(new URL(upstreamUrl).host);
  });

  it("streams uploads and counts request bytes", async () => {
    const body = BLOB.subarray(0, 300_000);
    const got = await send(`${proxy.url}/upload?x=1`, { method: "PUT", body });
    expect(got.status).toBe(201);
    expect(JSON.parse(got.body.toString())).toEqual({ received: 300_000 });
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.bytesReceived(/\/upload/, "PUT")).toBe(300_000);
    expect(proxy.bytesReceived(/\/upload/, "POST")).toBe(0);
    expect(proxy.log[0]?.path).toBe("/upload?x=1");
    expect(proxy.log[0]?.authorization).toBe(false);
  });

  it("passes HEAD, 204 and chunked responses", async () => {
    const head = await send(`${proxy.url}/blob`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers?.["content-length"]).toBe(String(BLOB_SIZE));
    expect(head.body.length).toBe(0);
    const empty = await send(`${proxy.url}/empty`);
    expect(empty.status).toBe(204);
    const chunked = await send(`${proxy.url}/chunked`);
    expect(chunked.error).toBeUndefined();
    expect(chunked.body.equals(BLOB.subarray(0, 3000))).toBe(true);
  });

  it("rewrites absolute Location headers to the proxy and keeps multi-valued headers", async () => {
    const abs = await send(`${proxy.url}/start`, { method: "POST" });
    expect(abs.status).toBe(202);
    expect(abs.headers?.location).toBe(`${proxy.url}/v2/x/blobs/uploads/u1?_state=a%2Bb%3D`);
    const rel = await send(`${proxy.url}/relative`, { method: "POST" });
    expect(rel.headers?.location).toBe("/v2/x/blobs/uploads/u2");
    const auth = await send(`${proxy.url}/auth`);
    expect(auth.status).toBe(401);
    expect(auth.headers?.["www-authenticate"]).toEqual(['Bearer realm="http://127.0.0.1:1/token",service="a"', 'Basic realm="b"']);
  });
});

describe("faults", () => {
  it("reset-before destroys the connection without reaching upstream", async () => {
    proxy.rules = [{ path: /\/blob/, fault: { kind: "reset-before" } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.error).toBeDefined();
    expect(got.status).toBeUndefined();
    expect(upstreamRecords).toHaveLength(0);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ fault: "reset-before", status: undefined, responseBytes: 0 });
    expect(proxy.faultsInjected).toBe(1);
  });

  it("reset-response delivers exactly N body bytes, then an error", async () => {
    proxy.rules = [{ method: "GET", path: /\/blob/, fault: { kind: "reset-response", after: 70_000 } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.status).toBe(200);
    expect(got.error).toBeDefined();
    expect(got.body.length).toBe(70_000);
    expect(got.body.equals(BLOB.subarray(0, 70_000))).toBe(true);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.bytesSent(/\/blob/)).toBe(70_000);
  });

  it("reset-response with after 0 sends only headers", async () => {
    proxy.rules = [{ fault: { kind: "reset-response", after: 0 } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.status).toBe(200);
    expect(got.error).toBeDefined();
    expect(got.body.length).toBe(0);
  });

  it("truncate keeps Content-Length but closes early", async () => {
    proxy.rules = [{ fault: { kind: "truncate", after: 5000 } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.status).toBe(200);
    expect(got.headers?.["content-length"]).toBe(String(BLOB_SIZE));
    expect(got.error).toBeDefined();
    expect(got.body.length).toBe(5000);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ fault: "truncate", responseBytes: 5000 });
  });

  it("truncate cuts a chunked response too", async () => {
    proxy.rules = [{ fault: { kind: "truncate", after: 1500 } }];
    const got = await send(`${proxy.url}/chunked`);
    expect(got.error).toBeDefined();
    expect(got.body.length).toBe(1500);
  });

  it("flip changes exactly one byte", async () => {
    proxy.rules = [{ fault: { kind: "flip", at: 123_457 } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.error).toBeUndefined();
    expect(got.body.length).toBe(BLOB_SIZE);
    const diffs: number[] = [];
    for (let i = 0; i < BLOB_SIZE; i++) if (got.body[i] !== BLOB[i]) diffs.push(i);
    expect(diffs).toEqual([123_457]);
    expect(got.body[123_457]).toBe(BLOB[123_457]! ^ 0xff);
  });

  it("status answers directly", async () => {
    proxy.rules = [{ fault: { kind: "status", status: 429, headers: { "retry-after": "1" }, body: "slow down" } }];
    const got = await send(`${proxy.url}/upload`, { method: "PUT", body: Buffer.alloc(1000) });
    expect(got.status).toBe(429);
    expect(got.headers?.["retry-after"]).toBe("1");
    expect(got.body.toString()).toBe("slow down");
    expect(upstreamRecords).toHaveLength(0);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ status: 429, fault: "status", responseBytes: 9 });
  });

  it("header replaces and removes response headers", async () => {
    proxy.rules = [{ fault: { kind: "header", name: "Docker-Content-Digest", value: "sha256:bad" } }];
    let got = await send(`${proxy.url}/blob`);
    expect(got.headers?.["docker-content-digest"]).toBe("sha256:bad");
    expect(got.body.equals(BLOB)).toBe(true);

    proxy.rules = [{ fault: { kind: "header", name: "docker-content-digest", value: undefined } }];
    got = await send(`${proxy.url}/blob`);
    expect(got.headers?.["docker-content-digest"]).toBeUndefined();
    expect(got.body.equals(BLOB)).toBe(true);

    proxy.rules = [{ fault: { kind: "header", name: "content-length", value: undefined } }];
    got = await send(`${proxy.url}/blob`);
    expect(got.error).toBeUndefined();
    expect(got.headers?.["content-length"]).toBeUndefined();
    expect(got.body.equals(BLOB)).toBe(true);
  });

  it("headers adds and replaces several response headers and forwards the body", async () => {
    proxy.rules = [{ fault: { kind: "headers", set: { "RateLimit-Limit": "100;w=21600", "ratelimit-remaining": "7;w=21600", "docker-content-digest": BLOB_DIGEST.replace(/.$/, "0") } } }];
    const got = await send(`${proxy.url}/blob`);
    expect(got.headers?.["ratelimit-limit"]).toBe("100;w=21600");
    expect(got.headers?.["ratelimit-remaining"]).toBe("7;w=21600");
    expect(got.headers?.["docker-content-digest"]).toBe(BLOB_DIGEST.replace(/.$/, "0"));
    expect(got.headers?.["content-length"]).toBe(String(BLOB_SIZE));
    expect(got.body.equals(BLOB)).toBe(true);
    await waitFor(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ status: 200, fault: "headers" });
  });

  it("header can fake a wrong Content-Length", async () => {
    proxy.rules = [{ fault: { kind: "header", name: "content-length", value: String(BLOB_SIZE + 10) } }];
    let got = await send(`${proxy.url}/blob`);
    expect(got.error).toBeDefined();
    expect(got.body.length).toBe(BLOB_SIZE);

    proxy.rules = [{ fault: { kind: "header", name: "content-length", value: "1000" } }];
    got = await send(`${proxy.url}/blob`);
    expect(got.headers?.["content-length"]).toBe("1000");
    expect(got.body.equals(BLOB.subarray(0, 1000))).toBe(true);
    await waitFor(() => proxy.log.length === 2);
    expect(proxy.log[1]?.responseBytes).toBe(1000);
  });

  it("redirect answers with a Location on the target", async () => {
    proxy.rules = [{ fault: { kind: "redirect", to: "http://127.0.0.2:9" } }];
    const got = await send(`${proxy.url}/blob?x=1`);
    expect(got.status).toBe(307);
    expect(got.headers?.location).toBe("http://127.0.0.2:9/blob?x=1");
    proxy.rules = [{ fault: { kind: "redirect", to: "http://h", status: 302 } }];
    expect((await send(`${proxy.url}/a`)).status).toBe(302);
    expect(upstreamRecords).toHaveLength(0);
  });

  it("delay waits before forwarding", async () => {
    proxy.rules = [{ fault: { kind: "delay", ms: 120 } }];
    const start = performance.now();
    const got = await send(`${proxy.url}/upload`, { method: "POST", body: Buffer.alloc(5000) });
    expect(performance.now() - start).toBeGreaterThanOrEqual(115);
    expect(got.status).toBe(201);
    expect(JSON.parse(got.body.toString())).toEqual({ received: 5000 });
  });

  it("stall sends N bytes plus the trickle and then nothing", async () => {
    proxy.rules = [{ fault: { kind: "stall", after: 1000, trickle: { bytes: 10, everyMs: 20, forMs: 100 } } }];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 350);
    const got = await send(`${proxy.url}/blob`, { signal: ac.signal });
    clearTimeout(timer);
    expect(got.status).toBe(200);
    expect(got.error?.name).toMatch(/Abort/);
    expect(got.body.length).toBe(1050);
    expect(got.body.equals(BLOB.subarray(0, 1050))).toBe(true);
    expect(proxy.bytesSent(/\/blob/)).toBe(1050);
  });

  it("stall without trickle keeps the socket open until close()", async () => {
    const p2 = await startFaultProxy(upstreamUrl);
    p2.rules = [{ fault: { kind: "stall", after: 0 } }];
    const got = send(`${p2.url}/blob`);
    await waitFor(() => p2.bytesSent(/blob/) === 0 && p2.faultsInjected === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(p2.log).toHaveLength(0); // still in flight
    await p2.close();
    const result = await got;
    expect(result.error).toBeDefined();
    expect(result.body.length).toBe(0);
    expect(p2.log).toHaveLength(1);
  });

  it("strip-range forwards without Range, so a Range-honouring upstream answers 200 with the whole body", async () => {
    const ranged = await send(`${proxy.url}/ranged`, { headers: { range: "bytes=1000-" } });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(BLOB.subarray(1000))).toBe(true);
    expect(upstreamRecords[0]?.range).toBe("bytes=1000-");

    proxy.rules = [{ method: "GET", path: /\/ranged/, fault: { kind: "strip-range" } }];
    const stripped = await send(`${proxy.url}/ranged`, { headers: { range: "bytes=1000-", "if-range": '"etag"' } });
    expect(stripped.error).toBeUndefined();
    expect(stripped.status).toBe(200);
    expect(stripped.headers?.["content-range"]).toBeUndefined();
    expect(stripped.body.equals(BLOB)).toBe(true);
    expect(upstreamRecords[1]?.range).toBeUndefined();
    await waitFor(() => proxy.log.length === 2);
    // The log keeps the Range the client asked for.
    expect(proxy.log[1]).toMatchObject({ fault: "strip-range", status: 200, range: "bytes=1000-", responseBytes: BLOB_SIZE });
    expect(proxy.faultsInjected).toBe(1);
  });

  it("reset-request cuts the upload the upstream sees", async () => {
    proxy.rules = [{ method: "PUT", fault: { kind: "reset-request", after: 1000 } }];
    const got = await send(`${proxy.url}/upload`, { method: "PUT", body: BLOB.subarray(0, 200_000) });
    expect(got.error).toBeDefined();
    await waitFor(() => upstreamRecords.length === 1 && proxy.log.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(upstreamRecords[0]).toMatchObject({ method: "PUT", bytes: 1000, complete: false });
    expect(proxy.bytesReceived(/upload/)).toBe(1000);
  });

  it("reset-request with lateUntilNext keeps the upstream side open until the next request on that path is answered", async () => {
    proxy.rules = [{ method: "PUT", fault: { kind: "reset-request", after: 1000, lateUntilNext: true } }];
    const got = await send(`${proxy.url}/upload?_state=1`, { method: "PUT", body: BLOB.subarray(0, 200_000) });
    expect(got.error).toBeDefined();
    await waitFor(() => upstreamRecords[0]?.bytes === 1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(upstreamRecords[0]).toMatchObject({ method: "PUT", complete: false, closed: false });
    // Another path does not release it; the same path with another query does, once answered.
    expect((await send(`${proxy.url}/other`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(upstreamRecords[0]!.closed).toBe(false);
    expect((await send(`${proxy.url}/upload?_state=2`)).status).toBe(200);
    expect(upstreamRecords[2]).toMatchObject({ method: "GET", url: "/upload?_state=2" });
    await waitFor(() => upstreamRecords[0]!.closed);
    expect(upstreamRecords[0]).toMatchObject({ bytes: 1000, complete: false });
    expect(proxy.bytesReceived(/upload/, "PUT")).toBe(1000);
  });

  it("reset-request-unforwarded never reaches upstream", async () => {
    proxy.rules = [{ method: "PUT", fault: { kind: "reset-request-unforwarded", after: 1000 } }];
    const got = await send(`${proxy.url}/upload`, { method: "PUT", body: BLOB.subarray(0, 200_000) });
    expect(got.error).toBeDefined();
    await waitFor(() => proxy.log.length === 1);
    expect(upstreamRecords).toHaveLength(0);
    expect(proxy.log[0]).toMatchObject({ fault: "reset-request-unforwarded", requestBytes: 1000 });
  });
});

describe("rule selection", () => {
  const teapot = { kind: "status", status: 418 } as const;
  const statuses = async (n: number, path = "/x") => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await send(`${proxy.url}${path}`, { method: "HEAD" })).status ?? -1);
    return out;
  };

  it("nth hits only the Nth matching request", async () => {
    proxy.rules = [{ method: "HEAD", path: /\/x/, nth: 2, fault: teapot }];
    expect(await statuses(4)).toEqual([200, 418, 200, 200]);
    expect(await statuses(1, "/y")).toEqual([200]);
    expect(proxy.faultsInjected).toBe(1);
  });

  it("times limits injections, and reset() clears rule counters", async () => {
    proxy.rules = [{ fault: teapot, times: 2 }];
    expect(await statuses(4)).toEqual([418, 418, 200, 200]);
    proxy.reset();
    expect(proxy.log).toHaveLength(0);
    expect(proxy.faultsInjected).toBe(0);
    expect(await statuses(3)).toEqual([418, 418, 200]);
  });

  it("the first allowing rule wins; every matching rule counts the request", async () => {
    proxy.rules = [
      { nth: 2, fault: teapot },
      { path: /\/x/, fault: { kind: "status", status: 503 } },
      { nth: 3, fault: { kind: "status", status: 500 } },
    ];
    expect(await statuses(3)).toEqual([503, 418, 503]);
    expect(await statuses(1, "/y")).toEqual([200]);
  });

  it("when filters on the request (headers included) and is asked before nth counting", async () => {
    const seen: string[] = [];
    proxy.rules = [
      {
        nth: 2,
        when: (req) => {
          seen.push(`${req.method} ${req.path} ${String(req.headers["x-token"])}`);
          return req.headers["x-token"] === "old";
        },
        fault: teapot,
      },
    ];
    const status = async (token: string) => (await send(`${proxy.url}/x?q=1`, { method: "HEAD", headers: { "x-token": token } })).status;
    // Only "old" requests count towards nth: the 2nd of them is the one that gets the fault.
    expect([await status("old"), await status("new"), await status("old"), await status("old")]).toEqual([200, 200, 418, 200]);
    expect(seen).toEqual(["HEAD /x?q=1 old", "HEAD /x?q=1 new", "HEAD /x?q=1 old", "HEAD /x?q=1 old"]);
    expect(proxy.faultsInjected).toBe(1);
  });

  it("inFlight counts requests not yet finished", async () => {
    proxy.rules = [{ path: /\/slow/, fault: { kind: "delay", ms: 150 } }];
    const pending = [send(`${proxy.url}/slow/1`), send(`${proxy.url}/slow/2`), send(`${proxy.url}/blob`, { method: "HEAD" })];
    await waitFor(() => proxy.inFlight(/\/slow\//) === 2);
    expect(proxy.inFlight(/\/slow\//, "POST")).toBe(0);
    await Promise.all(pending);
    await waitFor(() => proxy.inFlight() === 0);
    expect(proxy.log).toHaveLength(3);
  });

  it("method filters", async () => {
    proxy.rules = [{ method: "get", fault: teapot }];
    expect(await statuses(1)).toEqual([200]);
    expect((await send(`${proxy.url}/x`)).status).toBe(418);
  });

  it("rate is seeded and reproducible", async () => {
    proxy.rules = [{ rate: 0.5, fault: teapot }];
    const first = await statuses(16);
    const hits = first.filter((s) => s === 418).length;
    expect(hits).toBeGreaterThan(0);
    expect(hits).toBeLessThan(16);
    proxy.reset();
    expect(await statuses(16)).toEqual(first);

    const other = await startFaultProxy(upstreamUrl, { seed: 1 });
    try {
      other.rules = [{ rate: 0.5, fault: teapot }];
      const out: number[] = [];
      for (let i = 0; i < 16; i++) out.push((await send(`${other.url}/x`, { method: "HEAD" })).status ?? -1);
      expect(out).toEqual(first);
    } finally {
      await other.close();
    }

    proxy.rules = [{ rate: 0, fault: teapot }];
    expect(await statuses(3)).toEqual([200, 200, 200]);
  });
});

describe("storage host", () => {
  it("passes through on 127.0.0.2 and records Authorization", async () => {
    const storage = await startStorageHost(upstreamUrl);
    try {
      expect(storage.host).toMatch(/^127\.0\.0\.2:\d+$/);
      proxy.rules = [{ method: "GET", path: /\/blob/, fault: { kind: "redirect", to: storage.url } }];
      const redirect = await send(`${proxy.url}/blob?sig=1`, { headers: { authorization: "Bearer secret" } });
      expect(redirect.status).toBe(307);
      expect(redirect.headers?.location).toBe(`${storage.url}/blob?sig=1`);
      const got = await send(String(redirect.headers?.location));
      expect(got.body.equals(BLOB)).toBe(true);
      await send(`${storage.url}/x`, { headers: { authorization: "Basic abc" } });
      await waitFor(() => storage.log.length === 2);
      expect(storage.log.map((e) => [e.path, e.authorization])).toEqual([
        ["/blob?sig=1", false],
        ["/x", true],
      ]);
      expect(storage.log[0]?.responseBytes).toBe(BLOB_SIZE);
    } finally {
      await storage.close();
    }
  });
});
