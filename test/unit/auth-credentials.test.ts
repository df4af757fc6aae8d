// Docker-compatible credential sources, with real credential-helper programs on a temporary PATH.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { credentialFiles, credentialKey, eraseCredential, getCredential, loginFile, storeCredential } from "../../src/auth/credentials.js";
import { RegcliError } from "../../src/errors.js";

let dir: string;
let bin: string;
let store: string;
let env: NodeJS.ProcessEnv;
const b64 = (s: string) => Buffer.from(s).toString("base64");

// A docker-credential-testhelper implementing get/store/erase against a JSON file, as real helpers do.
const HELPER = `#!/usr/bin/env node
const fs = require("fs");
const file = process.env.HELPER_STORE;
const action = process.argv[2];
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const db = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  if (action === "get") {
    const e = db[input.trim()];
    if (!e) { process.stdout.write("credentials not found in native keychain"); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: input.trim(), Username: e.Username, Secret: e.Secret }));
  } else if (action === "store") {
    const e = JSON.parse(input); db[e.ServerURL] = { Username: e.Username, Secret: e.Secret };
    fs.writeFileSync(file, JSON.stringify(db));
  } else if (action === "erase") {
    if (!db[input.trim()]) { process.stdout.write("credentials not found in native keychain"); process.exit(1); }
    delete db[input.trim()]; fs.writeFileSync(file, JSON.stringify(db));
  }
});
`;

async function writeConfig(config: unknown): Promise<void> {
  await writeFile(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "regcli-cred-"));
  bin = await mkdtemp(join(tmpdir(), "regcli-bin-"));
  store = join(bin, "store.json");
  await writeFile(join(bin, "docker-credential-testhelper"), HELPER);
  await chmod(join(bin, "docker-credential-testhelper"), 0o755);
  await writeFile(join(bin, "docker-credential-broken"), "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n");
  await chmod(join(bin, "docker-credential-broken"), 0o755);
  // podman's auth.json locations under the test's directory too: never the developer's.
  env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, HELPER_STORE: store, XDG_RUNTIME_DIR: join(dir, "run"), XDG_CONFIG_HOME: join(dir, "cfg"), REGISTRY_AUTH_FILE: undefined };
});

const opts = () => ({ configDir: dir, env });

describe("reading config.json", () => {
  it("missing file means no credentials", async () => {
    expect(await getCredential("reg.io", opts())).toBeUndefined();
  });

  it("decodes auth (splitting at the first colon)", async () => {
    await writeConfig({ auths: { "reg.io": { auth: b64("user:pa:ss") } } });
    expect(await getCredential("reg.io", opts())).toEqual({ username: "user", password: "pa:ss" });
  });

  it("reads username/password and identitytoken entries", async () => {
    await writeConfig({ auths: { "a.io": { username: "u", password: "p" }, "b.io": { identitytoken: "refresh-xyz" } } });
    expect(await getCredential("a.io", opts())).toEqual({ username: "u", password: "p" });
    expect((await getCredential("b.io", opts()))?.identityToken).toBe("refresh-xyz");
  });

  it("matches keys written with a scheme or path, by host and port", async () => {
    await writeConfig({ auths: { "https://reg.io:5000/v2/": { auth: b64("u:p") } } });
    expect(await getCredential("reg.io:5000", opts())).toEqual({ username: "u", password: "p" });
    expect(await getCredential("reg.io", opts())).toBeUndefined();
  });

  it("uses Docker Hub's key for docker.io; registry-1.docker.io is another registry", async () => {
    expect(credentialKey("docker.io")).toBe("https://index.docker.io/v1/");
    await writeConfig({ auths: { "https://index.docker.io/v1/": { auth: b64("hub:pw") } } });
    expect(await getCredential("docker.io", opts())).toEqual({ username: "hub", password: "pw" });
    await writeConfig({ auths: { "registry-1.docker.io": { auth: b64("hub2:pw") } } });
    expect(await getCredential("docker.io", opts())).toBeUndefined();
    expect((await getCredential("registry-1.docker.io", opts()))?.username).toBe("hub2");
  });

  it("a malformed auth is an auth error that does not print the secret", async () => {
    await writeConfig({ auths: { "reg.io": { auth: b64("no-colon-secret") } } });
    const err = await getCredential("reg.io", opts()).catch((e) => e);
    expect(err).toBeInstanceOf(RegcliError);
    expect(err.kind).toBe("auth");
    expect(err.message).toContain("reg.io");
    expect(err.message).not.toContain("no-colon-secret");
  });

  it("invalid JSON is a usage error naming the file", async () => {
    await writeConfig("{ nope");
    await expect(getCredential("reg.io", opts())).rejects.toThrow(/config\.json: invalid JSON/);
  });
});

