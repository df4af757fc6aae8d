// Real CNCF Distribution registries (Debian docker-registry) on loopback, in the four auth modes the tests need.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createSign, randomUUID, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { Agent, request } from "undici";
import { repoRoot, tempDir } from "./cli.js";

/** "mtls": TLS that also requires a client certificate signed by the registry's CA (`http.tls.clientcas`). */
export type RegistryMode = "open" | "basic" | "token" | "tls" | "mtls";
export interface TestUser {
  username: string;
  password: string;
}

export interface TestRegistry {
  mode: RegistryMode;
  host: string;
  url: string;
  root: string;
  caFile?: string;
  /** The CA's key (tls, mtls): another registry can be started with the same CA (`startRegistry(mode, { ca })`). */
  ca?: TestCa;
  /** mtls: a client certificate and key the registry accepts, named as certs.d names them (client.cert, client.key). */
  clientCert?: string;
  clientKey?: string;
  admin?: TestUser;
  reader?: TestUser;
  tokenRealm?: string;
  issued?: { count: number; scopes: string[] };
  /** An Authorization header for the admin with that scope (Basic, or a freshly minted Bearer). */
  authHeader(scope: string): Promise<string | undefined>;
  /** The undici dispatcher to reach it (trusts the test CA in tls mode). */
  dispatcher: Agent;
  /** The server's process id (a restart changes it). */
  readonly pid: number | undefined;
  /** Kill the server (SIGKILL), keeping its storage; restart() starts it again on the same address. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "ignore" });
}

export interface TestCa {
  cert: string;
  key: string;
}

/** A certificate for `subject` signed by `ca`, with these extensions (openssl x509 -extfile syntax). */
function signCertificate(dir: string, ca: TestCa, name: string, subject: string, extensions: string): { cert: string; key: string } {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", `${name}.cert`, "-days", "30", "-extfile", `${name}.ext`], dir);
  return { cert: join(dir, `${name}.cert`), key: join(dir, `${name}.key`) };
}

/** A server certificate for 127.0.0.1 and localhost, signed by `ca` (a new CA when none is given). */
function makeTlsFiles(dir: string, ca?: TestCa): { ca: TestCa; cert: string; key: string } {
  if (!ca) {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=regcli test CA"], dir);
    ca = { cert: join(dir, "ca.pem"), key: join(dir, "ca.key") };
  }
  const server = signCertificate(dir, ca, "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  return { ca, ...server };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** A token service in the Docker Hub scheme: RS256 JWTs with an x5c header the registry's rootcertbundle trusts. */
class TokenIssuer {
  readonly issued = { count: 0, scopes: [] as string[] };
  private server: Server | undefined;
  realm = "";
  private readonly keyPem: string;
  private readonly certDer: string;

  constructor(
    readonly certFile: string,
    keyFile: string,
    private readonly users: Record<string, { password: string; role: "admin" | "reader" }>,
  ) {
    this.keyPem = readFileSync(keyFile, "utf8");
    this.certDer = new X509Certificate(readFileSync(certFile)).raw.toString("base64");
  }

  mint(subject: string, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "RS256", typ: "JWT", x5c: [this.certDer] };
    const claims = { iss: "test-issuer", sub: subject, aud: "test-registry", exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(input).sign(this.keyPem);
    return `${input}.${b64url(signature)}`;
  }

  private grant(user: string | undefined, scopes: string[]): Access[] {
    const role = user ? this.users[user]?.role : undefined;
    const out: Access[] = [];
    for (const scope of scopes) {
      const first = scope.indexOf(":");
      const last = scope.lastIndexOf(":");
      if (first < 0 || last <= first) continue;
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const wanted = scope.slice(last + 1).split(",").filter(Boolean);
      let actions: string[];
      if (role === "admin") actions = wanted;
      else if (type === "repository") actions = wanted.filter((a) => a === "pull");
      else actions = [];
      if (actions.length) out.push({ type, name, actions });
    }
    return out;
  }

  private authenticate(username: string | undefined, password: string | undefined): string | undefined | false {
    if (username === undefined) return undefined;
    const user = this.users[username];
    return user && user.password === password ? username : false;
  }

  async start(): Promise<void> {
    this.server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://x");
        let user: string | undefined | false;
        let scopes: string[];
        let offline = url.searchParams.get("offline_token") === "true";
        if (req.method === "POST") {
          const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
          scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
          const grant = form.get("grant_type");
          if (grant === "password") user = this.authenticate(form.get("username") ?? "", form.get("password") ?? "");
          else if (grant === "refresh_token") {
            const m = /^refresh-(.+)$/.exec(form.get("refresh_token") ?? "");
            user = m && this.users[m[1]!] ? m[1]! : false;
          } else user = false;
          offline = true;
        } else {
          scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
          const auth = req.headers.authorization;
          if (auth?.startsWith("Basic ")) {
            const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
            const i = decoded.indexOf(":");
            user = this.authenticate(decoded.slice(0, i), decoded.slice(i + 1));
          }
        }
        if (user === false) {
          res.writeHead(401, { "content-type": "application/json" });
          res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "invalid credentials" }] }));
          return;
        }
        this.issued.count++;
        this.issued.scopes.push(...scopes);
        const token = this.mint(user ?? "", this.grant(user, scopes));
        const body: Record<string, unknown> = { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() };
        if (offline && user) body.refresh_token = `refresh-${user}`;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      });
    });
    const port = await listen(this.server);
    this.realm = `http://127.0.0.1:${port}/token`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

