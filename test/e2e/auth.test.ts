// Auth negotiation end to end: Basic and token registries, credentials from config.json, login/logout.
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerConfigDir, regcli, tempDir } from "../helpers/cli.js";
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
