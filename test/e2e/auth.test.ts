// Auth negotiation end to end: Basic and token registries, credentials from config.json and podman/skopeo's
// auth.json, login/logout (on a terminal too), per-side credentials of copy and sync.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, onTerminal, regcli, skopeo, tempDir } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { fetchManifest, makeImage, pushImage, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

describe("token auth (Docker Hub scheme)", () => {
  let reg: TestRegistry;
  let image: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("token");
    image = await makeImage({ layers: 2, seed: "token-auth" });
    await pushImage(reg, "public/app", "1.0", image);
  });
  afterAll(async () => reg?.stop());

  it("anonymous users may pull with an anonymous pull-scoped token", async () => {
    const before = reg.issued!.scopes.length;
    const r = await regcli(["manifest", `${reg.host}/public/app:1.0`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBuffer.equals(image.manifest)).toBe(true);
    expect(reg.issued!.scopes.slice(before)).toContain("repository:public/app:pull");
  });

  it("anonymous push is refused with the auth exit code and a login hint", async () => {
    const r = await regcli(["copy", `${reg.host}/public/app:1.0`, `${reg.host}/anon/app:1.0`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/regcli login/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect((await fetchManifest(reg, "anon/app", "1.0")).status).not.toBe(200);
  });

  it("a read-only user cannot push", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.reader! }) };
    const r = await regcli(["tag", `${reg.host}/public/app:1.0`, "bob-was-here"], { env });
    expect(r.code).toBe(3);
  });

  it("credentials from config.json get push, and mounts ask for the source repository's pull scope", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
    const before = reg.issued!.scopes.length;
    const r = await regcli(["copy", `${reg.host}/public/app:1.0`, `${reg.host}/team/app:1.0`], { env });
    expect(r.code, r.stderr).toBe(0);
    const scopes = reg.issued!.scopes.slice(before);
    expect(scopes).toContain("repository:team/app:pull,push");
    expect(scopes).toContain("repository:public/app:pull");
    expect((await fetchManifest(reg, "team/app", "1.0")).body.equals(image.manifest)).toBe(true);
  });

  it("tokens are cached per scope within a command", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
    const before = reg.issued!.count;
    const r = await regcli(["inspect", `${reg.host}/public/app:1.0`], { env });
    expect(r.code, r.stderr).toBe(0);
    // manifest + config blob reads share one pull token
    expect(reg.issued!.count - before).toBe(1);
  });

  it("the catalog needs the registry:catalog:* scope, which only the admin has", async () => {
    const anon = await regcli(["ls", reg.host]);
    expect(anon.code).toBe(3);
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
    const r = await regcli(["ls", reg.host], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("public/app");
  });

  it("a wrong password fails at the token service with exit 3", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: { username: "alice", password: "wrong" } }) };
    const r = await regcli(["manifest", `${reg.host}/public/app:1.0`], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/refused the credentials/);
    expect(r.stderr).not.toContain("wrong");
  });

  it("an identity token in config.json is exchanged with the OAuth2 POST form", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "config.json"), JSON.stringify({ auths: { [reg.host]: { identitytoken: "refresh-alice" } } }));
    const r = await regcli(["tag", `${reg.host}/public/app:1.0`, "via-refresh-token"], { env: { DOCKER_CONFIG: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect((await fetchManifest(reg, "public/app", "via-refresh-token")).status).toBe(200);
  });

  it("login checks the credentials and stores them like docker (0600), logout removes them", async () => {
    const dir = await tempDir();
    const env = { DOCKER_CONFIG: dir };
    const bad = await regcli(["login", reg.host, "-u", "alice", "--password-stdin"], { env, input: "nope\n" });
    expect(bad.code).toBe(3);
    await expect(stat(join(dir, "config.json"))).rejects.toThrow();
    const good = await regcli(["login", reg.host, "-u", reg.admin!.username, "--password-stdin"], { env, input: `${reg.admin!.password}\n` });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toMatch(/Login Succeeded/);
    expect(good.stdout + good.stderr).not.toContain(reg.admin!.password);
    const file = join(dir, "config.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const config = JSON.parse(await readFile(file, "utf8"));
    expect(Buffer.from(config.auths[reg.host].auth, "base64").toString()).toBe(`${reg.admin!.username}:${reg.admin!.password}`);
    const push = await regcli(["tag", `${reg.host}/public/app:1.0`, "after-login"], { env });
    expect(push.code, push.stderr).toBe(0);
    expect((await regcli(["logout", reg.host], { env })).code).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8")).auths[reg.host]).toBeUndefined();
    expect((await regcli(["tag", `${reg.host}/public/app:1.0`, "after-logout"], { env })).code).toBe(3);
  });

  it("one registry on both sides: --src-creds (a reader) reads, --dest-creds (the admin) writes, each its own token", async () => {
    const creds = (u: { username: string; password: string }) => `${u.username}:${u.password}`;
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: { username: "alice", password: "stale" } }) };
    const r = await regcli(["copy", "--src-creds", creds(reg.reader!), "--dest-creds", creds(reg.admin!), `${reg.host}/public/app:1.0`, `${reg.host}/sides/app:1.0`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((await fetchManifest(reg, "sides/app", "1.0")).body.equals(image.manifest)).toBe(true);
    // The reader on the destination side cannot push, although the admin is the source's on the same registry.
    const swapped = await regcli(["copy", "--src-creds", creds(reg.admin!), "--dest-creds", creds(reg.reader!), `${reg.host}/public/app:1.0`, `${reg.host}/sides/app:swapped`], { env });
    expect(swapped.code).toBe(3);
    expect((await fetchManifest(reg, "sides/app", "swapped")).status).not.toBe(200);
  });

  describe("tokens kept between runs (${XDG_CACHE_HOME}/regcli/tokens.json)", () => {
    const image = () => `${reg.host}/public/app:1.0`;
    /** Run regcli with this cache and config; returns how many tokens the token service issued meanwhile. */
    const tokensFor = async (args: string[], env: { XDG_CACHE_HOME: string; DOCKER_CONFIG?: string }) => {
      const before = reg.issued!.count;
      const r = await regcli(args, { env });
      expect(r.code, r.stderr).toBe(0);
      return reg.issued!.count - before;
    };
    const entries = async (cache: string) => JSON.parse(await readFile(join(cache, "regcli", "tokens.json"), "utf8")) as Record<string, { host: string; header: string; expiresAt: number }>;

    it("the next run for the same registry, scope and user asks no token service; another scope, user or host does", async () => {
      const cache = await tempDir("regcli-cache-");
      const admin = { XDG_CACHE_HOME: cache, DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
      expect(await tokensFor(["digest", image()], admin)).toBe(1);
      expect(await tokensFor(["digest", image()], admin)).toBe(0);
      expect(await tokensFor(["manifest", image()], admin)).toBe(0);
      const file = join(cache, "regcli", "tokens.json");
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const text = await readFile(file, "utf8");
      expect(text).not.toContain(reg.admin!.password);
      expect(text).not.toContain(`"${reg.admin!.username}"`);
      // Another scope (the catalog), another user, no user: each its own token.
      expect(await tokensFor(["ls", reg.host], admin)).toBe(1);
      const reader = { XDG_CACHE_HOME: cache, DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.reader! }) };
      expect(await tokensFor(["digest", image()], reader)).toBe(1);
      expect(await tokensFor(["digest", image()], reader)).toBe(0);
      expect(await tokensFor(["digest", image()], { XDG_CACHE_HOME: cache })).toBe(1);
      expect(await tokensFor(["digest", image()], { XDG_CACHE_HOME: cache })).toBe(0);
      // The same registry under another name is another host.
      expect(await tokensFor(["digest", `localhost:${reg.host.split(":")[1]}/public/app:1.0`], { XDG_CACHE_HOME: cache })).toBe(1);
    });

    it("a kept token the registry rejects is dropped and replaced; an expired, corrupt or others-writable file is ignored", async () => {
      const cache = await tempDir("regcli-cache-");
      const env = { XDG_CACHE_HOME: cache, DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
      const file = join(cache, "regcli", "tokens.json");
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      const rewrite = async (change: (e: { header: string; expiresAt: number }) => void) => {
        const all = await entries(cache);
        Object.values(all).forEach(change);
        await writeFile(file, JSON.stringify(all));
      };
      await rewrite((e) => (e.header = "Bearer not-a-token"));
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      expect(Object.values(await entries(cache)).map((e) => e.header)).not.toContain("Bearer not-a-token");
      expect(await tokensFor(["digest", image()], env)).toBe(0);
      await rewrite((e) => (e.expiresAt = Date.now() - 1000));
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      await chmod(file, 0o666);
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await writeFile(file, "{not json");
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      expect(await tokensFor(["digest", image()], env)).toBe(0);
    });

    it("login asks the token service even with a token at hand; logout drops the registry's tokens", async () => {
      const cache = await tempDir("regcli-cache-");
      const env = { XDG_CACHE_HOME: cache, DOCKER_CONFIG: await tempDir() };
      const login = (password: string) => regcli(["login", reg.host, "-u", reg.admin!.username, "--password-stdin"], { env, input: `${password}\n` });
      expect((await login(reg.admin!.password)).code).toBe(0);
      expect(await tokensFor(["digest", image()], env)).toBe(1);
      expect(Object.values(await entries(cache)).filter((e) => e.host === reg.host)).not.toHaveLength(0);
      const wrong = await login("wrong-password");
      expect(wrong.code, wrong.stderr).toBe(3);
      expect((await regcli(["logout", reg.host], { env })).code).toBe(0);
      expect(Object.values(await entries(cache)).filter((e) => e.host === reg.host)).toHaveLength(0);
    });
  });

  it("--username/--password-stdin override config.json for one command", async () => {
    const r = await regcli(["-u", reg.admin!.username, "--password-stdin", "tag", `${reg.host}/public/app:1.0`, "flag-creds"], {
      input: reg.admin!.password,
    });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("Basic auth (htpasswd)", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry("basic");
    await pushImage(reg, "private/app", "1.0", await makeImage({ seed: "basic-auth" }));
  });
  afterAll(async () => reg?.stop());

  it("without credentials: exit 3 naming the registry and how to log in", async () => {
    const r = await regcli(["manifest", `${reg.host}/private/app:1.0`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(reg.host);
    expect(r.stderr).toMatch(/regcli login/);
  });

  it("with wrong credentials: exit 3, the password never printed", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: { username: "alice", password: "s3cret-wrong" } }) };
    const r = await regcli(["--debug", "manifest", `${reg.host}/private/app:1.0`], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).not.toContain("s3cret-wrong");
    expect(r.stderr).not.toContain(Buffer.from("alice:s3cret-wrong").toString("base64"));
  });

  it("--debug shows requests with the Authorization header redacted", async () => {
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
    const r = await regcli(["--debug", "digest", `${reg.host}/private/app:1.0`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/HEAD http:\/\/127\.0\.0\.1:\d+\/v2\/private\/app\/manifests\/1\.0/);
    expect(r.stderr).toMatch(/"authorization":"Basic \[redacted\]"/);
    expect(r.stderr).not.toContain(reg.admin!.password);
    expect(r.stderr).not.toContain(Buffer.from(`${reg.admin!.username}:${reg.admin!.password}`).toString("base64"));
  });

  it("login stores, commands use, logout erases", async () => {
    const dir = await tempDir();
    const login = await regcli(["login", `http://${reg.host}/`, "-u", reg.admin!.username, "--password-stdin"], {
      env: { DOCKER_CONFIG: dir },
      input: reg.admin!.password,
    });
    expect(login.code, login.stderr).toBe(0);
    const ls = await regcli(["ls", `${reg.host}/private/app`], { env: { DOCKER_CONFIG: dir } });
    expect(ls.stdout.trim()).toBe("1.0");
    expect((await regcli(["logout", reg.host], { env: { DOCKER_CONFIG: dir } })).code).toBe(0);
    expect((await regcli(["ls", `${reg.host}/private/app`], { env: { DOCKER_CONFIG: dir } })).code).toBe(3);
  });
});

