// Hostile input: the size and shape limits regcli puts on what a registry (or a user) sends, proved end to end
// with the built CLI. Against the real docker-registry through the fault proxy wherever Distribution can produce
// the case; small in-process node:http(s) fakes only where it cannot (bodies it refuses to store or never sends).
// Each limit holds at exactly the limit and refuses one byte over, with ONE line on stderr (no stack trace), a
// documented exit code (src/errors.ts: usage 2, auth 3, not-found 4, network/registry/integrity 5), and nothing
// left in the store or on stdout that looks complete.
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, tempDir, type CliResult } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { makeImage, pushBlob, pushImage, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

// The documented limits (src/oci/manifest.ts, src/auth/session.ts, src/registry/errors.ts, src/registry/client.ts).
const KiB = 1024;
const MiB = 1024 * KiB;
const MAX_MANIFEST_BYTES = 4 * MiB;
const MAX_INDEX_DEPTH = 4;
const MAX_TOKEN_RESPONSE_BYTES = 1 * MiB;
const MAX_ERROR_BODY_BYTES = 64 * KiB;
const MAX_LIST_PAGE_BYTES = 16 * MiB;
/** Well under the CLI's default --timeout (60 s): a client that read an endless or stalled body would not make it. */
const PROMPT_MS = 15_000;

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

// ---- assertions ----

/** A regular expression matching `text` literally. */
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function ok<T extends CliResult>(r: T): T {
  expect(r.code, r.stderr.slice(0, 2000)).toBe(0);
  return r;
}

/** Failed with `code` and exactly one clean "regcli: error:" line on stderr matching `pattern`; returns the line. */
function refused(r: CliResult, code: number, pattern: RegExp): string {
  const shown = r.stderr.slice(0, 2000); // a failure report of a hostile 60 KB line stays readable
  expect(r.code, shown).toBe(code);
  expect(r.stderr.endsWith("\n"), shown).toBe(true);
  const lines = r.stderr.slice(0, -1).split("\n");
  expect(lines.length, shown).toBe(1);
  const line = lines[0]!;
  expect(line.startsWith("regcli: error: "), shown).toBe(true);
  expect(pattern.test(line), shown).toBe(true);
  expect(/[\u0000-\u001f\u007f]/.test(line), shown).toBe(false); // no CR, ESC or other control characters
  expect(/^\s+at /m.test(r.stderr), shown).toBe(false); // no stack trace
  return line;
}

/** Polls until `check` holds (events on the server side of a socket may trail the client's exit a little). */
async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return check();
}

async function timed(run: () => Promise<CliResult>): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const r = await run();
  return { ...r, ms: Date.now() - started };
}

/** The local store lists no image, and every blob file in it is complete and verified; `absent` are not there at all. */
async function storeHoldsNothing(home: string, absent: string[] = []): Promise<void> {
  const images = await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: home } });
  expect(images.code, images.stderr).toBe(0);
  expect(JSON.parse(images.stdout)).toEqual([]);
  const dir = join(home, "store", "blobs", "sha256");
  const files = await readdir(dir).catch(() => [] as string[]);
  for (const f of files) {
    if (!f.endsWith(".partial") && !f.endsWith(".lock")) expect(sha256(await readFile(join(dir, f)))).toBe(`sha256:${f}`);
  }
  for (const digest of absent) expect(files).not.toContain(digest.slice("sha256:".length));
}

// ---- documents ----

/** A valid image manifest padded (with an annotation) to exactly `size` bytes. */
function paddedManifest(image: TestImage, size: number): Buffer {
  const doc = JSON.parse(image.manifest.toString("utf8")) as Record<string, unknown>;
  const pad = size - Buffer.byteLength(JSON.stringify({ ...doc, annotations: { pad: "" } }));
  const bytes = Buffer.from(JSON.stringify({ ...doc, annotations: { pad: "x".repeat(pad) } }));
  expect(bytes.length).toBe(size);
  return bytes;
}

/** JSON followed by spaces up to exactly `size` bytes (still valid JSON). */
function paddedJson(value: unknown, size: number): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  expect(json.length).toBeLessThanOrEqual(size);
  return Buffer.concat([json, Buffer.alloc(size - json.length, 0x20)]);
}

function indexOf(children: Array<{ manifest: Buffer; mediaType: string; size?: number }>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({
        mediaType: c.mediaType,
        digest: sha256(c.manifest),
        size: c.size ?? c.manifest.length,
        platform: { os: "linux", architecture: "amd64" },
      })),
    }),
  );
}

// ---- fakes ----

