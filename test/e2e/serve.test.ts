// regcli serve against the OCI Distribution Spec: edge cases, skopeo, referrers, gc, load and crash recovery.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, skopeo, tempDir } from "../helpers/cli.js";
import { fetchManifest, makeImage, pushBlob, pushImage, pushManifest, sha256, type TestImage } from "../helpers/images.js";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.js";

async function call(url: string, method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE", headers: Record<string, string> = {}, body?: Buffer | string) {
  const res = await request(url, { method, headers, body });
  const text = method === "HEAD" ? "" : await res.body.text();
  const h = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, text, h, json: () => JSON.parse(text) };
}

describe("regcli serve: spec edge cases", () => {
  let reg: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open", { server: "regcli" });
    image = await makeImage({ layers: 2, layerSize: 32 * 1024, seed: "serve-spec" });
    await pushImage(reg, "spec/app", "1.0", image);
  });
  afterAll(async () => reg?.stop());

  it("a chunked upload with a wrong Content-Range gets 416; the right one continues; GET reports the offset", async () => {
    const start = await call(`${reg.url}/v2/spec/chunked/blobs/uploads/`, "POST");
    expect(start.status).toBe(202);
    const loc = new URL(start.h("location")!, reg.url).toString();
    const data = Buffer.from("0123456789abcdef");
    const first = await call(loc, "PATCH", { "content-range": "0-7", "content-length": "8" }, data.subarray(0, 8));
    expect(first.status).toBe(202);
    expect(first.h("range")).toBe("0-7");
    const wrong = await call(loc, "PATCH", { "content-range": "4-11", "content-length": "8" }, data.subarray(8));
    expect(wrong.status).toBe(416);
    expect(wrong.json().errors[0].code).toBe("BLOB_UPLOAD_INVALID");
    const status = await call(loc, "GET");
    expect(status.status).toBe(204);
    expect(status.h("range")).toBe("0-7");
    const second = await call(loc, "PATCH", { "content-range": "8-15", "content-length": "8" }, data.subarray(8));
    expect(second.h("range")).toBe("0-15");
    const done = await call(`${loc}?digest=${sha256(data)}`, "PUT", { "content-length": "0" });
    expect(done.status).toBe(201);
    const blob = await call(`${reg.url}/v2/spec/chunked/blobs/${sha256(data)}`, "GET");
    expect(blob.text).toBe(data.toString());
  });

  it("a wrong digest on PUT gets DIGEST_INVALID and nothing is stored", async () => {
    const data = Buffer.from("some bytes");
    const wrongDigest = sha256(Buffer.from("other bytes"));
    const r = await call(`${reg.url}/v2/spec/bad/blobs/uploads/?digest=${wrongDigest}`, "POST", { "content-length": String(data.length) }, data);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("DIGEST_INVALID");
    expect((await call(`${reg.url}/v2/spec/bad/blobs/${wrongDigest}`, "HEAD")).status).toBe(404);
    expect((await call(`${reg.url}/v2/spec/bad/blobs/${sha256(data)}`, "HEAD")).status).toBe(404);
  });

  it("a manifest whose layer is missing gets MANIFEST_BLOB_UNKNOWN; over 4 MiB is refused; a digest mismatch too", async () => {
    const other = await makeImage({ seed: "missing-layer" });
    await pushBlob(reg, "spec/missing", other.config);
    const r = await call(`${reg.url}/v2/spec/missing/manifests/1`, "PUT", { "content-type": other.mediaType }, other.manifest);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("MANIFEST_BLOB_UNKNOWN");
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const tooBig = await call(`${reg.url}/v2/spec/missing/manifests/big`, "PUT", { "content-type": "application/vnd.oci.image.manifest.v1+json" }, big);
    expect(tooBig.status).toBe(413);
    expect(tooBig.json().errors[0].code).toBe("MANIFEST_INVALID");
    const mismatch = await call(`${reg.url}/v2/spec/app/manifests/${sha256(Buffer.from("x"))}`, "PUT", { "content-type": image.mediaType }, image.manifest);
    expect(mismatch.json().errors[0].code).toBe("DIGEST_INVALID");
  });

  it("serves manifests with Content-Type, Docker-Content-Digest and ETag, and blobs with Range", async () => {
    const m = await call(`${reg.url}/v2/spec/app/manifests/1.0`, "GET");
    expect(m.h("content-type")).toBe(image.mediaType);
    expect(m.h("docker-content-digest")).toBe(image.manifestDigest);
    expect(m.h("etag")).toBe(`"${image.manifestDigest}"`);
    const layer = image.layers[0]!;
    const part = await request(`${reg.url}/v2/spec/app/blobs/${layer.digest}`, { headers: { range: "bytes=10-19" } });
    const bytes = Buffer.from(await part.body.arrayBuffer());
    expect(part.statusCode).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes 10-19/${layer.size}`);
    expect(bytes.equals(layer.data.subarray(10, 20))).toBe(true);
    expect((await call(`${reg.url}/v2/spec/nope/manifests/1.0`, "GET")).json().errors[0].code).toBe("MANIFEST_UNKNOWN");
    expect((await call(`${reg.url}/v2/spec/nope/tags/list`, "GET")).json().errors[0].code).toBe("NAME_UNKNOWN");
    expect((await call(`${reg.url}/v2/spec/app/blobs/${sha256(Buffer.from("none"))}`, "GET")).json().errors[0].code).toBe("BLOB_UNKNOWN");
  });

  it("paginates tags and the catalog with n, last and Link", async () => {
    for (const t of ["a", "b", "c"]) await pushManifest(reg, "spec/app", t, image.manifest, image.mediaType);
    const page = await call(`${reg.url}/v2/spec/app/tags/list?n=2`, "GET");
    expect(page.json().tags).toEqual(["1.0", "a"]);
    expect(page.h("link")).toBe('</v2/spec/app/tags/list?n=2&last=a>; rel="next"');
    const next = await call(`${reg.url}/v2/spec/app/tags/list?n=2&last=a`, "GET");
    expect(next.json().tags).toEqual(["b", "c"]);
    const r = await regcli(["ls", `${reg.host}/spec/app`, "--page-size", "1"]);
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(["1.0", "a", "b", "c"]);
  });

  it("a client that closes the connection mid-blob is one log line, not an error with a stack", async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const digest = sha256(data);
    await pushBlob(reg, "spec/cancelled", { digest, data });
    const log = () => readdirSync(join(reg.root, "..")).filter((f) => f.startsWith("registry-")).map((f) => readFileSync(join(reg.root, "..", f), "utf8")).join("");
    await new Promise<void>((resolve, reject) => {
      const req = httpGet(`${reg.url}/v2/spec/cancelled/blobs/${digest}`, (res) => res.once("data", () => (req.destroy(), resolve())));
      req.on("error", (e) => (req.destroyed ? undefined : reject(e)));
    });
    const deadline = Date.now() + 10_000;
    while (!/closed by the client/.test(log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(log()).toMatch(new RegExp(`"GET /v2/spec/cancelled/blobs/${digest} HTTP/1.1" closed by the client after \\d+ bytes`));
    expect(log()).not.toMatch(/error:|Premature close|\n\s+at /);
  });

  it("a blob sent to slow and fast clients at once, whole and in ranges, arrives intact to each (the server reuses its send buffers)", async () => {
    const data = randomBytes(24 * 1024 * 1024 + 12345);
    const digest = sha256(data);
    await pushBlob(reg, "spec/slow", { digest, data });
    const url = `${reg.url}/v2/spec/slow/blobs/${digest}`;
    /** The body, read with a pause of `pauseMs` every MiB (a slow client: the server's writes wait in the socket). */
    const read = async (headers: Record<string, string>, pauseMs: number): Promise<Buffer> => {
      const res = await request(url, { headers });
      const chunks: Buffer[] = [];
      let sinceLast = 0;
      for await (const chunk of res.body) {
        chunks.push(chunk as Buffer);
        sinceLast += (chunk as Buffer).length;
        if (pauseMs && sinceLast >= 1024 * 1024) {
          sinceLast = 0;
          await new Promise((r) => setTimeout(r, pauseMs));
        }
      }
      return Buffer.concat(chunks);
    };
    const [slow, fast, slowRange, fastRange] = await Promise.all([
      read({}, 40),
      read({}, 0),
      read({ range: "bytes=1000-5000000" }, 40),
      read({ range: "bytes=-3000000" }, 0),
    ]);
    expect(sha256(slow)).toBe(digest);
    expect(sha256(fast)).toBe(digest);
    expect(slowRange.equals(data.subarray(1000, 5000001))).toBe(true);
    expect(fastRange.equals(data.subarray(data.length - 3000000))).toBe(true);
  });

  it("DELETE by tag removes only the tag; by digest the manifest and its tags", async () => {
    await pushImage(reg, "spec/del", "keep", image);
    await pushManifest(reg, "spec/del", "drop", image.manifest, image.mediaType);
    expect((await call(`${reg.url}/v2/spec/del/manifests/drop`, "DELETE")).status).toBe(202);
    expect((await call(`${reg.url}/v2/spec/del/manifests/drop`, "GET")).status).toBe(404);
    expect((await call(`${reg.url}/v2/spec/del/manifests/keep`, "GET")).status).toBe(200);
    expect((await call(`${reg.url}/v2/spec/del/manifests/${image.manifestDigest}`, "DELETE")).status).toBe(202);
    expect((await call(`${reg.url}/v2/spec/del/manifests/keep`, "GET")).status).toBe(404);
  });

  it("answers as the OCI conformance suite v1.1.1 expects (pull, push, discovery, management status and error codes)", async () => {
    const v2 = `${reg.url}/v2/conf/app`;
    // Pull: a reference that is not a valid tag names no manifest: 404 MANIFEST_UNKNOWN, not 400.
    for (const ref of [".INVALID_MANIFEST_NAME", "sha256:totallywrong"]) {
      const get = await call(`${v2}/manifests/${ref}`, "GET");
      expect([get.status, get.json().errors[0].code]).toEqual([404, "MANIFEST_UNKNOWN"]);
      expect((await call(`${v2}/manifests/${ref}`, "HEAD")).status).toBe(404);
    }
    // ...while a write to it is refused with the spec's codes.
    const badTag = await call(`${v2}/manifests/.INVALID_MANIFEST_NAME`, "PUT", { "content-type": image.mediaType }, image.manifest);
    expect([badTag.status, badTag.json().errors[0].code]).toEqual([400, "TAG_INVALID"]);
    const badDigest = await call(`${v2}/manifests/sha256:totallywrong`, "PUT", { "content-type": image.mediaType }, "blablabla");
    expect([badDigest.status, badDigest.json().errors[0].code]).toEqual([400, "DIGEST_INVALID"]);
    // Push, streamed: PATCH without Content-Range, then PUT ?digest with no body.
    const blobA = Buffer.from("conformance streamed blob A");
    const streamed = await call(`${v2}/blobs/uploads/`, "POST");
    const patched = await call(new URL(streamed.h("location")!, reg.url).toString(), "PATCH", { "content-type": "application/octet-stream" }, blobA);
    expect(patched.status).toBe(202);
    const closed = await call(`${new URL(patched.h("location")!, reg.url)}?digest=${sha256(blobA)}`, "PUT", { "content-length": "0" });
    expect(closed.status).toBe(201);
    expect(closed.h("location")).toBeTruthy();
    // Push, chunked: retrying the previous chunk is 416, a GET on the session still reports range and location.
    const blobB = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");
    const chunked = await call(`${v2}/blobs/uploads/`, "POST", { "content-length": "0" });
    const session = new URL(chunked.h("location")!, reg.url).toString();
    const first = await call(session, "PATCH", { "content-range": "0-17", "content-length": "18" }, blobB.subarray(0, 18));
    expect([first.status, first.h("range")]).toEqual([202, "0-17"]);
    expect((await call(session, "PATCH", { "content-range": "0-17", "content-length": "18" }, blobB.subarray(0, 18))).status).toBe(416);
    const stale = await call(session, "GET");
    expect([stale.status, stale.h("range"), Boolean(stale.h("location"))]).toEqual([204, "0-17", true]);
    const second = await call(new URL(stale.h("location")!, reg.url).toString(), "PATCH", { "content-range": "18-35", "content-length": "18" }, blobB.subarray(18));
    expect(second.status).toBe(202);
    expect((await call(`${new URL(second.h("location")!, reg.url)}?digest=${sha256(blobB)}`, "PUT", { "content-length": "0" })).status).toBe(201);
    // Cross-repository mount: without from, or from a repository that lacks it, a session (202); else 201.
    for (const query of [`mount=${sha256(blobA)}`, `mount=${sha256(blobA)}&from=conf/nothing`]) {
      const r = await call(`${reg.url}/v2/conf/mount/blobs/uploads/?${query}`, "POST");
      expect([r.status, r.h("location")?.startsWith("/v2/conf/mount/blobs/uploads/")]).toEqual([202, true]);
    }
    const mounted = await call(`${reg.url}/v2/conf/mount/blobs/uploads/?mount=${sha256(blobA)}&from=conf/app`, "POST");
    expect([mounted.status, mounted.h("location")]).toEqual([201, `/v2/conf/mount/blobs/${sha256(blobA)}`]);
    // A manifest with no layers is accepted.
    await pushBlob(reg, "conf/app", image.config);
    const empty = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: image.config.digest, size: image.config.data.length }, layers: [] }));
    const emptyPut = await call(`${v2}/manifests/emptylayer`, "PUT", { "content-type": "application/vnd.oci.image.manifest.v1+json" }, empty);
    expect([emptyPut.status, Boolean(emptyPut.h("location"))]).toEqual([201, true]);
    // Discovery: referrers of a digest nobody refers to is an empty index.
    const none = await call(`${v2}/referrers/${sha256(Buffer.from("nothing refers to this"))}`, "GET");
    expect([none.status, none.h("content-type"), none.json().manifests]).toEqual([200, "application/vnd.oci.image.index.v1+json", []]);
    for (const t of ["test0", "test1", "test2", "test3"]) await pushImage(reg, "conf/app", t, image);
    const page = await call(`${v2}/tags/list?n=2`, "GET");
    expect(page.json().tags).toHaveLength(2);
    const next = await call(`${v2}/tags/list?n=2&last=${page.json().tags[1]}`, "GET");
    expect(next.json().tags.length).toBeLessThanOrEqual(2);
    expect(next.json().tags).not.toContain(page.json().tags[1]);
    // Management: delete by tag (202), by digest (202), then the manifest and the deleted blob are 404.
    const before = (await call(`${v2}/tags/list`, "GET")).json().tags.length;
    expect((await call(`${v2}/manifests/test0`, "DELETE")).status).toBe(202);
    expect((await call(`${v2}/manifests/${image.manifestDigest}`, "DELETE")).status).toBe(202);
    expect((await call(`${v2}/manifests/${image.manifestDigest}`, "GET")).status).toBe(404);
    expect((await call(`${v2}/tags/list`, "GET")).json().tags.length).toBeLessThan(before);
    expect((await call(`${v2}/blobs/${image.layers[0]!.digest}`, "DELETE")).status).toBe(202);
    const gone = await call(`${v2}/blobs/${image.layers[0]!.digest}`, "GET");
    expect([gone.status, gone.json().errors[0].code]).toEqual([404, "BLOB_UNKNOWN"]);
  });

  it("stale uploads expire", async () => {
    const { RegistryStorage } = await import("../../src/server/storage.js");
    const storage = new RegistryStorage(reg.root);
    const start = await call(`${reg.url}/v2/spec/stale/blobs/uploads/`, "POST");
    const loc = new URL(start.h("location")!, reg.url).toString();
    expect((await call(loc, "GET")).status).toBe(204);
    expect(await storage.expireUploads(60_000)).toBe(0);
    expect(await storage.expireUploads(0)).toBeGreaterThanOrEqual(1);
    expect((await call(loc, "GET")).status).toBe(404);
  });

  it("cancelling an upload removes it; cross-repository mount answers 201", async () => {
    const start = await call(`${reg.url}/v2/spec/cancel/blobs/uploads/`, "POST");
    const loc = new URL(start.h("location")!, reg.url).toString();
    expect((await call(loc, "DELETE")).status).toBe(204);
    expect((await call(loc, "GET")).json().errors[0].code).toBe("BLOB_UPLOAD_UNKNOWN");
    const layer = image.layers[1]!;
    const mount = await call(`${reg.url}/v2/spec/mounted/blobs/uploads/?mount=${layer.digest}&from=spec/app`, "POST");
    expect(mount.status).toBe(201);
    expect((await call(`${reg.url}/v2/spec/mounted/blobs/${layer.digest}`, "HEAD")).status).toBe(200);
  });

  it("the referrers API lists manifests whose subject is a digest, filtered by artifactType", async () => {
    const config = Buffer.from("{}");
    await pushBlob(reg, "spec/app", { digest: sha256(config), data: config });
    const signature = (artifactType: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          artifactType,
          config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(config), size: 2 },
          layers: [],
          subject: { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length },
        }),
      );
    const sig = signature("application/vnd.example.signature");
    const sbom = signature("application/vnd.example.sbom");
    for (const m of [sig, sbom]) {
      const r = await call(`${reg.url}/v2/spec/app/manifests/${sha256(m)}`, "PUT", { "content-type": "application/vnd.oci.image.manifest.v1+json" }, m);
      expect(r.status).toBe(201);
      expect(r.h("oci-subject")).toBe(image.manifestDigest);
    }
    const all = await call(`${reg.url}/v2/spec/app/referrers/${image.manifestDigest}`, "GET");
    expect(all.json().manifests.map((d: { digest: string }) => d.digest).sort()).toEqual([sha256(sig), sha256(sbom)].sort());
    const filtered = await call(`${reg.url}/v2/spec/app/referrers/${image.manifestDigest}?artifactType=application/vnd.example.sbom`, "GET");
    expect(filtered.json().manifests.map((d: { digest: string }) => d.digest)).toEqual([sha256(sbom)]);
    expect(filtered.h("oci-filters-applied")).toBe("artifactType");
  });

  it("skopeo copies in and out, inspects, lists tags and deletes, digests equal", async () => {
    const dir = await tempDir();
    const out = await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/spec/app:1.0`, `oci:${dir}:x`]);
    expect(out.code, out.stderr).toBe(0);
    const into = await skopeo(["copy", "--dest-tls-verify=false", "--preserve-digests", `oci:${dir}:x`, `docker://${reg.host}/skopeo/in:1`]);
    expect(into.code, into.stderr).toBe(0);
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/skopeo/in:1`]);
    expect(sha256(raw.stdoutBuffer)).toBe(image.manifestDigest);
    const tags = await skopeo(["list-tags", "--tls-verify=false", `docker://${reg.host}/skopeo/in`]);
    expect(JSON.parse(tags.stdout).Tags).toEqual(["1"]);
    const del = await skopeo(["delete", "--tls-verify=false", `docker://${reg.host}/skopeo/in:1`]);
    expect(del.code, del.stderr).toBe(0);
    expect((await fetchManifest(reg, "skopeo/in", image.manifestDigest)).status).toBe(404);
  });
});