describe("podman/skopeo auth.json and --authfile", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry("basic");
    await pushImage(reg, "private/app", "1.0", await makeImage({ seed: "authfile" }));
  });
  afterAll(async () => reg?.stop());

  it("skopeo login --authfile X, then regcli --authfile X reads only X", async () => {
    const file = join(await tempDir(), "auth.json");
    const login = await skopeo(["login", "--tls-verify=false", "--authfile", file, "-u", reg.admin!.username, "-p", reg.admin!.password, reg.host]);
    expect(login.code, login.stderr).toBe(0);
    const ls = await regcli(["--authfile", file, "ls", `${reg.host}/private/app`]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim()).toBe("1.0");
    // Without --authfile the file is not a source; with it, config.json is not one.
    expect((await regcli(["ls", `${reg.host}/private/app`])).code).toBe(3);
    const docker = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: reg.admin! }) };
    const empty = join(await tempDir(), "empty.json");
    await writeFile(empty, "{}");
    expect((await regcli(["--authfile", empty, "ls", `${reg.host}/private/app`], { env: docker })).code).toBe(3);
    const missing = await regcli(["--authfile", join(empty, "..", "nope.json"), "ls", `${reg.host}/private/app`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--authfile .*nope\.json does not exist/);
  });

  it("reads the auth.json skopeo writes at $XDG_RUNTIME_DIR/containers/auth.json, after config.json", async () => {
    const runtime = await tempDir();
    const home = await tempDir();
    const login = await skopeo(["login", "--tls-verify=false", "-u", reg.admin!.username, "-p", reg.admin!.password, reg.host], { env: { XDG_RUNTIME_DIR: runtime, HOME: home, REGISTRY_AUTH_FILE: "" } });
    expect(login.code, login.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(runtime, "containers", "auth.json"), "utf8")).auths[reg.host]).toBeDefined();
    const ls = await regcli(["ls", `${reg.host}/private/app`], { env: { XDG_RUNTIME_DIR: runtime } });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim()).toBe("1.0");
    // Docker's config.json comes first: a wrong login there is what regcli uses.
    const wrong = { DOCKER_CONFIG: await dockerConfigDir({ [reg.host]: { username: "alice", password: "stale" } }), XDG_RUNTIME_DIR: runtime };
    expect((await regcli(["ls", `${reg.host}/private/app`], { env: wrong })).code).toBe(3);
  });

  it("reads ~/.config/containers/auth.json (XDG_CONFIG_HOME)", async () => {
    const config = await tempDir();
    await mkdir(join(config, "containers"));
    const auth = Buffer.from(`${reg.admin!.username}:${reg.admin!.password}`).toString("base64");
    await writeFile(join(config, "containers", "auth.json"), JSON.stringify({ auths: { [reg.host]: { auth } } }));
    const ls = await regcli(["ls", `${reg.host}/private/app`], { env: { XDG_CONFIG_HOME: config } });
    expect(ls.code, ls.stderr).toBe(0);
  });

  it("regcli --authfile X login writes X (0600) for skopeo; $REGISTRY_AUTH_FILE likewise; logout removes", async () => {
    const file = join(await tempDir(), "auth.json");
    const login = await regcli(["--authfile", file, "login", reg.host, "-u", reg.admin!.username, "--password-stdin"], { input: reg.admin!.password });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain(`stored in ${file}`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const inspect = await skopeo(["inspect", "--raw", "--tls-verify=false", "--authfile", file, `docker://${reg.host}/private/app:1.0`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect((await regcli(["--authfile", file, "logout", reg.host])).code).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8")).auths[reg.host]).toBeUndefined();

    const envFile = join(await tempDir(), "env-auth.json");
    const env = { REGISTRY_AUTH_FILE: envFile };
    const viaEnv = await regcli(["login", reg.host, "-u", reg.admin!.username, "--password-stdin"], { env, input: reg.admin!.password });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(await readFile(envFile, "utf8")).auths[reg.host]).toBeDefined();
    const bySkopeo = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/private/app:1.0`], { env });
    expect(bySkopeo.code, bySkopeo.stderr).toBe(0);
    expect((await regcli(["ls", `${reg.host}/private/app`], { env })).code).toBe(0);
  });
});

describe("login on a terminal", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry("token");
  });
  afterAll(async () => reg?.stop());

  it("asks for Username and Password, the password without echo, and stores the login", async () => {
    const home = await tempDir();
    const { code, screen } = await onTerminal(["login", reg.host], [
      { after: "Username: ", type: `${reg.admin!.username}\r` },
      { after: "Password: ", type: `${reg.admin!.password}\r` },
    ], false, { DOCKER_CONFIG: home });
    expect(code, screen).toBe(0);
    expect(screen).toContain(`Username: ${reg.admin!.username}`);
    expect(screen).toMatch(/Login Succeeded/);
    expect(screen).not.toContain(reg.admin!.password);
    const config = JSON.parse(await readFile(join(home, "config.json"), "utf8"));
    expect(Buffer.from(config.auths[reg.host].auth, "base64").toString()).toBe(`${reg.admin!.username}:${reg.admin!.password}`);
  });

  it("with -u asks only for the password; a wrong one is exit 3 and stores nothing", async () => {
    const home = await tempDir();
    const { code, screen } = await onTerminal(["login", reg.host, "-u", reg.admin!.username], [{ after: "Password: ", type: "not-the-password\r" }], false, { DOCKER_CONFIG: home });
    expect(code, screen).toBe(3);
    expect(screen).not.toContain("Username:");
    expect(screen).not.toContain("not-the-password");
    await expect(stat(join(home, "config.json"))).rejects.toThrow();
  });

  it("-p works with docker's warning on stderr; off a terminal without a password it is a usage error", async () => {
    const dir = await tempDir();
    const r = await regcli(["login", reg.host, "-u", reg.admin!.username, "-p", reg.admin!.password], { env: { DOCKER_CONFIG: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    expect(r.stdout).toBe("");
    const none = await regcli(["login", reg.host, "-u", reg.admin!.username]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
    expect(none.stderr).toMatch(/--password-stdin/);
    const both = await regcli(["login", reg.host, "-u", "x", "-p", "y", "--password-stdin"], { input: "z" });
    expect(both.code).toBe(2);
  });
});

describe("per-side credentials (--src-creds, --dest-creds, --src-authfile, --dest-authfile)", () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let pa: FaultProxy;
  let pb: FaultProxy;
  // What each registry was sent as Authorization, seen by a spy rule on a proxy in front of it.
  const sent = new Map<FaultProxy, Set<string>>();
  const basic = (u: { username: string; password: string }) => `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}`;
  const spy = (proxy: FaultProxy) => {
    sent.set(proxy, new Set());
    proxy.rules = [{ when: (req) => (sent.get(proxy)!.add(String(req.headers.authorization ?? "none")), false), fault: { kind: "delay", ms: 0 } }];
  };
  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry("basic"), startRegistry("basic")]);
    [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
    spy(pa);
    spy(pb);
    await pushImage(a, "src/app", "1.0", await makeImage({ layers: 2, seed: "two-sides" }));
    await pushImage(a, "src/app", "2.0", await makeImage({ layers: 1, seed: "two-sides-2" }));
  });
  afterAll(async () => Promise.all([pa?.close(), pb?.close(), a?.stop(), b?.stop()]));
  const reset = () => [pa, pb].forEach((p) => sent.get(p)!.clear());
  const creds = (u: { username: string; password: string }) => `${u.username}:${u.password}`;

  it("copy sends each side's credentials only to its own registry", async () => {
    reset();
    const r = await regcli(["--plain-http", "--debug", "copy", "--src-creds", creds(a.admin!), "--dest-creds", creds(b.admin!), `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:1.0`]);
    expect(r.code, r.stderr).toBe(0);
    for (const secret of [a.admin!.password, b.admin!.password, basic(a.admin!).slice(6), basic(b.admin!).slice(6)]) expect(r.stdout + r.stderr).not.toContain(secret);
    expect([...sent.get(pa)!].filter((h) => h !== "none")).toEqual([basic(a.admin!)]);
    expect([...sent.get(pb)!].filter((h) => h !== "none")).toEqual([basic(b.admin!)]);
    // Swapped, each registry refuses the other's: exit 3, and still no credential crossed over.
    reset();
    const swapped = await regcli(["--plain-http", "copy", "--src-creds", creds(b.admin!), "--dest-creds", creds(a.admin!), `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:swap`]);
    expect(swapped.code).toBe(3);
    expect([...sent.get(pa)!].filter((h) => h !== "none")).toEqual([basic(b.admin!)]);
    expect(swapped.stderr).not.toContain(b.admin!.password);
  });

  it("stored credentials are not sent to the other side either, and --dest-authfile is the destination's only file", async () => {
    reset();
    const destFile = join(await tempDir(), "dest-auth.json");
    await writeFile(destFile, JSON.stringify({ auths: { [pb.host]: { auth: Buffer.from(creds(b.admin!)).toString("base64") } } }));
    // config.json holds the source's login, and (wrongly) a login for the destination that --dest-authfile replaces.
    const env = { DOCKER_CONFIG: await dockerConfigDir({ [pa.host]: a.admin!, [pb.host]: { username: "alice", password: "from-config" } }) };
    const r = await regcli(["--plain-http", "copy", "--dest-authfile", destFile, `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:authfile`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect([...sent.get(pa)!].filter((h) => h !== "none")).toEqual([basic(a.admin!)]);
    expect([...sent.get(pb)!].filter((h) => h !== "none")).toEqual([basic(b.admin!)]);
  });

  it("sync takes them too", async () => {
    reset();
    const srcFile = join(await tempDir(), "src-auth.json");
    await writeFile(srcFile, JSON.stringify({ auths: { [pa.host]: { auth: Buffer.from(creds(a.admin!)).toString("base64") } } }));
    const r = await regcli(["--plain-http", "sync", "--src-authfile", srcFile, "--dest-creds", creds(b.admin!), `${pa.host}/src/app`, `${pb.host}/mirror/app`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/copied .*2\.0/);
    expect([...sent.get(pa)!].filter((h) => h !== "none")).toEqual([basic(a.admin!)]);
    expect([...sent.get(pb)!].filter((h) => h !== "none")).toEqual([basic(b.admin!)]);
  });

  it("a password missing from --src-creds: asked on a terminal without echo, a one-line usage error elsewhere", async () => {
    const off = await regcli(["--plain-http", "copy", "--src-creds", a.admin!.username, "--dest-creds", creds(b.admin!), `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:x`]);
    expect(off.code).toBe(2);
    expect(off.stderr.trim().split("\n")).toHaveLength(1);
    expect(off.stderr).toMatch(/--src-creds alice has no password .*give --src-creds alice:PASSWORD/);
    reset();
    const { code, screen } = await onTerminal(
      ["--plain-http", "--progress", "plain", "copy", "--src-creds", a.admin!.username, "--dest-creds", creds(b.admin!), `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:asked`],
      [{ after: "Password for alice (--src-creds): ", type: `${a.admin!.password}\r` }],
    );
    expect(code, screen).toBe(0);
    expect(screen).not.toContain(a.admin!.password);
    expect([...sent.get(pa)!].filter((h) => h !== "none")).toEqual([basic(a.admin!)]);
  });

  it("--src-creds needs a registry source; -u and --dest-creds together are refused", async () => {
    const layout = join(await tempDir(), "layout");
    const r = await regcli(["--plain-http", "copy", "--src-creds", "x:y", `oci:${layout}:1`, `${pb.host}/dst/app:1`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--src-creds is for a registry source/);
    const both = await regcli(["--plain-http", "-u", "x", "--password-stdin", "copy", "--dest-creds", "x:y", `${pa.host}/src/app:1.0`, `${pb.host}/dst/app:1`], { input: "pw" });
    expect(both.code).toBe(2);
  });
});