interface Fake {
  url: string;
  host: string;
  requests: Array<{ method: string; url: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

const fakes: Fake[] = [];
afterAll(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

/** An in-process HTTP(S) server; `/v2/` answers 200 unless the handler answers it. Requests are recorded. */
async function startFake(handler: Handler, opts: { bindHost?: string; tls?: { cert: string; key: string }; ownV2?: boolean } = {}): Promise<Fake> {
  const requests: Fake["requests"] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "GET", url: req.url ?? "/", authorization: req.headers.authorization });
    res.on("error", () => undefined);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (!opts.ownV2 && req.url === "/v2/") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "2" }).end("{}");
        return;
      }
      Promise.resolve(handler(req, res, Buffer.concat(chunks))).catch(() => res.destroy());
    });
  };
  const server: Server = opts.tls ? createHttpsServer(opts.tls, listener) : createServer(listener);
  const bindHost = opts.bindHost ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, bindHost, resolve));
  const host = `${bindHost}:${(server.address() as AddressInfo).port}`;
  const fake: Fake = {
    url: `${opts.tls ? "https" : "http"}://${host}`,
    host,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  fakes.push(fake);
  return fake;
}

/** A self-signed certificate for 127.0.0.1 (openssl), for fake https registries; `dir` holds cert.pem for --ca-file. */
async function selfSignedCert(): Promise<{ dir: string; tls: { cert: string; key: string } }> {
  const dir = await tempDir("regcli-hostile-tls-");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    { cwd: dir, stdio: "ignore" },
  );
  return { dir, tls: { cert: await readFile(join(dir, "cert.pem"), "utf8"), key: await readFile(join(dir, "key.pem"), "utf8") } };
}

/** Writes `chunk` until the client goes away, respecting backpressure; counts what was handed to the socket. */
function endless(res: ServerResponse, chunk: Buffer, sent: { bytes: number; closed: boolean }): void {
  res.once("close", () => (sent.closed = true));
  const pump = () => {
    while (!res.destroyed && !res.writableEnded) {
      sent.bytes += chunk.length;
      if (!res.write(chunk)) return;
    }
  };
  res.on("drain", pump);
  pump();
}

// =================================================================================================================