describe("regcli serve: options", () => {
  it("--read-only refuses writes; without --delete deletes are refused; gc removes unreferenced blobs", async () => {
    const reg = await startRegistry("open", { server: "regcli", deleteEnabled: false });
    try {
      const img = await makeImage({ seed: "serve-options" });
      await pushImage(reg, "opt/app", "1", img);
      const del = await call(`${reg.url}/v2/opt/app/manifests/${img.manifestDigest}`, "DELETE");
      expect(del.status).toBe(405);
      const r = await regcli(["delete", `${reg.host}/opt/app:1`]);
      expect(r.code).toBe(5);
      // an orphan blob: uploaded, never referenced
      await pushBlob(reg, "opt/app", { digest: sha256(Buffer.from("orphan")), data: Buffer.from("orphan") });
      const dry = await regcli(["serve", "gc", "--root", reg.root, "--dry-run"]);
      expect(dry.stdout.trim()).toBe(sha256(Buffer.from("orphan")));
      const gc = await regcli(["serve", "gc", "--root", reg.root]);
      expect(gc.stdout.trim()).toBe(sha256(Buffer.from("orphan")));
      expect((await call(`${reg.url}/v2/opt/app/blobs/${sha256(Buffer.from("orphan"))}`, "HEAD")).status).toBe(404);
      expect((await fetchManifest(reg, "opt/app", "1")).body.equals(img.manifest)).toBe(true);
    } finally {
      await reg.stop();
    }
    const root = await tempDir();
    const port = await freePort();
    const child = spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "serve", "--addr", `127.0.0.1:${port}`, "--root", root, "--read-only"], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100; i++) {
        if ((await call(`http://127.0.0.1:${port}/v2/`, "GET").catch(() => ({ status: 0 }))).status === 200) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const w = await call(`http://127.0.0.1:${port}/v2/x/blobs/uploads/`, "POST");
      expect(w.status).toBe(405);
      expect(w.json().errors[0].code).toBe("UNSUPPORTED");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("regcli serve: start-up problems are one line with a usage code, never exit 1", () => {
  it("bad --addr, a port in use, missing or invalid TLS files, a root that is a file; gc refuses a root that is not a registry's", async () => {
    const root = join(await tempDir(), "data");
    const busy = await startRegistry("open", { server: "regcli" });
    const notPem = join(await tempDir(), "not.pem");
    writeFileSync(notPem, "not a certificate\n");
    try {
      const cases: Array<[string[], RegExp]> = [
        [["--addr", "5005"], /invalid address "5005": expected HOST:PORT/],
        [["--addr", "127.0.0.1:70000"], /invalid address/],
        [["--addr", busy.host], new RegExp(`cannot listen on ${busy.host}: address already in use`)],
        [["--addr", "127.0.0.1:0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], /cannot use --tls-cert \/nonexistent\/cert\.pem: no such file/],
        [["--addr", "127.0.0.1:0", "--tls-cert", notPem, "--tls-key", notPem], /cannot serve TLS with --tls-cert .*PEM/],
      ];
      for (const [args, message] of cases) {
        const r = await regcli(["serve", "--root", root, ...args], { timeoutMs: 30_000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toMatch(message);
      }
      const onFile = await regcli(["serve", "--addr", "127.0.0.1:0", "--root", notPem], { timeoutMs: 30_000 });
      expect([onFile.code, onFile.stderr.trim().split("\n").length]).toEqual([2, 1]);
      expect(onFile.stderr).toMatch(/not\.pem\/blobs\/sha256: not a directory/);
      const nowhere = await regcli(["serve", "gc", "--root", join(root, "nosuchdir")]);
      expect([nowhere.code, nowhere.stdout]).toEqual([2, ""]);
      expect(nowhere.stderr).toMatch(/nosuchdir does not exist/);
      const plain = await regcli(["serve", "gc", "--root", await tempDir()]);
      expect(plain.code).toBe(2);
      expect(plain.stderr).toMatch(/is not a regcli serve storage root/);
      expect(plain.stderr).not.toMatch(/removed/);
    } finally {
      await busy.stop();
    }
  });
});

describe("regcli serve: load and crash recovery", () => {
  it("32 concurrent clients push distinct images and pull them back verified; a SIGKILL mid-upload loses nothing acknowledged", async () => {
    const root = await tempDir();
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const start = () => spawn(process.execPath, [join(repoRoot, "bin", "regcli.cjs"), "serve", "--addr", host, "--root", root, "--delete"], { stdio: "ignore" });
    const waitUp = async () => {
      for (let i = 0; i < 200; i++) {
        if ((await call(`http://${host}/v2/`, "GET").catch(() => ({ status: 0 }))).status === 200) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("serve did not start");
    };
    let child = start();
    try {
      await waitUp();
      const reg = { url: `http://${host}`, host, authHeader: async () => undefined, dispatcher: undefined } as unknown as TestRegistry;
      const images = await Promise.all(Array.from({ length: 32 }, (_, i) => makeImage({ layers: 3, layerSize: 48 * 1024, seed: `load-${i}` })));
      await Promise.all(images.map((img, i) => pushImage(reg, `load/app${i}`, "1", img)));
      const pulled = await Promise.all(
        images.map(async (img, i) => {
          const m = await fetchManifest(reg, `load/app${i}`, "1");
          const blobs = await Promise.all(img.layers.map(async (l) => sha256(Buffer.from(await (await request(`${reg.url}/v2/load/app${i}/blobs/${l.digest}`)).body.arrayBuffer()))));
          return m.body.equals(img.manifest) && blobs.every((d, j) => d === img.layers[j]!.digest);
        }),
      );
      expect(pulled.every(Boolean)).toBe(true);

      // start a large upload, kill the server in the middle of it
      const big = Buffer.alloc(64 * 1024 * 1024, 7);
      const upload = await call(`${reg.url}/v2/crash/app/blobs/uploads/`, "POST");
      const loc = new URL(upload.h("location")!, reg.url).toString();
      const inflight = request(`${loc}?digest=${sha256(big)}`, { method: "PUT", body: Readable.from((async function* () {
        for (let off = 0; off < big.length; off += 1024 * 1024) {
          yield big.subarray(off, off + 1024 * 1024);
          await new Promise((r) => setTimeout(r, 5));
        }
      })()), headers: { "content-length": String(big.length) } }).catch((e) => e);
      await new Promise((r) => setTimeout(r, 100));
      child.kill("SIGKILL");
      await inflight;
      child = start();
      await waitUp();
      expect((await call(`${reg.url}/v2/crash/app/blobs/${sha256(big)}`, "HEAD")).status).toBe(404);
      const verified = await Promise.all(images.map(async (img, i) => (await fetchManifest(reg, `load/app${i}`, "1")).body.equals(img.manifest)));
      expect(verified.every(Boolean)).toBe(true);
      const r = await regcli(["copy", `${host}/load/app7:1`, `oci:${join(root, "..", "verify")}:x`, "--preserve-digests"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(images[7]!.manifestDigest);
      expect(createHash("sha256")).toBeTruthy();
    } finally {
      child.kill("SIGKILL");
    }
  }, 120_000);
});