describe("credential helpers", () => {
  it("store then get round-trips through credsStore, and config.json keeps no secret", async () => {
    await writeConfig({ credsStore: "testhelper", proxies: { default: {} } });
    const where = await storeCredential("reg.io", { username: "u", password: "secret" }, opts());
    expect(where.where).toBe("docker-credential-testhelper");
    expect(await getCredential("reg.io", opts())).toEqual({ username: "u", password: "secret" });
    expect(await readFile(join(dir, "config.json"), "utf8")).not.toContain("secret");
    expect(JSON.parse(await readFile(store, "utf8"))["reg.io"]).toEqual({ Username: "u", Secret: "secret" });
  });

  it("credHelpers for a registry win over credsStore", async () => {
    await writeConfig({ credsStore: "broken", credHelpers: { "reg.io": "testhelper" } });
    await storeCredential("reg.io", { username: "u", password: "p" }, opts());
    expect(await getCredential("reg.io", opts())).toEqual({ username: "u", password: "p" });
    await expect(getCredential("other.io", opts())).rejects.toThrow(/docker-credential-broken failed for other.io: keychain is locked/);
  });

  it("'credentials not found' means none, not an error", async () => {
    await writeConfig({ credsStore: "testhelper" });
    expect(await getCredential("reg.io", opts())).toBeUndefined();
  });

  it("identity tokens travel as Username <token>", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("reg.io", { identityToken: "refresh-abc" }, opts());
    expect(JSON.parse(await readFile(store, "utf8"))["reg.io"].Username).toBe("<token>");
    expect(await getCredential("reg.io", opts())).toEqual({ identityToken: "refresh-abc" });
  });

  it("erase goes through the helper", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("reg.io", { username: "u", password: "p" }, opts());
    expect(await eraseCredential("reg.io", opts())).toBe(true);
    expect(await getCredential("reg.io", opts())).toBeUndefined();
    expect(await eraseCredential("reg.io", opts())).toBe(false);
  });

  it.each(["../evil", "a/b", "a\\b", "x y"])("refuses helper name %j", async (name) => {
    await writeConfig({ credsStore: name });
    const err = await getCredential("reg.io", opts()).catch((e) => e);
    expect(err).toBeInstanceOf(RegcliError);
    expect(err.message).toMatch(/refusing credential helper name/);
  });

  it("a helper missing from PATH is a clear auth error", async () => {
    await writeConfig({ credsStore: "nonexistent" });
    await expect(getCredential("reg.io", opts())).rejects.toThrow(/docker-credential-nonexistent cannot run: not found on PATH/);
  });
});