describe("hostile input from docker-registry, through the fault proxy", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let image: TestImage;
  let big: Buffer;

  beforeAll(async () => {
    reg = await startRegistry("open");
    proxy = await startFaultProxy(reg.url);
    image = await makeImage({ layers: 1, layerSize: 4096, seed: "hostile-base" });
    await pushImage(reg, "hostile/app", "1", image);
    big = paddedManifest(image, MAX_MANIFEST_BYTES);
    await pushManifest(reg, "hostile/app", "4mib", big, OCI_MANIFEST);
  });
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  const pull = async (ref: string, args: string[] = []) => {
    const home = await tempDir("regcli-hostile-");
    const r = await regcli(["--plain-http", "pull", "--progress", "none", ...args, ref], { env: { REGCLI_HOME: home } });
    return { ...r, home };
  };

  it("a manifest of exactly 4 MiB is printed byte for byte and pulled into the store", async () => {
    proxy.reset();
    proxy.rules = [];
    const printed = ok(await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:4mib`]));
    expect(printed.stdoutBuffer.length).toBe(MAX_MANIFEST_BYTES);
    expect(printed.stdoutBuffer.equals(big)).toBe(true);
    const gets = proxy.log.filter((e) => e.method === "GET" && e.path.endsWith("/manifests/4mib"));
    expect(gets.map((e) => e.responseBytes)).toEqual([MAX_MANIFEST_BYTES]);

    const pulled = ok(await pull(`${proxy.host}/hostile/app:4mib`));
    expect(pulled.stdout.trim()).toBe(sha256(big));
    const images = JSON.parse((await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: pulled.home } })).stdout) as Array<{ digest: string }>;
    expect(images.map((i) => i.digest)).toEqual([sha256(big)]);
  });

  it("a mediaType that disagrees with the Content-Type it is served with is refused (exit 5)", async () => {
    // Control: as served by the registry, the manifest is fine.
    proxy.reset();
    proxy.rules = [];
    ok(await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:1`]));
    proxy.reset();
    proxy.rules = [{ path: /\/manifests\/1$/, fault: { kind: "header", name: "content-type", value: DOCKER_MANIFEST } }];
    const printed = await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:1`]);
    refused(printed, 5, new RegExp(esc(`invalid manifest from ${proxy.host}/hostile/app:1: mediaType ${OCI_MANIFEST} disagrees with Content-Type ${DOCKER_MANIFEST}`) + "$"));
    expect(printed.stdout).toBe("");
    const pulled = await pull(`${proxy.host}/hostile/app:1`);
    refused(pulled, 5, /disagrees with Content-Type/);
    expect(proxy.faultsInjected).toBeGreaterThanOrEqual(2);
    await storeHoldsNothing(pulled.home, [image.manifestDigest, image.layers[0]!.digest]);
  });

  it(`index nesting ${MAX_INDEX_DEPTH} deep is pulled; ${MAX_INDEX_DEPTH + 1} deep is refused (exit 5) with nothing stored`, async () => {
    // image <- index(depth 1) <- index(depth 2) <- ... ; Distribution stores an index of indexes.
    await pushImage(reg, "hostile/nested", undefined, image);
    let child = { manifest: image.manifest, mediaType: image.mediaType };
    const digests: string[] = [];
    for (let depth = 1; depth <= MAX_INDEX_DEPTH + 1; depth++) {
      const index = indexOf([child]);
      await pushManifest(reg, "hostile/nested", `depth${depth}`, index, OCI_INDEX);
      digests.push(sha256(index));
      child = { manifest: index, mediaType: OCI_INDEX };
    }
    proxy.reset();
    proxy.rules = [];
    const deepest = ok(await pull(`${proxy.host}/hostile/nested:depth${MAX_INDEX_DEPTH}`, ["--all-platforms"]));
    expect(deepest.stdout.trim()).toBe(digests[MAX_INDEX_DEPTH - 1]);
    const images = JSON.parse((await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: deepest.home } })).stdout) as Array<{ digest: string }>;
    expect(images.map((i) => i.digest)).toEqual([digests[MAX_INDEX_DEPTH - 1]]);

    const tooDeep = await pull(`${proxy.host}/hostile/nested:depth${MAX_INDEX_DEPTH + 1}`, ["--all-platforms"]);
    refused(tooDeep, 5, new RegExp(`index nesting in ${proxy.host}/hostile/nested is deeper than ${MAX_INDEX_DEPTH}$`));
    await storeHoldsNothing(tooDeep.home, [...digests, image.manifestDigest]);
  });

  it("an index whose child descriptor has the wrong size is refused naming the child's digest (exit 5)", async () => {
    const wrong = indexOf([{ manifest: image.manifest, mediaType: image.mediaType, size: image.manifest.length + 1 }]);
    await pushManifest(reg, "hostile/app", "wrong-child-size", wrong, OCI_INDEX);
    proxy.reset();
    proxy.rules = [];
    const expected = new RegExp(
      `manifest ${image.manifestDigest} from ${proxy.host}/hostile/app is ${image.manifest.length} bytes but its index says ${image.manifest.length + 1}$`,
    );
    const all = await pull(`${proxy.host}/hostile/app:wrong-child-size`, ["--all-platforms"]);
    refused(all, 5, expected);
    await storeHoldsNothing(all.home, [sha256(wrong), image.manifestDigest]);
    // The usual pull picks one platform of the index: the same check applies to the entry it picks.
    const one = await pull(`${proxy.host}/hostile/app:wrong-child-size`, ["--platform", "linux/amd64"]);
    refused(one, 5, expected);
    await storeHoldsNothing(one.home, [sha256(wrong), image.manifestDigest]);
    // And so does inspect (config and export resolve the platform the same way).
    const inspected = await regcli(["--plain-http", "inspect", "--platform", "linux/amd64", `${proxy.host}/hostile/app:wrong-child-size`]);
    refused(inspected, 5, new RegExp(`manifest ${image.manifestDigest} from \\S+ is ${image.manifest.length} bytes but its index says ${image.manifest.length + 1}$`));
    expect(inspected.stdout).toBe("");
  });

  it("an image manifest whose layer descriptor has the wrong size is refused naming the layer (exit 5)", async () => {
    const doc = JSON.parse(image.manifest.toString("utf8")) as { layers: Array<{ size: number }> };
    const layer = image.layers[0]!;
    doc.layers[0]!.size = layer.size + 1;
    const wrong = Buffer.from(JSON.stringify(doc));
    await pushManifest(reg, "hostile/app", "wrong-layer-size", wrong, OCI_MANIFEST);
    proxy.reset();
    proxy.rules = [];
    const r = await pull(`${proxy.host}/hostile/app:wrong-layer-size`);
    refused(r, 5, new RegExp(`blob ${layer.digest} from ${proxy.host} has size ${layer.size}, expected ${layer.size + 1}$`));
    await storeHoldsNothing(r.home, [sha256(wrong), layer.digest]);
  });

  it("a config that is JSON but not an object is refused alike by inspect, mutate and index create (exit 5)", async () => {
    const config = Buffer.from("[]");
    await pushBlob(reg, "hostile/app", { digest: sha256(config), data: config });
    const doc = JSON.parse(image.manifest.toString("utf8")) as { config: { digest: string; size: number } };
    doc.config = { ...doc.config, digest: sha256(config), size: config.length };
    await pushManifest(reg, "hostile/app", "array-config", Buffer.from(JSON.stringify(doc)), OCI_MANIFEST);
    const ref = `${proxy.host}/hostile/app:array-config`;
    const notObject = new RegExp(`the config ${sha256(config)} of \\S+ is not a JSON object$`);
    for (const args of [["inspect", ref], ["mutate", ref, "-t", `${proxy.host}/hostile/app:mutated`, "--label", "a=b"], ["index", "create", `${proxy.host}/hostile/app:index`, ref]]) {
      const r = await regcli(["--plain-http", ...args]);
      refused(r, 5, notObject);
      expect(r.stdout).toBe("");
    }
    // `images` lists what the store holds, such an image too: its platform unknown, never an internal error.
    const home = await tempDir();
    for (const [tag, bytes] of [["array-config", config], ["null-config", Buffer.from("null")]] as const) {
      if (tag === "null-config") {
        await pushBlob(reg, "hostile/app", { digest: sha256(bytes), data: bytes });
        await pushManifest(reg, "hostile/app", tag, Buffer.from(JSON.stringify({ ...doc, config: { ...doc.config, digest: sha256(bytes), size: bytes.length } })), OCI_MANIFEST);
      }
      expect((await regcli(["--plain-http", "pull", `${proxy.host}/hostile/app:${tag}`], { env: { REGCLI_HOME: home } })).code).toBe(0);
    }
    const images = await regcli(["images", "--format", "json"], { env: { REGCLI_HOME: home } });
    expect(images.code, images.stderr).toBe(0);
    expect((JSON.parse(images.stdout) as Array<{ tag: string; platforms: string[] }>).map((i) => [i.tag, i.platforms])).toEqual(
      expect.arrayContaining([["array-config", ["unknown/unknown"]], ["null-config", ["unknown/unknown"]]]),
    );
  });

  describe("registry error bodies", () => {
    const errorBody = (size: number) => {
      const doc = { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: "" }] };
      const pad = size - Buffer.byteLength(JSON.stringify(doc));
      doc.errors[0]!.detail = "d".repeat(pad);
      const body = JSON.stringify(doc);
      expect(Buffer.byteLength(body)).toBe(size);
      return body;
    };
    const answer = (body: string) => {
      proxy.reset();
      proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, fault: { kind: "status", status: 404, headers: { "content-type": "application/json" }, body } }];
    };

    it("an error body of exactly 64 KiB is read for its code; one byte more is not read, and the line stays short", async () => {
      answer(errorBody(MAX_ERROR_BODY_BYTES));
      const exact = await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:1`]);
      const line = refused(exact, 4, new RegExp(`manifest ${proxy.host}/hostile/app:1 not found \\(MANIFEST_UNKNOWN: manifest unknown\\)$`));
      expect(line.length).toBeLessThan(300);
      expect(proxy.bytesSent(/\/manifests\/1$/, "GET")).toBe(MAX_ERROR_BODY_BYTES);

      answer(errorBody(MAX_ERROR_BODY_BYTES + 1));
      const over = await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:1`]);
      const overLine = refused(over, 4, new RegExp(`manifest ${proxy.host}/hostile/app:1 not found \\(HTTP 404\\)$`));
      expect(overLine).not.toContain("MANIFEST_UNKNOWN");
      expect(over.stdout).toBe("");
    });

    it("a registry error message with newlines, escape codes and 60 KB of text prints as one short line", async () => {
      const message = `bad thing\n    at Object.<anonymous> (/evil.js:1:1)\r\n\u001b[2J\u001b[31mregcli: error: forged\u0007${"y".repeat(60_000)}`;
      const body = JSON.stringify({ errors: [{ code: "DENIED", message }] });
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_ERROR_BODY_BYTES);
      proxy.reset();
      proxy.rules = [{ method: "GET", path: /\/manifests\/1$/, fault: { kind: "status", status: 403, headers: { "content-type": "application/json" }, body } }];
      const r = await regcli(["--plain-http", "manifest", `${proxy.host}/hostile/app:1`]);
      const line = refused(r, 3, new RegExp(`access denied to manifest ${proxy.host}/hostile/app:1 \\(DENIED: bad thing`));
      expect(line.length).toBeLessThan(600); // the registry's message is cut at 300 characters
      expect(line).toContain("...");
    });
  });

  describe("references (exit 2, one line, nothing sent)", () => {
    it.each([
      [["manifest", "HOST/hostile/app@md5:" + "a".repeat(32)], /unsupported digest algorithm "md5"/],
      [["pull", "HOST/hostile/app@sha256:abc"], /sha256 digest must have 64 hex characters \(got 3\)/],
      [["blob", "HOST/hostile/app@sha512:" + "a".repeat(64)], /sha512 digest must have 128 hex characters \(got 64\)/],
      [["manifest", "HOST/hostile/../etc:1"], /repository name component "\.\." /],
      [["copy", "HOST/hostile/a%2fb:1", "HOST/hostile/b:1"], /repository name component "a%2fb" may only contain/],
      [["ls", "HOST/hostile/%2e%2e/app"], /repository name component "%2e%2e" may only contain/],
    ])("%j", async (args, pattern) => {
      proxy.reset();
      proxy.rules = [];
      const r = await regcli(["--plain-http", ...(args as string[]).map((a) => a.replace("HOST", proxy.host))]);
      refused(r, 2, pattern as RegExp);
      expect(r.stdout).toBe("");
      expect(proxy.log).toEqual([]);
    });
  });
});

// =================================================================================================================

describe("token responses, from the real token service padded to size", () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let pad: Fake;
  let image: TestImage;
  let padding: { size: number; chunked: boolean };
  const served: number[] = [];

  beforeAll(async () => {
    reg = await startRegistry("token");
    image = await makeImage({ layers: 1, layerSize: 2048, seed: "hostile-token" });
    await pushImage(reg, "tok/app", "1", image);
    // A token service on another port: forwards to the harness's real realm and pads the JSON with spaces.
    pad = await startFake(async (req, res) => {
      const upstream = await fetch(new URL(req.url ?? "/", reg.tokenRealm), { headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} });
      const json = Buffer.from(await upstream.arrayBuffer());
      const body = upstream.status === 200 ? paddedJson(JSON.parse(json.toString("utf8")), padding.size) : json;
      served.push(body.length);
      if (padding.chunked) {
        res.writeHead(upstream.status, { "content-type": "application/json" });
        res.write(body.subarray(0, 1000));
        res.end(body.subarray(1000));
      } else res.writeHead(upstream.status, { "content-type": "application/json", "content-length": String(body.length) }).end(body);
    });
    proxy = await startFaultProxy(reg.url);
    // Every challenge the registry sends points at the padding realm instead.
    proxy.rules = [{ fault: { kind: "header", name: "www-authenticate", value: `Bearer realm="${pad.url}/token",service="test-registry"` } }];
  });
  afterAll(async () => Promise.all([proxy?.close(), reg?.stop()]));

  const pull = async () => {
    const home = await tempDir("regcli-hostile-");
    const r = await regcli(["--plain-http", "pull", "--progress", "none", `${proxy.host}/tok/app:1`], { env: { REGCLI_HOME: home } });
    return { ...r, home };
  };

  it("a token response of exactly 1 MiB is used for an anonymous pull", async () => {
    padding = { size: MAX_TOKEN_RESPONSE_BYTES, chunked: false };
    served.length = 0;
    const issued = reg.issued!.count;
    const r = ok(await pull());
    expect(r.stdout.trim()).toBe(image.manifestDigest);
    expect(served.length).toBeGreaterThan(0);
    expect(served.every((n) => n === MAX_TOKEN_RESPONSE_BYTES)).toBe(true);
    expect(reg.issued!.count).toBe(issued + served.length);
  });

  it("1 MiB + 1 is refused (exit 5), whether declared by Content-Length or streamed", async () => {
    padding = { size: MAX_TOKEN_RESPONSE_BYTES + 1, chunked: false };
    const declared = await pull();
    refused(declared, 5, new RegExp(`token response from ${pad.host} is too large \\(${MAX_TOKEN_RESPONSE_BYTES + 1} bytes, limit ${MAX_TOKEN_RESPONSE_BYTES}\\)$`));
    await storeHoldsNothing(declared.home, [image.manifestDigest]);

    padding = { size: MAX_TOKEN_RESPONSE_BYTES + 1, chunked: true };
    const streamed = await pull();
    refused(streamed, 5, new RegExp(`token response from ${pad.host} is too large \\(over ${MAX_TOKEN_RESPONSE_BYTES} bytes\\)$`));
    await storeHoldsNothing(streamed.home, [image.manifestDigest]);
  });
});

// =================================================================================================================

describe("hostile registries that Distribution cannot imitate (in-process fakes)", () => {
  let source: TestRegistry;
  let image: TestImage;

  beforeAll(async () => {
    source = await startRegistry("open");
    image = await makeImage({ layers: 2, layerSize: 4096, seed: "hostile-fake" });
    await pushImage(source, "src/app", "1", image);
  });
  afterAll(async () => source?.stop());

  /** A registry serving `manifest(res)` for GET/HEAD /v2/app/manifests/1. */
  const manifestServer = (serve: (res: ServerResponse) => void) =>
    startFake((req, res) => {
      if (/^\/v2\/app\/manifests\/1$/.test(req.url ?? "")) serve(res);
      else res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
    });

  describe(`manifests over ${MAX_MANIFEST_BYTES} bytes`, () => {
    it("streamed without a length: exactly 4 MiB is accepted, 4 MiB + 1 is refused", async () => {
      let size = MAX_MANIFEST_BYTES;
      const fake = await manifestServer((res) => {
        const body = paddedManifest(image, size);
        res.writeHead(200, { "content-type": OCI_MANIFEST });
        for (let off = 0; off < body.length; off += 64 * KiB) res.write(body.subarray(off, off + 64 * KiB));
        res.end();
      });
      const exact = ok(await regcli(["manifest", `${fake.host}/app:1`]));
      expect(exact.stdoutBuffer.length).toBe(MAX_MANIFEST_BYTES);
      size = MAX_MANIFEST_BYTES + 1;
      const over = await regcli(["manifest", `${fake.host}/app:1`]);
      refused(over, 5, new RegExp(`manifest ${fake.host}/app:1 from ${fake.host} is too large \\(over ${MAX_MANIFEST_BYTES} bytes\\)$`));
      expect(over.stdout).toBe("");
    });

    it("declared 4 MiB + 1 by Content-Length is refused without reading the body (which never comes)", async () => {
      const body = paddedManifest(image, MAX_MANIFEST_BYTES + 1);
      // Why a fake: Distribution refuses to store such a manifest.
      await expect(pushManifest(source, "src/app", "too-big", body, OCI_MANIFEST)).rejects.toThrow(/HTTP 400 .*request body too large/);
      const fake = await manifestServer((res) => {
        res.writeHead(200, { "content-type": OCI_MANIFEST, "content-length": String(body.length) });
        res.write(body.subarray(0, 1024)); // ...and then nothing: reading it whole would wait for --timeout
      });
      const home = await tempDir("regcli-hostile-");
      const r = await timed(() => regcli(["pull", "--progress", "none", `${fake.host}/app:1`], { env: { REGCLI_HOME: home } }));
      refused(r, 5, new RegExp(`manifest ${fake.host}/app:1 from ${fake.host} is too large \\(${MAX_MANIFEST_BYTES + 1} bytes, limit ${MAX_MANIFEST_BYTES}\\)$`));
      expect(r.ms).toBeLessThan(PROMPT_MS);
      await storeHoldsNothing(home, [sha256(body)]);
    });

    it("an endless manifest body is cut off after the limit and the command exits promptly", async () => {
      const sent = { bytes: 0, closed: false };
      const fake = await manifestServer((res) => {
        res.writeHead(200, { "content-type": OCI_MANIFEST });
        endless(res, Buffer.alloc(64 * KiB, 0x20), sent);
      });
      const home = await tempDir("regcli-hostile-");
      const r = await timed(() => regcli(["pull", "--progress", "none", `${fake.host}/app:1`], { env: { REGCLI_HOME: home } }));
      refused(r, 5, new RegExp(`is too large \\(over ${MAX_MANIFEST_BYTES} bytes\\)$`));
      expect(r.ms).toBeLessThan(PROMPT_MS);
      expect(await eventually(() => sent.closed)).toBe(true);
      expect(sent.bytes).toBeGreaterThan(MAX_MANIFEST_BYTES);
      expect(sent.bytes).toBeLessThan(MAX_MANIFEST_BYTES + 32 * MiB); // the limit plus what socket buffers hold
      await storeHoldsNothing(home);
    });
  });

  it("an ambiguous manifest (both manifests and layers) is refused (exit 5)", async () => {
    const doc = JSON.parse(image.manifest.toString("utf8")) as Record<string, unknown>;
    let body = Buffer.from(JSON.stringify({ ...doc, manifests: [] }));
    let contentType = OCI_MANIFEST;
    // Why a fake: Distribution refuses to store such a manifest.
    await expect(pushManifest(source, "src/app", "ambiguous", body, OCI_MANIFEST)).rejects.toThrow(/HTTP 400 .*MANIFEST_INVALID/);
    const fake = await manifestServer((res) => res.writeHead(200, { "content-type": contentType, "content-length": String(body.length) }).end(body));
    const home = await tempDir("regcli-hostile-");
    const r = await regcli(["pull", "--progress", "none", `${fake.host}/app:1`], { env: { REGCLI_HOME: home } });
    refused(r, 5, new RegExp(`invalid manifest from ${fake.host}/app:1: has both manifests and layers/config \\(ambiguous\\)$`));
    await storeHoldsNothing(home, [sha256(body), ...image.layers.map((l) => l.digest)]);
    // The same document calling itself an index.
    body = Buffer.from(JSON.stringify({ ...doc, mediaType: OCI_INDEX, manifests: [] }));
    contentType = OCI_INDEX;
    refused(await regcli(["manifest", `${fake.host}/app:1`]), 5, /\(ambiguous\)$/);
  });

  it("an endless error body is not read to its end: the command exits promptly with the status", async () => {
    const sent = { bytes: 0, closed: false };
    const fake = await manifestServer((res) => {
      res.writeHead(500, { "content-type": "application/json" });
      endless(res, Buffer.alloc(16 * KiB, 0x7b), sent);
    });
    const r = await timed(() => regcli(["--retries", "1", "manifest", `${fake.host}/app:1`]));
    refused(r, 5, new RegExp(`${fake.host} failed manifest ${fake.host}/app:1 \\(HTTP 500\\) after 2 tries$`));
    expect(r.ms).toBeLessThan(PROMPT_MS);
    expect(fake.requests.filter((q) => q.url === "/v2/app/manifests/1")).toHaveLength(2);
    expect(await eventually(() => sent.closed)).toBe(true);
    expect(sent.bytes).toBeLessThan(32 * MiB);
  });

  describe(`tag and repository lists over ${MAX_LIST_PAGE_BYTES} bytes per page`, () => {
    const listServer = (path: RegExp, page: (res: ServerResponse) => void) =>
      startFake((req, res) => {
        if (path.test(req.url ?? "")) page(res);
        else res.writeHead(404).end();
      });

    it("a tag page of exactly 16 MiB is listed; 16 MiB + 1 (declared) is refused (exit 5)", async () => {
      let size = MAX_LIST_PAGE_BYTES;
      const fake = await listServer(/^\/v2\/app\/tags\/list\?/, (res) => {
        const body = paddedJson({ name: "app", tags: ["1.0", "2.0"] }, size);
        res.writeHead(200, { "content-type": "application/json", "content-length": String(body.length) }).end(body);
      });
      const exact = ok(await regcli(["ls", `${fake.host}/app`]));
      expect(exact.stdout).toBe("1.0\n2.0\n");
      size = MAX_LIST_PAGE_BYTES + 1;
      const over = await regcli(["ls", `${fake.host}/app`]);
      refused(over, 5, new RegExp(`tags of ${fake.host}/app from ${fake.host} is too large \\(${MAX_LIST_PAGE_BYTES + 1} bytes, limit ${MAX_LIST_PAGE_BYTES}\\)$`));
      expect(over.stdout).toBe("");
    });

    it("a catalog page of exactly 16 MiB is listed; 16 MiB + 1 (streamed) is refused (exit 5)", async () => {
      let size = MAX_LIST_PAGE_BYTES;
      const fake = await listServer(/^\/v2\/_catalog\?/, (res) => {
        const body = paddedJson({ repositories: ["a/one", "b/two"] }, size);
        res.writeHead(200, { "content-type": "application/json" });
        for (let off = 0; off < body.length; off += MiB) res.write(body.subarray(off, off + MiB));
        res.end();
      });
      const exact = ok(await regcli(["ls", fake.host]));
      expect(exact.stdout).toBe("a/one\nb/two\n");
      size = MAX_LIST_PAGE_BYTES + 1;
      const over = await regcli(["ls", fake.host]);
      refused(over, 5, new RegExp(`repository list of ${fake.host} from ${fake.host} is too large \\(over ${MAX_LIST_PAGE_BYTES} bytes\\)$`));
      expect(over.stdout).toBe("");
    });
  });

  describe("upload Locations", () => {
    it("a Location on another host gets the blob but no Authorization header", async () => {
      const user = { username: "alice", password: "upload-secret" };
      const basic = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString("base64")}`;
      const received = new Map<string, Buffer>();
      const uploads = await startFake(
        (req, res, body) => {
          const url = new URL(req.url ?? "/", "http://x");
          const digest = url.searchParams.get("digest");
          if (req.method === "PUT" && digest && sha256(body) === digest) {
            received.set(digest, body);
            res.writeHead(201, { "docker-content-digest": digest, "content-length": "0" }).end();
          } else res.writeHead(400, { "content-type": "application/json" }).end('{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}');
        },
        { bindHost: "127.0.0.2" },
      );
      let pushed: Buffer | undefined;
      const registry = await startFake(
        (req, res, body) => {
          const url = req.url ?? "/";
          if (req.headers.authorization !== basic) {
            res.writeHead(401, { "www-authenticate": 'Basic realm="fake"', "content-type": "application/json" }).end('{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}');
          } else if (url === "/v2/") res.writeHead(200, { "content-length": "2" }).end("{}");
          else if (req.method === "POST" && url.startsWith("/v2/dst/app/blobs/uploads/")) {
            res.writeHead(202, { location: `${uploads.url}/uploads/${received.size}-${Math.random().toString(36).slice(2)}`, "content-length": "0" }).end();
          } else if (req.method === "PUT" && url === "/v2/dst/app/manifests/1") {
            pushed = body;
            res.writeHead(201, { "docker-content-digest": sha256(body), "content-length": "0" }).end();
          } else res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
        },
        { ownV2: true },
      );
      const env = { DOCKER_CONFIG: await dockerConfigDir({ [registry.host]: user }) };
      const r = ok(await regcli(["copy", `${source.host}/src/app:1`, `${registry.host}/dst/app:1`], { env }));
      expect(r.stdout.trim()).toContain(image.manifestDigest);
      expect(pushed?.equals(image.manifest)).toBe(true);
      expect([...received.keys()].sort()).toEqual([image.config.digest, ...image.layers.map((l) => l.digest)].sort());
      // The credentials were in use (the registry got them) but never went to the upload host.
      expect(registry.requests.some((q) => q.method === "POST" && q.authorization === basic)).toBe(true);
      expect(uploads.requests.length).toBeGreaterThanOrEqual(3);
      expect(uploads.requests.map((q) => q.authorization)).toEqual(uploads.requests.map(() => undefined));
    });

    it("an https registry's token realm over plain http gets no credentials: the token is fetched anonymously", async () => {
      const { dir, tls: keys } = await selfSignedCert();
      const realm = await startFake((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "anonymous-token" }));
      });
      const tls = await startFake(
        (req, res) => {
          if (req.headers.authorization !== "Bearer anonymous-token") {
            res
              .writeHead(401, { "www-authenticate": `Bearer realm="${realm.url}/token",service="fake"`, "content-type": "application/json" })
              .end('{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}');
          } else res.writeHead(200, { "content-type": "application/json" }).end('{"name":"app","tags":["1"]}');
        },
        { tls: keys, ownV2: true },
      );
      const env = { DOCKER_CONFIG: await dockerConfigDir({ [tls.host]: { username: "alice", password: "realm-secret" } }) };
      const r = await regcli(["--ca-file", join(dir, "cert.pem"), "ls", `${tls.host}/app`], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("1");
      expect(realm.requests.length).toBeGreaterThan(0);
      expect(realm.requests.map((q) => q.authorization)).toEqual(realm.requests.map(() => undefined));
      expect(realm.requests.every((q) => !q.url.includes("realm-secret"))).toBe(true);
    });

    it("an https registry's Location that downgrades to http is refused (exit 5) and never contacted", async () => {
      const { dir, tls: keys } = await selfSignedCert();
      const trap = await startFake((_req, res) => {
        res.writeHead(201, { "content-length": "0" }).end();
      });
      const tls = await startFake(
        (req, res) => {
          if (req.method === "POST" && (req.url ?? "").startsWith("/v2/dst/app/blobs/uploads/")) {
            res.writeHead(202, { location: `${trap.url}/uploads/1`, "content-length": "0" }).end();
          } else res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}');
        },
        { tls: keys },
      );
      const r = await regcli(["--ca-file", join(dir, "cert.pem"), "copy", `${source.host}/src/app:1`, `${tls.host}/dst/app:1`]);
      refused(r, 5, new RegExp(`${tls.host} sent an upload location that downgrades to http:$`));
      expect(tls.requests.some((q) => q.method === "POST")).toBe(true);
      expect(trap.requests).toEqual([]);
      expect(tls.requests.some((q) => q.method === "PUT")).toBe(false);
    });
  });
});