async function waitUntilUp(url: string, dispatcher: Agent, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await request(`${url}/v2/`, { dispatcher });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let log = "";
  try {
    log = readFileSync(logFile, "utf8").slice(-2000);
  } catch {
    /* no log */
  }
  throw new Error(`docker-registry did not start at ${url}: ${log}`);
}

export type RegistryServer = "docker-registry" | "regcli";

/** `server: "regcli"` runs `node bin/regcli.cjs serve`, or `regcliBin serve` (an installed or standalone regcli). */
export async function startRegistry(
  mode: RegistryMode,
  opts: {
    proxyRemoteUrl?: string;
    deleteEnabled?: boolean;
    server?: RegistryServer;
    ca?: TestCa;
    regcliBin?: string;
    /** regcli serve only: more flags (--proxy URL...), its standard input (--proxy-password-stdin) and environment. */
    serveArgs?: string[];
    stdin?: string;
    env?: Record<string, string>;
  } = {},
): Promise<TestRegistry> {
  const dir = await tempDir("regcli-registry-");
  const root = join(dir, "data");
  const admin: TestUser = { username: "alice", password: `alice-${randomUUID().slice(0, 8)}` };
  const reader: TestUser = { username: "bob", password: `bob-${randomUUID().slice(0, 8)}` };
  let auth = "";
  let tls = "";
  let caFile: string | undefined;
  let ca: TestCa | undefined;
  let client: { cert: string; key: string } | undefined;
  let issuer: TokenIssuer | undefined;
  let tlsFiles: { cert: string; key: string } | undefined;
  if (opts.server === "regcli" && (mode === "token" || mode === "mtls" || opts.proxyRemoteUrl)) throw new Error("regcli serve has no token auth, client certificates or proxy mode");
  if (mode === "basic") {
    const lines = [admin, reader].map((u) => execFileSync("htpasswd", ["-Bbn", u.username, u.password], { encoding: "utf8" }).trim());
    writeFileSync(join(dir, "htpasswd"), `${lines.join("\n")}\n`);
    auth = `auth:\n  htpasswd: {realm: basic-realm, path: ${join(dir, "htpasswd")}}\n`;
  } else if (mode === "token") {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "issuer.key", "-out", "issuer.pem", "-days", "30", "-subj", "/CN=token-issuer"], dir);
    issuer = new TokenIssuer(join(dir, "issuer.pem"), join(dir, "issuer.key"), {
      [admin.username]: { password: admin.password, role: "admin" },
      [reader.username]: { password: reader.password, role: "reader" },
    });
    await issuer.start();
    auth = `auth:\n  token: {realm: "${issuer.realm}", service: test-registry, issuer: test-issuer, rootcertbundle: ${issuer.certFile}}\n`;
  } else if (mode === "tls" || mode === "mtls") {
    const files = makeTlsFiles(dir, opts.ca);
    tlsFiles = files;
    ca = files.ca;
    caFile = files.ca.cert;
    tls = `  tls: {certificate: ${files.cert}, key: ${files.key}}\n`;
    if (mode === "mtls") {
      client = signCertificate(dir, ca, "client", "/CN=regcli test client", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n");
      tls = `  tls: {certificate: ${files.cert}, key: ${files.key}, clientcas: [${caFile}]}\n`;
    }
  }
  const dispatcher = new Agent(
    caFile ? { connect: { ca: readFileSync(caFile, "utf8"), ...(client ? { cert: readFileSync(client.cert, "utf8"), key: readFileSync(client.key, "utf8") } : {}) } } : {},
  );
  const proxy = opts.proxyRemoteUrl ? `proxy: {remoteurl: "${opts.proxyRemoteUrl}"}\n` : "";
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const url = `${caFile ? "https" : "http"}://${host}`;
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      `version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: ${root}}\n  delete: {enabled: ${opts.deleteEnabled ?? true}}\n  maintenance: {uploadpurging: {enabled: false}}\nhttp:\n  addr: ${host}\n  secret: ${randomUUID()}\n${tls}${auth}${proxy}`,
    );
    const logFile = join(dir, `registry-${attempt}.log`);
    const { openSync } = await import("node:fs");
    const fd = openSync(logFile, "a");
    const launch = () =>
      opts.server === "regcli"
        ? spawn(
            opts.regcliBin ?? process.execPath,
            [
              ...(opts.regcliBin ? [] : [join(repoRoot, "bin", "regcli.cjs")]),
              "serve",
              "--addr",
              host,
              "--root",
              root,
              ...(opts.deleteEnabled ?? true ? ["--delete"] : []),
              ...(mode === "basic" ? ["--htpasswd", join(dir, "htpasswd")] : []),
              ...(tlsFiles ? ["--tls-cert", tlsFiles.cert, "--tls-key", tlsFiles.key] : []),
              ...(opts.serveArgs ?? []),
            ],
            { stdio: [opts.stdin === undefined ? "ignore" : "pipe", fd, fd], env: { ...process.env, ...opts.env } },
          )
        : spawn("docker-registry", ["serve", config], { stdio: ["ignore", fd, fd] });
    let child = launch();
    children.add(child);
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    try {
      await waitUntilUp(url, dispatcher, child, logFile);
    } catch (err) {
      child.kill("SIGKILL");
      children.delete(child);
      if (attempt < 2) continue;
      throw err;
    }
    const authHeader = async (scope: string): Promise<string | undefined> => {
      if (mode === "basic") return `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString("base64")}`;
      if (mode === "token") {
        const [type, ...rest] = scope.split(":");
        const actions = rest.pop()!.split(",");
        return `Bearer ${issuer!.mint(admin.username, [{ type: type!, name: rest.join(":"), actions }])}`;
      }
      return undefined;
    };
    return {
      mode,
      host,
      url,
      root,
      caFile,
      ca,
      clientCert: client?.cert,
      clientKey: client?.key,
      admin: mode === "basic" || mode === "token" ? admin : undefined,
      reader: mode === "token" ? reader : undefined,
      tokenRealm: issuer?.realm,
      issued: issuer?.issued,
      authHeader,
      dispatcher,
      get pid() {
        return child.pid;
      },
      async kill() {
        const exited = child.exitCode === null ? new Promise((r) => child.once("exit", r)) : undefined;
        child.kill("SIGKILL");
        await exited;
        children.delete(child);
      },
      async restart() {
        child = launch();
        children.add(child);
        if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
        await waitUntilUp(url, dispatcher, child, logFile);
      },
      async stop() {
        child.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 50));
        if (child.exitCode === null) child.kill("SIGKILL");
        children.delete(child);
        await issuer?.stop();
        await dispatcher.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