describe("storing in config.json", () => {
  it("writes mode 0600 atomically and keeps every other field", async () => {
    await writeConfig({ auths: { "keep.io": { auth: b64("k:v") } }, proxies: { default: { httpProxy: "http://p" } }, credHelpers: {} });
    await storeCredential("reg.io", { username: "u", password: "p" }, opts());
    const file = join(dir, "config.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const config = JSON.parse(await readFile(file, "utf8"));
    expect(config.proxies).toEqual({ default: { httpProxy: "http://p" } });
    expect(config.auths["keep.io"]).toEqual({ auth: b64("k:v") });
    expect(config.auths["reg.io"]).toEqual({ auth: b64("u:p") });
  });

  it("creates the directory and file when missing", async () => {
    const nested = join(dir, "new", "docker");
    await storeCredential("docker.io", { username: "hub", password: "pw" }, { configDir: nested, env });
    const config = JSON.parse(await readFile(join(nested, "config.json"), "utf8"));
    expect(config.auths["https://index.docker.io/v1/"]).toEqual({ auth: b64("hub:pw") });
    expect((await stat(join(nested, "config.json"))).mode & 0o777).toBe(0o600);
  });

  it("replaces an old entry spelled differently, and erase removes it", async () => {
    await writeConfig({ auths: { "https://reg.io/": { auth: b64("old:old") } } });
    await storeCredential("reg.io", { username: "new", password: "new" }, opts());
    let config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    expect(Object.keys(config.auths)).toEqual(["reg.io"]);
    expect(await eraseCredential("reg.io", opts())).toBe(true);
    config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    expect(config.auths).toEqual({});
    expect(await eraseCredential("reg.io", opts())).toBe(false);
  });
});

describe("podman/skopeo auth.json beside config.json", () => {
  const authJson = (user: string) => JSON.stringify({ auths: { "reg.io": { auth: b64(`${user}:pw`) } } });
  async function put(path: string, text: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }

  it("reads REGISTRY_AUTH_FILE, config.json, $XDG_RUNTIME_DIR/containers, ~/.config/containers in that order", async () => {
    const files = {
      env: join(dir, "env-auth.json"),
      docker: join(dir, "config.json"),
      runtime: join(dir, "run", "containers", "auth.json"),
      config: join(dir, "cfg", "containers", "auth.json"),
    };
    const all = { ...opts(), env: { ...env, REGISTRY_AUTH_FILE: files.env } };
    expect(credentialFiles(all)).toEqual([files.env, files.docker, files.runtime, files.config]);
    for (const [name, path] of Object.entries(files)) await put(path, authJson(name));
    for (const name of Object.keys(files)) {
      expect((await getCredential("reg.io", all))?.username).toBe(name);
      await rm(files[name as keyof typeof files]);
    }
    expect(await getCredential("reg.io", all)).toBeUndefined();
  });

  it("~/.config/containers when XDG_CONFIG_HOME is unset, and nothing from XDG_RUNTIME_DIR when that is unset", () => {
    const bare = { configDir: dir, env: { HOME: "/home/u" } };
    expect(credentialFiles(bare)).toEqual([join(dir, "config.json"), "/home/u/.config/containers/auth.json"]);
  });

  it("a later file is asked only when the earlier ones have nothing for the registry", async () => {
    await writeConfig({ auths: { "other.io": { auth: b64("d:pw") } } });
    await put(join(dir, "run", "containers", "auth.json"), authJson("podman"));
    expect((await getCredential("reg.io", opts()))?.username).toBe("podman");
    expect((await getCredential("other.io", opts()))?.username).toBe("d");
  });

  it("an auth.json's credHelpers and credsStore are honoured, a helper's 'not found' goes on to the next file", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await put(join(dir, "cfg", "containers", "auth.json"), JSON.stringify({ credHelpers: { "reg.io": "testhelper" } }));
    expect(await getCredential("reg.io", opts())).toBeUndefined();
    await writeFile(store, JSON.stringify({ "reg.io": { Username: "kc", Secret: "s" } }));
    expect(await getCredential("reg.io", opts())).toEqual({ username: "kc", password: "s" });
  });

  it("--authfile is the only file read, and the one login writes", async () => {
    await writeConfig(authJson("docker"));
    const authFile = join(dir, "given.json");
    const given = { ...opts(), authFile };
    expect(credentialFiles(given)).toEqual([authFile]);
    await expect(getCredential("reg.io", given)).rejects.toThrow(/--authfile .*given\.json does not exist/);
    await writeFile(authFile, JSON.stringify({ auths: {} }));
    expect(await getCredential("reg.io", given)).toBeUndefined();
    expect(loginFile(given)).toBe(authFile);
    expect((await storeCredential("reg.io", { username: "u", password: "p" }, given)).where).toBe(authFile);
    expect(JSON.parse(await readFile(authFile, "utf8")).auths["reg.io"]).toEqual({ auth: b64("u:p") });
    expect((await getCredential("reg.io", opts()))?.username).toBe("docker");
    expect(await eraseCredential("reg.io", given)).toBe(true);
    expect((await getCredential("reg.io", opts()))?.username).toBe("docker");
  });

  it("login writes $REGISTRY_AUTH_FILE when set (read first, so it takes effect), else config.json", async () => {
    expect(loginFile(opts())).toBe(join(dir, "config.json"));
    const envFile = join(dir, "env-auth.json");
    const withEnv = { ...opts(), env: { ...env, REGISTRY_AUTH_FILE: envFile } };
    await writeConfig(authJson("stale"));
    expect(loginFile(withEnv)).toBe(envFile);
    await storeCredential("reg.io", { username: "fresh", password: "p" }, withEnv);
    expect((await getCredential("reg.io", withEnv))?.username).toBe("fresh");
  });

  it("logout without --authfile removes the registry from every file read, so none is left to use", async () => {
    await writeConfig(authJson("docker"));
    await put(join(dir, "run", "containers", "auth.json"), JSON.stringify({ auths: { "reg.io": { auth: b64("p:pw") }, "keep.io": { auth: b64("k:pw") } } }));
    expect(await eraseCredential("reg.io", opts())).toBe(true);
    expect(await getCredential("reg.io", opts())).toBeUndefined();
    expect((await getCredential("keep.io", opts()))?.username).toBe("k");
  });
});
