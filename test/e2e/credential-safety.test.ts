// Credentials go only where they belong. These edges need a misbehaving server, so they use small in-process
// fakes on loopback (127.0.0.1 is "the registry"; 127.0.0.2 is "another host").
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli } from "../helpers/cli.js";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function serve(host: string, handler: (req: { url: string; method: string; headers: IncomingHttpHeaders }, res: import("node:http").ServerResponse) => void): Promise<number> {
  const server = createServer((req, res) => handler({ url: req.url ?? "/", method: req.method ?? "GET", headers: req.headers }, res));
  servers.push(server);
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

const blob = Buffer.from("layer bytes served from elsewhere");
const blobDigest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;

describe("where credentials may go", () => {
  it("a token realm on another loopback/private host gets no credentials (anonymous token instead)", async () => {
    const realmSaw: Array<string | undefined> = [];
    const realmPort = await serve("127.0.0.2", (req, res) => {
      realmSaw.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "anon-token", expires_in: 300 }));
    });
    const registryPort = await serve("127.0.0.1", (req, res) => {
      if (req.headers.authorization !== "Bearer anon-token") {
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.2:${realmPort}/token",service="fake"` }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ name: "app", tags: ["1"] }));
    });
    const host = `127.0.0.1:${registryPort}`;
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [host]: { username: "alice", password: "top-secret" } }) };
    const r = await regcli(["ls", `${host}/app`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("1");
    expect(realmSaw.length).toBeGreaterThan(0);
    expect(realmSaw.every((h) => h === undefined)).toBe(true);
  });

  it("the registry's own host (another port) as realm does get the credentials", async () => {
    const realmSaw: Array<string | undefined> = [];
    const realmPort = await serve("127.0.0.1", (req, res) => {
      realmSaw.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "user-token" }));
    });
    const registryPort = await serve("127.0.0.1", (req, res) => {
      if (req.headers.authorization !== "Bearer user-token") {
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${realmPort}/token",service="fake"` }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ name: "app", tags: ["1"] }));
    });
    const host = `127.0.0.1:${registryPort}`;
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [host]: { username: "alice", password: "pw" } }) };
    const r = await regcli(["ls", `${host}/app`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(realmSaw).toContain(`Basic ${Buffer.from("alice:pw").toString("base64")}`);
  });

  it("a blob redirect to another host is followed without the Authorization header, and verified", async () => {
    const storageSaw: Array<string | undefined> = [];
    const storagePort = await serve("127.0.0.2", (req, res) => {
      storageSaw.push(req.headers.authorization);
      res.writeHead(200, { "content-length": String(blob.length) }).end(blob);
    });
    const registrySaw: Array<string | undefined> = [];
    const registryPort = await serve("127.0.0.1", (req, res) => {
      registrySaw.push(req.headers.authorization);
      if (!req.headers.authorization) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="fake"' }).end();
        return;
      }
      if (req.url.startsWith("/v2/app/blobs/")) {
        res.writeHead(307, { location: `http://127.0.0.2:${storagePort}/bucket/blob?sig=1` }).end();
        return;
      }
      res.writeHead(200).end("{}");
    });
    const host = `127.0.0.1:${registryPort}`;
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [host]: { username: "alice", password: "pw" } }) };
    const r = await regcli(["blob", `${host}/app@${blobDigest}`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBuffer.equals(blob)).toBe(true);
    expect(registrySaw.some((h) => h?.startsWith("Basic "))).toBe(true);
    expect(storageSaw).toEqual([undefined]);
  });

  it("--src-creds go to the source registry only, not to a mirror tried in front of it", async () => {
    const mirrorSaw: Array<string | undefined> = [];
    const mirrorPort = await serve("127.0.0.1", (req, res) => {
      mirrorSaw.push(req.headers.authorization);
      res.writeHead(401, { "www-authenticate": 'Basic realm="mirror"' }).end();
    });
    const r = await regcli(["--retries", "0", "copy", "--src-creds", "alice:hub-secret", "docker.io/library/busybox:1", "oci:/nonexistent-never-written:1"], {
      env: { REGCLI_REGISTRY_MIRRORS: `http://127.0.0.1:${mirrorPort}` },
    });
    expect(r.code).not.toBe(0); // docker.io itself is out of reach here
    expect(mirrorSaw.length).toBeGreaterThan(0);
    expect(mirrorSaw.every((h) => h === undefined)).toBe(true);
    expect(r.stderr).not.toContain("hub-secret");
  });

  it("a blob whose bytes do not match its digest fails with exit 5 naming the digest", async () => {
    const registryPort = await serve("127.0.0.1", (req, res) => {
      if (req.url === "/v2/") return res.writeHead(200).end("{}");
      res.writeHead(200, { "content-length": String(blob.length) }).end(Buffer.from(blob.toString().toUpperCase()));
    });
    const r = await regcli(["blob", `127.0.0.1:${registryPort}/app@${blobDigest}`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`digest mismatch from 127.0.0.1:${registryPort}: expected ${blobDigest}`);
  });
});
