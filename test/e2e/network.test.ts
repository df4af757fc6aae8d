// TLS, certs.d and mutual TLS, plain-HTTP fallback, docker.io mirrors, registries.conf, proxies and connection-level errors.
import { createServer, request as httpRequest, type Server } from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { chmod, copyFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir } from "../helpers/cli.js";
import { fetchManifest, makeImage, pushImage, type TestImage } from "../helpers/images.js";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.js";

/** A server that listens with an accept queue of one and never accepts: it prints its port, then blocks. */
const NEVER_ACCEPTS = `const s = require("node:net").createServer();
s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  process.stdout.write(String(s.address().port));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
});`;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** A cache directory (XDG_CACHE_HOME) whose plain-HTTP notes hold these hosts, valid for another minute. */
async function plainHttpCache(hosts: string[], mode = 0o600): Promise<string> {
  const dir = await tempDir("regcli-cache-");
  await mkdir(join(dir, "regcli"));
  await writeFile(join(dir, "regcli", "plain-http.json"), JSON.stringify(Object.fromEntries(hosts.map((h) => [h, Date.now() + 60_000]))), { mode });
  await chmod(join(dir, "regcli", "plain-http.json"), mode);
  return dir;
}

/** A TCP forwarder on 127.0.0.1 to `upstream` (host:port) that counts the connections made to it. */
async function countingForwarder(upstream: string): Promise<{ host: string; connections: () => number; close: () => void }> {
  const [host, port] = upstream.split(":");
  let connections = 0;
  const server = createNetServer((client) => {
    connections++;
    const up = connect(Number(port), host, () => {
      up.pipe(client);
      client.pipe(up);
    });
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, close: () => server.close() };
}

describe("TLS", () => {
  let reg: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("tls");
    image = await makeImage({ seed: "tls" });
    await pushImage(reg, "secure/app", "1.0", image);
  });
  afterAll(async () => reg?.stop());

  it("an untrusted certificate fails with exit 5 and says how to fix it", async () => {
    const r = await regcli(["manifest", `${reg.host}/secure/app:1.0`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/not trusted/);
    expect(r.stderr).toMatch(/--ca-file/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("--ca-file trusts the private CA; --insecure skips verification", async () => {
    const trusted = await regcli(["--ca-file", reg.caFile!, "manifest", `${reg.host}/secure/app:1.0`]);
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(trusted.stdoutBuffer.equals(image.manifest)).toBe(true);
    const insecure = await regcli(["--insecure", "digest", `${reg.host}/secure/app:1.0`]);
    expect(insecure.stdout.trim()).toBe(image.manifestDigest);
  });

  it("localhost names work over TLS too (HTTPS is tried first on loopback)", async () => {
    const port = reg.host.split(":")[1];
    const r = await regcli(["--ca-file", reg.caFile!, "digest", `localhost:${port}/secure/app:1.0`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(image.manifestDigest);
  });

  it("a cached plain-HTTP note for a host that now speaks TLS is found wrong, probed again and dropped", async () => {
    const cache = await plainHttpCache([reg.host, "127.0.0.1:1"]);
    const r = await regcli(["--debug", "--ca-file", reg.caFile!, "digest", `${reg.host}/secure/app:1.0`], { env: { XDG_CACHE_HOME: cache } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(image.manifestDigest);
    expect(r.stderr).toContain(`> GET http://${reg.host}/v2/`);
    expect(r.stderr).toContain(`> GET https://${reg.host}/v2/`);
    expect(Object.keys(JSON.parse(await readFile(join(cache, "regcli", "plain-http.json"), "utf8")))).toEqual(["127.0.0.1:1"]);
  });

  it("--plain-http against a TLS registry fails clearly", async () => {
    const r = await regcli(["--plain-http", "manifest", `${reg.host}/secure/app:1.0`]);
    expect(r.code).toBe(5);
  });
});

/** A certificate directory for `reg` in DIR (certs.d's layout): its CA as ca.crt and, with `client`, client.cert/key. */
async function certDir(dir: string, reg: TestRegistry, client = true): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(reg.caFile!, join(dir, "ca.crt"));
  if (client) {
    await copyFile(reg.clientCert!, join(dir, "client.cert"));
    await copyFile(reg.clientKey!, join(dir, "client.key"));
  }
  return dir;
}

const oneLine = (stderr: string) => expect(stderr.trim().split("\n")).toHaveLength(1);

describe("certs.d and mutual TLS (docker-registry with http.tls.clientcas)", () => {
  // Two registries that require a client certificate, with one CA for their server and client certificates: only
  // per-host trust keeps what is configured for one from reaching the other.
  let a: TestRegistry;
  let b: TestRegistry;
  let plain: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    a = await startRegistry("mtls");
    [b, plain] = await Promise.all([startRegistry("mtls", { ca: a.ca }), startRegistry("open")]);
    image = await makeImage({ seed: "mtls" });
    await pushImage(a, "team/app", "1", image);
  });
  afterAll(async () => Promise.all([b?.stop(), plain?.stop()]).then(() => a?.stop()));

  /** A HOME whose ~/.config/containers/certs.d has these registries' directories. */
  async function home(dirs: Array<{ reg: TestRegistry; client?: boolean }>): Promise<Record<string, string>> {
    const home = await tempDir("regcli-home-");
    for (const { reg, client } of dirs) await certDir(join(home, ".config", "containers", "certs.d", reg.host), reg, client);
    return { HOME: home };
  }

  it("without a client certificate the command fails with one line naming the host and what to do (exit 3)", async () => {
    const untrusted = await regcli(["ls", `${a.host}/team/app`], { env: await home([]) });
    expect(untrusted.code, untrusted.stderr).toBe(5);
    expect(untrusted.stderr).toMatch(new RegExp(`TLS certificate of ${a.host} is not trusted.*certs\\.d/${a.host}/ca\\.crt`));
    oneLine(untrusted.stderr);
    const noClient = await regcli(["ls", `${a.host}/team/app`], { env: await home([{ reg: a, client: false }]) });
    expect(noClient.code, noClient.stderr).toBe(3);
    expect(noClient.stderr).toMatch(new RegExp(`${a.host} requires a TLS client certificate .*NAME\\.key in ~/\\.config/containers/certs\\.d/${a.host}/`));
    oneLine(noClient.stderr);
    // A client certificate the registry does not trust (self-signed): refused, and named.
    const stranger = await home([{ reg: a, client: false }]);
    const dir = join(stranger.HOME!, ".config", "containers", "certs.d", a.host);
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "me.key", "-out", "me.cert", "-days", "1", "-subj", "/CN=stranger"], { cwd: dir, stdio: "ignore" });
    const refused = await regcli(["ls", `${a.host}/team/app`], { env: stranger });
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toContain(`${a.host} refused the TLS client certificate ${join(dir, "me.cert")}`);
    oneLine(refused.stderr);
  });

  it("a .cert without its .key (or a .key without its .cert) is refused, naming the file (exit 2)", async () => {
    const env = await home([{ reg: a, client: false }]);
    const dir = join(env.HOME!, ".config", "containers", "certs.d", a.host);
    await copyFile(a.clientCert!, join(dir, "me.cert"));
    const r = await regcli(["ls", `${a.host}/team/app`], { env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`missing key ${join(dir, "me.key")} for client certificate ${join(dir, "me.cert")}`);
    oneLine(r.stderr);
    const lone = await home([{ reg: a, client: false }]);
    await copyFile(a.clientKey!, join(lone.HOME!, ".config", "containers", "certs.d", a.host, "me.key"));
    const k = await regcli(["ls", `${a.host}/team/app`], { env: lone });
    expect(k.code, k.stderr).toBe(2);
    expect(k.stderr).toMatch(/missing client certificate .*me\.cert for key .*me\.key/);
  });

  it("ls, pull and copy over mTLS with ~/.config/containers/certs.d; trust and client certificates stay per host", async () => {
    const env = await home([{ reg: a }]);
    const ls = await regcli(["ls", `${a.host}/team/app`], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim()).toBe("1");
    // b's certificate is signed by the CA in a's directory: still not trusted for b.
    const otherHost = await regcli(["digest", `${b.host}/team/app:1`], { env });
    expect(otherHost.code, otherHost.stderr).toBe(5);
    expect(otherHost.stderr).toMatch(new RegExp(`TLS certificate of ${b.host} is not trusted`));
    // b trusted, but its directory has no client certificate: a's is not presented to b (b would accept it).
    await certDir(join(env.HOME!, ".config", "containers", "certs.d", b.host), b, false);
    const noClient = await regcli(["copy", `${a.host}/team/app:1`, `${b.host}/team/app:1`], { env });
    expect(noClient.code, noClient.stderr).toBe(3);
    expect(noClient.stderr).toMatch(new RegExp(`${b.host} requires a TLS client certificate`));
    // Both sides over mTLS.
    await certDir(join(env.HOME!, ".config", "containers", "certs.d", b.host), b);
    const both = await regcli(["copy", `${a.host}/team/app:1`, `${b.host}/team/app:1`], { env });
    expect(both.code, both.stderr).toBe(0);
    expect((await fetchManifest(b, "team/app", "1")).body.equals(image.manifest)).toBe(true);
    // One side mTLS, the other plain HTTP, both ways.
    const out = await regcli(["copy", `${a.host}/team/app:1`, `${plain.host}/mirror/app:1`], { env });
    expect(out.code, out.stderr).toBe(0);
    const back = await regcli(["copy", `${plain.host}/mirror/app:1`, `${a.host}/team/back:2`], { env });
    expect(back.code, back.stderr).toBe(0);
    expect((await fetchManifest(a, "team/back", "2")).body.equals(image.manifest)).toBe(true);
    const layout = join(await tempDir(), "layout");
    const pull = await regcli(["pull", `${b.host}/team/app:1`, "-o", layout], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(layout, "blobs", "sha256", image.config.digest.slice(7)))).equals(image.config.data)).toBe(true);
    // skopeo reads what regcli pushed over mTLS, with the same directory (--cert-dir takes it without the host level).
    const peer = await skopeo(["inspect", "--raw", "--cert-dir", join(env.HOME!, ".config", "containers", "certs.d", a.host), `docker://${a.host}/team/back:2`]);
    expect(peer.code, peer.stderr).toBe(0);
    expect(peer.stdoutBuffer.equals(image.manifest)).toBe(true);
  });

  it("--cert-dir DIR takes DIR itself (as skopeo's), instead of certs.d; --ca-file and --insecure still apply", async () => {
    const flat = await certDir(join(await tempDir(), "certs"), a);
    const r = await regcli(["--cert-dir", flat, "digest", `${a.host}/team/app:1`], { env: await home([]) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(image.manifestDigest);
    // certs.d is not read with --cert-dir: an empty DIR means no client certificate.
    const empty = await tempDir();
    const replaced = await regcli(["--cert-dir", empty, "--ca-file", a.caFile!, "digest", `${a.host}/team/app:1`], { env: await home([{ reg: a }]) });
    expect(replaced.code, replaced.stderr).toBe(3);
    const insecure = await regcli(["--insecure", "digest", `${a.host}/team/app:1`], { env: await home([{ reg: a, client: false }]) });
    expect(insecure.code, insecure.stderr).toBe(3);
    const clientOnly = join(await tempDir(), "client");
    await mkdir(clientOnly);
    await copyFile(a.clientCert!, join(clientOnly, "client.cert"));
    await copyFile(a.clientKey!, join(clientOnly, "client.key"));
    for (const trust of [["--ca-file", a.caFile!], ["--insecure"]]) {
      const ok = await regcli([...trust, "--cert-dir", clientOnly, "digest", `${a.host}/team/app:1`], { env: await home([]) });
      expect(ok.code, ok.stderr).toBe(0);
    }
    const missing = await regcli(["--cert-dir", join(empty, "nope"), "digest", `${a.host}/team/app:1`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--cert-dir .*nope is not a directory/);
  });
});

describe("plain HTTP, mirrors and proxies", () => {
  let origin: TestRegistry;
  let busybox: TestImage;
  let dest: TestRegistry;
  beforeAll(async () => {
    [origin, dest] = await Promise.all([startRegistry("open"), startRegistry("open")]);
    busybox = await makeImage({ layers: 2, seed: "busybox", format: "docker" });
    await pushImage(origin, "library/busybox", "latest", busybox);
    await pushImage(origin, "someuser/tool", "2.1", await makeImage({ seed: "tool" }));
  });
  afterAll(async () => Promise.all([origin?.stop(), dest?.stop()]));

  it("plain HTTP is used automatically for 127.0.0.1 and localhost", async () => {
    const port = origin.host.split(":")[1];
    for (const host of [origin.host, `localhost:${port}`]) {
      const r = await regcli(["digest", `${host}/library/busybox`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(busybox.manifestDigest);
    }
  });

  it("a loopback host found speaking plain HTTP is noted in the cache: the next run makes no HTTPS attempt", async () => {
    const fwd = await countingForwarder(origin.host);
    try {
      const env = { XDG_CACHE_HOME: await tempDir("regcli-cache-") };
      const digest = async () => {
        const before = fwd.connections();
        const r = await regcli(["--debug", "digest", `${fwd.host}/library/busybox`], { env });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe(busybox.manifestDigest);
        return { connections: fwd.connections() - before, https: r.stderr.includes(`> GET https://${fwd.host}/v2/`) };
      };
      // First: the TLS attempt on its own connection, then /v2/ and the HEAD over plain HTTP on one more.
      expect(await digest()).toEqual({ connections: 2, https: true });
      const file = join(env.XDG_CACHE_HOME, "regcli", "plain-http.json");
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(Object.keys(JSON.parse(await readFile(file, "utf8")))).toEqual([fwd.host]);
      expect(await digest()).toEqual({ connections: 1, https: false });
      // Only that exact host:port: the same registry under another name is probed in full.
      const other = await regcli(["--debug", "digest", `localhost:${origin.host.split(":")[1]}/library/busybox`], { env });
      expect(other.stderr).toContain("> GET https://localhost:");
    } finally {
      fwd.close();
    }
  });

  it("a corrupt cache file, or one others may write, is ignored and never fatal", async () => {
    const fwd = await countingForwarder(origin.host);
    try {
      const corrupt = await plainHttpCache([]);
      await writeFile(join(corrupt, "regcli", "plain-http.json"), "{not json");
      const open = await plainHttpCache([fwd.host], 0o666);
      for (const cache of [corrupt, open]) {
        const r = await regcli(["--debug", "digest", `${fwd.host}/library/busybox`], { env: { XDG_CACHE_HOME: cache } });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe(busybox.manifestDigest);
        expect(r.stderr).toContain(`> GET https://${fwd.host}/v2/`);
      }
      // Rewritten whole by the full probe, with the owner-only mode.
      expect(Object.keys(JSON.parse(await readFile(join(corrupt, "regcli", "plain-http.json"), "utf8")))).toEqual([fwd.host]);
      expect((await stat(join(open, "regcli", "plain-http.json"))).mode & 0o777).toBe(0o600);
      // A cache directory that cannot be made is no failure either.
      const blocked = await tempDir("regcli-cache-");
      await writeFile(join(blocked, "regcli"), "a file, not a directory");
      const r = await regcli(["digest", `${fwd.host}/library/busybox`], { env: { XDG_CACHE_HOME: blocked } });
      expect(r.code, r.stderr).toBe(0);
    } finally {
      fwd.close();
    }
  });

  it("regcli copy busybox goes through the docker.io mirror (env variable)", async () => {
    const env = { REGCLI_REGISTRY_MIRRORS: origin.url };
    const r = await regcli(["copy", "busybox", `${dest.host}/firstapp`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(busybox.manifestDigest);
    expect((await fetchManifest(dest, "firstapp", "latest")).body.equals(busybox.manifest)).toBe(true);
    const user = await regcli(["digest", "someuser/tool:2.1"], { env });
    expect(user.code, user.stderr).toBe(0);
  });

  it("mirrors come from the config file too, tried in order with fallback past a dead one", async () => {
    const dir = await tempDir();
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ "registry-mirrors": ["http://127.0.0.1:9", origin.url] }));
    const r = await regcli(["inspect", "docker.io/library/busybox:latest", "--format", "json"], { env: { REGCLI_CONFIG: config } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).digest).toBe(busybox.manifestDigest);
  });

  it("HTTP_PROXY is honoured and NO_PROXY bypasses it", async () => {
    const tunnels: string[] = [];
    const proxy = createServer();
    proxy.on("connect", (req, client: Socket, head) => {
      tunnels.push(req.url ?? "");
      const [host, port] = (req.url ?? "").split(":");
      const upstream = connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    proxy.on("request", (req, res) => {
      // absolute-form forwarding for proxies that are not tunnelled
      tunnels.push(req.url ?? "");
      const target = new URL(req.url ?? "");
      const fwd = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(fwd);
    });
    const port = await listen(proxy);
    try {
      const proxied = await regcli(["digest", `${origin.host}/library/busybox`], { env: { HTTP_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: "" } });
      expect(proxied.code, proxied.stderr).toBe(0);
      expect(tunnels.some((t) => t.includes(origin.host))).toBe(true);
      const seen = tunnels.length;
      const direct = await regcli(["digest", `${origin.host}/library/busybox`], { env: { HTTP_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: "127.0.0.1" } });
      expect(direct.code, direct.stderr).toBe(0);
      expect(tunnels.length).toBe(seen);
    } finally {
      proxy.close();
    }
  });

  it("connection refused is exit 5 with the host named", async () => {
    const r = await regcli(["--retries", "0", "ls", "127.0.0.1:9/app"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/connection refused by 127\.0\.0\.1:9/);
  });

  it("--timeout bounds connecting: a TLS handshake or a TCP connect that never completes fails in about --timeout", async () => {
    // Accepts TCP and never says a word: the TLS handshake (tried first on loopback) never completes.
    const held: Socket[] = [];
    const silent = createNetServer((socket) => held.push(socket.on("error", () => undefined)));
    const silentPort = await new Promise<number>((resolve) => silent.listen(0, "127.0.0.1", () => resolve((silent.address() as AddressInfo).port)));
    // Never accepts (its event loop is blocked) and its accept queue is full: the kernel drops further SYNs.
    const blocked = spawn(process.execPath, ["-e", NEVER_ACCEPTS], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const blockedPort = Number((await once(blocked.stdout!, "data"))[0].toString());
      for (let i = 0; i < 2; i++) held.push(connect(blockedPort, "127.0.0.1").on("error", () => undefined));
      await new Promise((r) => setTimeout(r, 200));
      for (const host of [`127.0.0.1:${silentPort}`, `127.0.0.1:${blockedPort}`]) {
        for (const flags of [[], ["--plain-http"]]) {
          const started = Date.now();
          const r = await regcli(["--timeout", "2", "--retries", "0", ...flags, "ls", `${host}/app`], { timeoutMs: 30_000 });
          const seconds = (Date.now() - started) / 1000;
          expect(r.code, r.stderr).toBe(5);
          expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
          expect(r.stderr).toMatch(new RegExp(`timed out (connecting to|talking to) ${host.replace(/\./g, "\\.")}`));
          // Before: undici's own 10 s connect timeout, whatever --timeout said; now 2 s plus start-up (slow on a busy machine).
          expect(seconds, `${host} ${flags.join(" ")}`).toBeLessThan(8);
        }
      }
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
      blocked.kill("SIGKILL");
    }
  });

  it("a mirror's 404 is reported, not hidden behind docker.io's DNS failure; network errors name the image", async () => {
    // No internet here: docker.io genuinely cannot be resolved, as for a user behind a mirror-only network.
    const env = { REGCLI_REGISTRY_MIRRORS: origin.url };
    const blobDigest = busybox.layers[0]!.digest;
    for (const args of [["pull", "nothere"], ["digest", "nothere"], ["inspect", "nothere"], ["ls", "nothere"], ["blob", `nothere@${blobDigest}`]]) {
      const r = await regcli(["--retries", "0", ...args], { env: { ...env, REGCLI_HOME: await tempDir() } });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(4);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toContain(`${origin.host}/library/nothere`); // the mirror's answer
      expect(r.stderr).toMatch(/not found/);
      expect(r.stderr).toMatch(/cannot resolve host registry-1\.docker\.io \((image|repository) docker\.io\/library\/nothere/); // and docker.io's
    }
    // Without a mirror: the DNS failure names the host and the image.
    const dns = await regcli(["--retries", "0", "pull", "nothere:1.0"], { env: { REGCLI_HOME: await tempDir() } });
    expect(dns.code).toBe(5);
    expect(dns.stderr.trim()).toMatch(/^regcli: error: cannot resolve host registry-1\.docker\.io \(image docker\.io\/library\/nothere:1\.0\)/);
    // A refused connection while pushing names the repository being written.
    const refused = await regcli(["--retries", "0", "copy", `${origin.host}/library/busybox`, "127.0.0.1:9/team/app:2"]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/connection refused by 127\.0\.0\.1:9 \((image|repository) 127\.0\.0\.1:9\/team\/app/);
  });

  it("tag lists follow relative Link headers page by page, and a pagination loop is refused", async () => {
    const pages: Record<string, { tags: string[]; next?: string }> = {
      "": { tags: ["1", "2"], next: "/v2/app/tags/list?n=2&last=2" },
      "2": { tags: ["3", "4"], next: "/v2/app/tags/list?n=2&last=4" },
      "4": { tags: ["5"] },
      loop: { tags: ["x"], next: "/v2/loop/tags/list?n=2" },
    };
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/v2/") return res.writeHead(200).end("{}");
      const page = url.pathname.startsWith("/v2/loop/") ? pages.loop! : pages[url.searchParams.get("last") ?? ""]!;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (page.next) headers.link = `<${page.next}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: "app", tags: page.tags }));
    });
    const port = await listen(server);
    try {
      const r = await regcli(["ls", `127.0.0.1:${port}/app`, "--page-size", "2", "--format", "json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).tags).toEqual(["1", "2", "3", "4", "5"]);
      const loop = await regcli(["ls", `127.0.0.1:${port}/loop`, "--page-size", "2"]);
      expect(loop.code).toBe(5);
      expect(loop.stderr).toMatch(/pagination loop/);
    } finally {
      server.close();
    }
  });

  it("a server that is not a registry is named as such", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<h1>nothing here</h1>");
    });
    const port = await listen(server);
    try {
      const r = await regcli(["ls", `127.0.0.1:${port}/app`]);
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/not a container registry/);
    } finally {
      server.close();
    }
  });
});

describe("usage errors and refused deletes", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry("open", { deleteEnabled: false });
    await pushImage(reg, "keep/app", "1.0", await makeImage({ seed: "nodelete" }));
  });
  afterAll(async () => reg?.stop());

  it("a registry that refuses deletes gets a clear message and keeps the image", async () => {
    const r = await regcli(["delete", `${reg.host}/keep/app:1.0`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/does not allow deleting/);
    expect(r.stderr).toMatch(/storage\.delete\.enabled/);
    expect((await fetchManifest(reg, "keep/app", "1.0")).status).toBe(200);
  });

  it.each([
    [["manifest", "Busybox/UPPER"], /lowercase/],
    [["manifest", "app:bad tag"], /invalid reference/],
    [["copy", "a@sha256:123", "b"], /digest/],
    [["config", "busybox", "--platform", "linux"], /os\/arch/],
    [["ls", "localhost:5000/app", "--format", "yaml"], /--format/],
    [["copy", "--all-tags", "a:1", "b"], /--all-tags/],
    [["no-such-command"], /unknown command/],
    [["tag", "busybox"], /missing required argument/],
  ])("%j is a usage error (exit 2)", async (args, pattern) => {
    const r = await regcli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("version and --help work, every command has help with an example", async () => {
    const v = await regcli(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await regcli(["version"])).stdout).toMatch(/^regcli \d+\.\d+\.\d+/);
    for (const cmd of ["ls", "manifest", "digest", "config", "inspect", "blob", "tag", "delete", "untag", "rmi", "copy", "login", "logout"]) {
      const h = await regcli([cmd, "--help"]);
      expect(h.code, cmd).toBe(0);
      expect(h.stdout, cmd).toMatch(/Example/);
    }
  });
});

describe("registries.conf (podman's mirrors, insecure and blocked registries)", () => {
  let origin: TestRegistry;
  let mirror: TestRegistry;
  let tls: TestRegistry;
  let dest: TestRegistry;
  let app: TestImage;
  let hubCopy: TestImage;
  let busybox: TestImage;
  beforeAll(async () => {
    [origin, mirror, tls, dest] = await Promise.all([startRegistry("open"), startRegistry("open"), startRegistry("tls"), startRegistry("open")]);
    [app, hubCopy, busybox] = await Promise.all([makeImage({ seed: "regconf-app" }), makeImage({ seed: "regconf-hub" }), makeImage({ seed: "regconf-busybox" })]);
    await pushImage(mirror, "cache/team/app", "1.0", app);
    await pushImage(mirror, "library/busybox", "latest", hubCopy);
    await pushImage(origin, "library/busybox", "latest", busybox);
    await pushImage(tls, "secure/app", "1.0", app);
  });
  afterAll(async () => Promise.all([origin?.stop(), mirror?.stop(), tls?.stop(), dest?.stop()]));

  /** registries.conf in a fresh directory, with an empty drop-in directory and HOME there: /etc is not read. */
  async function conf(text: string, dropIns: Record<string, string> = {}): Promise<{ path: string; env: Record<string, string> }> {
    const dir = await tempDir("regcli-regconf-");
    const path = join(dir, "registries.conf");
    await writeFile(path, text);
    await mkdir(join(dir, "registries.conf.d"));
    for (const [name, body] of Object.entries(dropIns)) await writeFile(join(dir, "registries.conf.d", name), body);
    return { path, env: { CONTAINERS_REGISTRIES_CONF: path, CONTAINERS_REGISTRIES_CONF_DIR: join(dir, "registries.conf.d"), HOME: dir } };
  }

  it("a [[registry.mirror]] serves pulls of a registry that is down, renamed by location; pushes never go to a mirror", async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const deadMirror = `127.0.0.1:${await freePort()}`;
    // Keys regcli has no use for (short names, search registries, aliases) are accepted and ignored.
    const { env } = await conf(`unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"
[aliases]
"app" = "${down}/team/app"

[[registry]]
prefix = "${down}/team"
location = "${down}/team"

[[registry.mirror]]
location = "${deadMirror}"

[[registry.mirror]]
location = "${mirror.host}/cache/team/"
`);
    const without = await regcli(["digest", `${down}/team/app:1.0`]);
    expect(without.code).toBe(5);
    const digest = await regcli(["digest", `${down}/team/app:1.0`], { env });
    expect(digest.code, digest.stderr).toBe(0);
    expect(digest.stdout.trim()).toBe(app.manifestDigest);
    const copy = await regcli(["copy", `${down}/team/app:1.0`, `${dest.host}/team/app:1.0`], { env });
    expect(copy.code, copy.stderr).toBe(0);
    expect((await fetchManifest(dest, "team/app", "1.0")).body.equals(app.manifest)).toBe(true);

    const push = await regcli(["copy", `${dest.host}/team/app:1.0`, `${down}/team/app:2.0`], { env });
    expect(push.code).toBe(5);
    expect(push.stderr).toContain(down);
    expect((await fetchManifest(mirror, "cache/team/app", "2.0")).status).toBe(404);
  });

  it("pull-from-mirror = digest-only: a tag is not read from that mirror, a digest is", async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const { env } = await conf(`[[registry]]
location = "${down}"
[[registry.mirror]]
location = "${mirror.host}/cache"
pull-from-mirror = "digest-only"
`);
    const byTag = await regcli(["digest", `${down}/team/app:1.0`], { env });
    expect(byTag.code).toBe(5);
    const byDigest = await regcli(["manifest", `${down}/team/app@${app.manifestDigest}`], { env });
    expect(byDigest.code, byDigest.stderr).toBe(0);
    expect(byDigest.stdoutBuffer.equals(app.manifest)).toBe(true);
  });

  it("insecure = true lets that registry use unverified TLS, or plain HTTP on a host that is not loopback", async () => {
    const { env } = await conf(`[[registry]]\nlocation = "${tls.host}"\ninsecure = true\n`);
    expect((await regcli(["ls", `${tls.host}/secure/app`])).code).toBe(5);
    const ls = await regcli(["ls", `${tls.host}/secure/app`], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim()).toBe("1.0");
    const copy = await regcli(["copy", `${tls.host}/secure/app:1.0`, `${dest.host}/from-tls:1.0`], { env });
    expect(copy.code, copy.stderr).toBe(0);

    // Plain HTTP: the origin registry, reached through this machine's own non-loopback address.
    const address = Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal)?.address;
    expect(address, "a non-loopback IPv4 address on this machine").toBeDefined();
    const [originHost, originPort] = origin.host.split(":");
    const forwarder = createNetServer((client) => {
      const upstream = connect(Number(originPort), originHost, () => {
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(0, address, resolve));
    const plain = `${address}:${(forwarder.address() as AddressInfo).port}`;
    try {
      expect((await regcli(["ls", `${plain}/library/busybox`])).code).toBe(5);
      // A plain-HTTP note in the cache never downgrades a host that is not allowed the fallback.
      const noted = await regcli(["--debug", "ls", `${plain}/library/busybox`], { env: { XDG_CACHE_HOME: await plainHttpCache([plain]) } });
      expect(noted.code).toBe(5);
      expect(noted.stderr).not.toContain(`http://${plain}`);
      const http = await conf(`[[registry]]\nlocation = "${plain}"\ninsecure = true\n`);
      const tags = await regcli(["ls", `${plain}/library/busybox`], { env: http.env });
      expect(tags.code, tags.stderr).toBe(0);
      expect(tags.stdout.trim()).toBe("latest");
      const push = await regcli(["copy", `${tls.host}/secure/app:1.0`, `${plain}/pushed/app:1.0`], { env: { ...http.env, REGCLI_INSECURE_REGISTRIES: tls.host } });
      expect(push.code, push.stderr).toBe(0);
      expect((await fetchManifest(origin, "pushed/app", "1.0")).body.equals(app.manifest)).toBe(true);
    } finally {
      forwarder.close();
    }
  });

  it("blocked = true is refused before any request, naming the registry and the file that blocks it", async () => {
    let connections = 0;
    const server = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const blocked = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // From a drop-in, which wins over the main file's entry for the same prefix.
      const dropIn = `[[registry]]\nlocation = "${blocked}"\nblocked = true\n`;
      const { path, env } = await conf(`[[registry]]\nlocation = "${blocked}"\n`, { "50-block.conf": dropIn });
      const blockFile = join(dirname(path), "registries.conf.d", "50-block.conf");
      for (const args of [["ls", `${blocked}/app`], ["copy", `${origin.host}/library/busybox`, `${blocked}/app:1`], ["delete", "--force", `${blocked}/app:1`]]) {
        const r = await regcli(args, { env });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toContain(`${blocked}/app is blocked by ${blockFile}`);
      }
      // ~/.config/containers/registries.conf is read instead of /etc's when there is no $CONTAINERS_REGISTRIES_CONF.
      const home = await tempDir("regcli-home-");
      await mkdir(join(home, ".config", "containers"), { recursive: true });
      const userFile = join(home, ".config", "containers", "registries.conf");
      await writeFile(userFile, dropIn);
      const user = await regcli(["digest", `${blocked}/app:1`], { env: { HOME: home, CONTAINERS_REGISTRIES_CONF: undefined, CONTAINERS_REGISTRIES_CONF_DIR: undefined } });
      expect(user.code).toBe(2);
      expect(user.stderr).toContain(`blocked by ${userFile}`);
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });

  it("regcli's own config wins: its registry-mirrors replace registries.conf's docker.io mirrors, its insecure-registries apply", async () => {
    const { env } = await conf(`[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "${mirror.host}"

[[registry]]
location = "${tls.host}"
insecure = false
`);
    const fromConf = await regcli(["digest", "busybox"], { env });
    expect(fromConf.code, fromConf.stderr).toBe(0);
    expect(fromConf.stdout.trim()).toBe(hubCopy.manifestDigest);
    const dir = await tempDir();
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ "registry-mirrors": [origin.url], "insecure-registries": [tls.host] }));
    const own = await regcli(["digest", "busybox"], { env: { ...env, REGCLI_CONFIG: config } });
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout.trim()).toBe(busybox.manifestDigest);
    const insecure = await regcli(["ls", `${tls.host}/secure/app`], { env: { ...env, REGCLI_CONFIG: config } });
    expect(insecure.code, insecure.stderr).toBe(0);
  });

  it("a TOML syntax error is one line with FILE:LINE; an unknown key in regcli's config is named with the known keys", async () => {
    const { path, env } = await conf(`[[registry]]\nlocation = "example.com"\ninsecure = \n`);
    const bad = await regcli(["ls", `${origin.host}/library/busybox`], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain(`${path}:3:`);

    const dir = await tempDir();
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ "registry-mirror": [origin.url] }));
    const unknown = await regcli(["ls", `${origin.host}/library/busybox`], { env: { REGCLI_CONFIG: config } });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
    expect(unknown.stderr).toContain(`unknown key "registry-mirror" in ${config}`);
    expect(unknown.stderr).toMatch(/known keys: registry-mirrors, insecure-registries/);
  });
});
