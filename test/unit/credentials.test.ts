// Docker-compatible credential sources: a temporary config dir, and REAL credential helpers (POSIX shell
// scripts) on a temporary PATH, so store -> get -> erase round-trips through an actual helper process.
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { credentialKey, dockerConfigPath, eraseCredential, getCredential, storeCredential, type CredentialOptions } from "../../src/auth/credentials.js";
import { RegcliError } from "../../src/errors.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/**
 * docker-credential-testhelper: get/store/erase against $HELPER_STORE, a JSON-lines file holding the exact
 * {"ServerURL","Username","Secret"} objects it was given. Every call is logged (action + stdin for get/erase,
 * action + ServerURL for store) to $HELPER_LOG. Misses answer like docker-credential-helpers do.
 */
const TESTHELPER = `#!/bin/sh
store="$HELPER_STORE"
action="$1"
input=$(cat)
touch "$store"
case "$action" in
  get)
    echo "get $input" >> "$HELPER_LOG"
    line=$(grep -F "\\"ServerURL\\":\\"$input\\"," "$store" | tail -n 1)
    if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
    printf '%s\\n' "$line"
    ;;
  store)
    url=$(printf '%s' "$input" | sed -n 's/^{"ServerURL":"\\([^"]*\\)",.*/\\1/p')
    if [ -z "$url" ]; then echo "store: cannot parse payload" >&2; exit 1; fi
    echo "store $url" >> "$HELPER_LOG"
    grep -vF "\\"ServerURL\\":\\"$url\\"," "$store" > "$store.tmp"
    printf '%s\\n' "$input" >> "$store.tmp"
    mv "$store.tmp" "$store"
    ;;
  erase)
    echo "erase $input" >> "$HELPER_LOG"
    if ! grep -qF "\\"ServerURL\\":\\"$input\\"," "$store"; then echo "credentials not found in native keychain"; exit 1; fi
    grep -vF "\\"ServerURL\\":\\"$input\\"," "$store" > "$store.tmp"
    mv "$store.tmp" "$store"
    ;;
  *)
    echo "unknown action $action" >&2; exit 1
    ;;
esac
`;

/** Fails with a message on stderr (and noise after it). */
const BROKEN = `#!/bin/sh
cat > /dev/null
echo "keychain is locked" >&2
echo "second line" >&2
exit 3
`;

/** Reports errors on stdout, as the real docker-credential-helpers do. */
const STDOUT_ERR = `#!/bin/sh
cat > /dev/null
echo "error getting credentials - err: exit status 1, out: secret service unavailable"
exit 1
`;

/** Echoes what it was given into its error, to check that regcli masks the secret. */
const LEAKY = `#!/bin/sh
input=$(cat)
echo "cannot store $input" >&2
exit 1
`;

/** Prints something that is not JSON. */
const GARBAGE = `#!/bin/sh
cat > /dev/null
echo "hello"
`;

let dir: string;
let bin: string;
let storeFile: string;
let logFile: string;
let env: NodeJS.ProcessEnv;
let opts: CredentialOptions;

async function script(name: string, body: string): Promise<void> {
  const file = join(bin, `docker-credential-${name}`);
  await writeFile(file, body);
  await chmod(file, 0o755);
}

const configFile = () => join(dir, "config.json");
async function writeConfig(config: unknown): Promise<void> {
  await writeFile(configFile(), typeof config === "string" ? config : JSON.stringify(config, null, 2));
}
async function readConfigJson(): Promise<Record<string, any>> {
  return JSON.parse(await readFile(configFile(), "utf8"));
}
async function helperEntries(): Promise<Array<{ ServerURL: string; Username: string; Secret: string }>> {
  const text = await readFile(storeFile, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
const helperLog = async () => (await readFile(logFile, "utf8").catch(() => "")).split("\n").filter(Boolean);

async function failure(p: Promise<unknown>): Promise<RegcliError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegcliError);
  return err as RegcliError;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "regcli-cred-"));
  bin = await mkdtemp(join(tmpdir(), "regcli-bin-"));
  storeFile = join(bin, "store.jsonl");
  logFile = join(bin, "calls.log");
  await script("testhelper", TESTHELPER);
  await script("broken", BROKEN);
  await script("stdouterr", STDOUT_ERR);
  await script("leaky", LEAKY);
  await script("garbage", GARBAGE);
  env = { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, HELPER_STORE: storeFile, HELPER_LOG: logFile, XDG_CONFIG_HOME: dir };
  opts = { configDir: dir, env };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(bin, { recursive: true, force: true });
});

describe("dockerConfigPath and credentialKey", () => {
  it("configDir, then DOCKER_CONFIG, then ~/.docker", () => {
    expect(dockerConfigPath({ configDir: "/x", env: { DOCKER_CONFIG: "/y" } })).toBe(join("/x", "config.json"));
    expect(dockerConfigPath({ env: { DOCKER_CONFIG: "/y" } })).toBe(join("/y", "config.json"));
    expect(dockerConfigPath({ env: {} })).toBe(join(homedir(), ".docker", "config.json"));
  });

  it("uses the DOCKER_CONFIG of opts.env when reading", async () => {
    await writeConfig({ auths: { "reg.io": { auth: b64("u:p") } } });
    expect(await getCredential("reg.io", { env: { DOCKER_CONFIG: dir } })).toEqual({ username: "u", password: "p" });
  });

  it("maps Docker Hub to its legacy key and keeps other hosts as given", () => {
    expect(credentialKey("docker.io")).toBe("https://index.docker.io/v1/");
    expect(credentialKey("index.docker.io")).toBe("https://index.docker.io/v1/");
    expect(credentialKey("localhost:5000")).toBe("localhost:5000");
    expect(credentialKey("ghcr.io")).toBe("ghcr.io");
  });
});

describe("reading config.json auths", () => {
  it("a missing config file means no credentials, not an error", async () => {
    expect(await getCredential("reg.io", opts)).toBeUndefined();
  });

  it("a registry without an entry has no credentials", async () => {
    await writeConfig({ auths: { "other.io": { auth: b64("u:p") } } });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
  });

  it("decodes auth, splitting at the first colon", async () => {
    await writeConfig({ auths: { "reg.io": { auth: b64("user:pa:ss") } } });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "user", password: "pa:ss" });
  });

  it("reads username/password fields", async () => {
    await writeConfig({ auths: { "reg.io": { username: "u", password: "p" } } });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "u", password: "p" });
  });

  it("reads identitytoken, with or without the username docker writes beside it", async () => {
    await writeConfig({ auths: { "a.io": { identitytoken: "refresh-a" }, "b.io": { auth: b64("bob:"), identitytoken: "refresh-b" } } });
    expect(await getCredential("a.io", opts)).toEqual({ identityToken: "refresh-a" });
    expect(await getCredential("b.io", opts)).toEqual({ username: "bob", identityToken: "refresh-b" });
  });

  it("an empty entry (as docker leaves when a helper holds the secret) means none", async () => {
    await writeConfig({ auths: { "reg.io": {} } });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
  });

  it.each(["https://reg.io:5000", "http://reg.io:5000/v2/", "reg.io:5000/v1/", "HTTPS://REG.IO:5000/"])(
    "matches the key %j by host[:port]",
    async (key) => {
      await writeConfig({ auths: { [key]: { auth: b64("u:p") } } });
      expect(await getCredential("reg.io:5000", opts)).toEqual({ username: "u", password: "p" });
      expect(await getCredential("reg.io", opts)).toBeUndefined();
      expect(await getCredential("reg.io:5001", opts)).toBeUndefined();
    },
  );

  it("prefers the exact key over a spelling with a scheme", async () => {
    await writeConfig({ auths: { "https://reg.io": { auth: b64("old:x") }, "reg.io": { auth: b64("new:y") } } });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "new", password: "y" });
  });

  it.each(["https://index.docker.io/v1/", "index.docker.io", "docker.io"])(
    "finds Docker Hub credentials under %j",
    async (key) => {
      await writeConfig({ auths: { [key]: { auth: b64("hub:pw") } } });
      expect(await getCredential("docker.io", opts)).toEqual({ username: "hub", password: "pw" });
      expect(await getCredential("ghcr.io", opts)).toBeUndefined();
    },
  );

  it.each(["registry-1.docker.io", "https://registry-1.docker.io/v2/", "registry.hub.docker.com"])(
    "keeps %j apart from docker.io: another registry name, other credentials",
    async (key) => {
      await writeConfig({ auths: { [key]: { auth: b64("other:pw") } } });
      expect(await getCredential("docker.io", opts)).toBeUndefined();
      expect(await getCredential(key.replace(/^https:\/\//, "").split("/")[0]!, opts)).toEqual({ username: "other", password: "pw" });
      expect(credentialKey(key.replace(/^https:\/\//, "").split("/")[0]!)).not.toBe("https://index.docker.io/v1/");
    },
  );

  it.each([
    ["no colon", b64("no-colon-secret")],
    ["empty user", b64(":only-secret")],
    ["not base64", "%%%not-base64-secret%%%"],
    ["not a string", 12345],
  ])("a malformed auth (%s) is an auth error naming file and registry, never the secret", async (_name, auth) => {
    await writeConfig({ auths: { "reg.io": { auth } } });
    const err = await failure(getCredential("reg.io", opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toContain("reg.io");
    expect(err.message).toContain(configFile());
    expect(err.toLine()).not.toMatch(/secret|12345/);
    expect(err.toLine()).not.toContain(String(auth));
  });

  it("invalid JSON is a usage error naming the file", async () => {
    await writeConfig("{ nope");
    const err = await failure(getCredential("reg.io", opts));
    expect(err.kind).toBe("usage");
    expect(err.message).toBe(`cannot read ${configFile()}: invalid JSON`);
  });

  it("odd but valid shapes do not crash", async () => {
    await writeConfig({ auths: ["reg.io"], credHelpers: "nope", credsStore: 7 });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
    await writeConfig({ auths: { "reg.io": null, "x.io": "string" } });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
    expect(await getCredential("x.io", opts)).toBeUndefined();
  });
});

describe("credential helpers (real processes)", () => {
  it("store then get round-trips through credsStore; config.json keeps no secret", async () => {
    await writeConfig({ credsStore: "testhelper", proxies: { default: { httpProxy: "http://proxy:3128" } } });
    const before = await readFile(configFile(), "utf8");
    expect(await storeCredential("reg.io", { username: "u", password: "s3cret" }, opts)).toEqual({ where: "docker-credential-testhelper" });
    expect(await helperEntries()).toEqual([{ ServerURL: "reg.io", Username: "u", Secret: "s3cret" }]);
    expect(await getCredential("reg.io", opts)).toEqual({ username: "u", password: "s3cret" });
    expect(await readFile(configFile(), "utf8")).toBe(before);
    expect(await helperLog()).toEqual(["store reg.io", "get reg.io"]);
  });

  it("sends Docker Hub's legacy key as the server URL", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("docker.io", { username: "hub", password: "pw" }, opts);
    expect(await getCredential("docker.io", opts)).toEqual({ username: "hub", password: "pw" });
    expect(await helperLog()).toEqual(["store https://index.docker.io/v1/", "get https://index.docker.io/v1/"]);
  });

  it("identity tokens travel as Username <token>", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("reg.io", { username: "ignored", identityToken: "refresh-abc" }, opts);
    expect(await helperEntries()).toEqual([{ ServerURL: "reg.io", Username: "<token>", Secret: "refresh-abc" }]);
    expect(await getCredential("reg.io", opts)).toEqual({ identityToken: "refresh-abc" });
  });

  it("storing again replaces the helper's entry", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("reg.io", { username: "u", password: "one" }, opts);
    await storeCredential("reg.io", { username: "u", password: "two" }, opts);
    expect(await getCredential("reg.io", opts)).toEqual({ username: "u", password: "two" });
    expect(await helperEntries()).toHaveLength(1);
  });

  it("credHelpers for the registry win over credsStore, which serves the rest", async () => {
    await writeConfig({ credsStore: "broken", credHelpers: { "reg.io": "testhelper" } });
    expect((await storeCredential("reg.io", { username: "u", password: "p" }, opts)).where).toBe("docker-credential-testhelper");
    expect(await getCredential("reg.io", opts)).toEqual({ username: "u", password: "p" });
    const err = await failure(getCredential("other.io", opts));
    expect(err.message).toMatch(/docker-credential-broken/);
  });

  it("credHelpers match Docker Hub under its legacy key", async () => {
    await writeConfig({ credHelpers: { "https://index.docker.io/v1/": "testhelper" } });
    await storeCredential("docker.io", { username: "hub", password: "pw" }, opts);
    expect(await getCredential("docker.io", opts)).toEqual({ username: "hub", password: "pw" });
    expect(await helperEntries()).toEqual([{ ServerURL: "https://index.docker.io/v1/", Username: "hub", Secret: "pw" }]);
  });

  it("a helper outranks auths entries for the same registry", async () => {
    await writeConfig({ credsStore: "testhelper", auths: { "reg.io": { auth: b64("file:pw") } } });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
    await storeCredential("reg.io", { username: "helper", password: "pw2" }, opts);
    expect(await getCredential("reg.io", opts)).toEqual({ username: "helper", password: "pw2" });
  });

  it("auths are used when no helper applies", async () => {
    await writeConfig({ credHelpers: { "elsewhere.io": "testhelper" }, auths: { "reg.io": { auth: b64("file:pw") } } });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "file", password: "pw" });
    expect(await helperLog()).toEqual([]);
  });

  it("'credentials not found' means none, not an error", async () => {
    await writeConfig({ credsStore: "testhelper" });
    expect(await getCredential("reg.io", opts)).toBeUndefined();
    expect(await helperLog()).toEqual(["get reg.io"]);
  });

  it("a failing helper is an auth error with the first line of its stderr", async () => {
    await writeConfig({ credsStore: "broken" });
    const err = await failure(getCredential("reg.io", opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toBe("credential helper docker-credential-broken failed for reg.io: keychain is locked");
  });

  it("a helper reporting its error on stdout is quoted too", async () => {
    await writeConfig({ credsStore: "stdouterr" });
    const err = await failure(getCredential("reg.io", opts));
    expect(err.message).toMatch(/^credential helper docker-credential-stdouterr failed for reg\.io: error getting credentials/);
  });

  it("a helper printing something that is not JSON is an auth error", async () => {
    await writeConfig({ credsStore: "garbage" });
    const err = await failure(getCredential("reg.io", opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toMatch(/docker-credential-garbage failed for reg\.io/);
  });

  it("a failing store names the helper but masks the secret it echoed", async () => {
    await writeConfig({ credsStore: "leaky" });
    const err = await failure(storeCredential("reg.io", { username: "u", password: "hunter2-secret" }, opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toMatch(/docker-credential-leaky/);
    expect(err.toLine()).not.toContain("hunter2-secret");
    const err2 = await failure(storeCredential("reg.io", { identityToken: "refresh-token-xyz" }, opts));
    expect(err2.toLine()).not.toContain("refresh-token-xyz");
  });

  it("a helper missing from PATH is a clear auth error", async () => {
    await writeConfig({ credsStore: "nonexistent" });
    const err = await failure(getCredential("reg.io", opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toMatch(/docker-credential-nonexistent cannot run: not found on PATH/);
  });

  it.each(["../evil", "a/b", "a\\b", "..", "x..y", "/abs", "x y", "x;touch pwned"])("refuses the helper name %j", async (name) => {
    await writeConfig({ credsStore: name });
    for (const attempt of [
      () => getCredential("reg.io", opts),
      () => storeCredential("reg.io", { username: "u", password: "p" }, opts),
      () => eraseCredential("reg.io", opts),
    ]) {
      const err = await failure(attempt());
      expect(err.kind).toBe("usage");
      expect(err.message).toMatch(/refusing credential helper name/);
    }
    expect(await readdir(dir)).toEqual(["config.json"]);
    expect(await helperLog()).toEqual([]);
  });

  it("erase goes through the helper; erasing again reports nothing removed", async () => {
    await writeConfig({ credsStore: "testhelper" });
    await storeCredential("reg.io", { username: "u", password: "p" }, opts);
    await storeCredential("keep.io", { username: "k", password: "v" }, opts);
    expect(await eraseCredential("reg.io", opts)).toBe(true);
    expect(await getCredential("reg.io", opts)).toBeUndefined();
    expect(await eraseCredential("reg.io", opts)).toBe(false);
    expect(await getCredential("keep.io", opts)).toEqual({ username: "k", password: "v" });
    expect((await helperLog()).filter((l) => l.startsWith("erase"))).toEqual(["erase reg.io", "erase reg.io"]);
  });

  it("erase with a failing helper is an auth error", async () => {
    await writeConfig({ credsStore: "broken" });
    const err = await failure(eraseCredential("reg.io", opts));
    expect(err.kind).toBe("auth");
    expect(err.message).toMatch(/docker-credential-broken could not erase credentials for reg\.io: keychain is locked/);
  });
});

describe("storing in and erasing from config.json", () => {
  it("writes auth as base64(user:pass), mode 0600, preserving every other field", async () => {
    const original = {
      auths: { "keep.io": { auth: b64("k:v"), email: "k@example.com" } },
      proxies: { default: { httpProxy: "http://p:3128", noProxy: "localhost" } },
      credHelpers: { "elsewhere.io": "testhelper" },
      psFormat: "table {{.ID}}",
      experimental: "enabled",
    };
    await writeConfig(original);
    await chmod(configFile(), 0o644);
    expect(await storeCredential("reg.io", { username: "u", password: "p:w" }, opts)).toEqual({ where: configFile() });
    expect((await stat(configFile())).mode & 0o777).toBe(0o600);
    const config = await readConfigJson();
    expect(config).toEqual({ ...original, auths: { ...original.auths, "reg.io": { auth: b64("u:p:w") } } });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "u", password: "p:w" });
    expect(await readdir(dir)).toEqual(["config.json"]); // no temporary file left behind
  });

  it("stores an identity token as identitytoken", async () => {
    await storeCredential("reg.io", { username: "bob", identityToken: "refresh-1" }, opts);
    expect((await readConfigJson()).auths["reg.io"]).toEqual({ auth: b64("bob:"), identitytoken: "refresh-1" });
    expect(await getCredential("reg.io", opts)).toEqual({ username: "bob", identityToken: "refresh-1" });
    await storeCredential("other.io", { identityToken: "refresh-2" }, opts);
    expect((await readConfigJson()).auths["other.io"]).toEqual({ identitytoken: "refresh-2" });
    expect(await getCredential("other.io", opts)).toEqual({ identityToken: "refresh-2" });
  });

  it("creates the directory (0700) and the file when missing, keying Docker Hub by its legacy key", async () => {
    const nested = join(dir, "new", "docker");
    const where = await storeCredential("docker.io", { username: "hub", password: "pw" }, { configDir: nested, env });
    expect(where).toEqual({ where: join(nested, "config.json") });
    const file = join(nested, "config.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ auths: { "https://index.docker.io/v1/": { auth: b64("hub:pw") } } });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
  });

  it("replaces an older entry for the same host spelled with a scheme", async () => {
    await writeConfig({ auths: { "https://reg.io/": { auth: b64("old:old") }, "reg.io.evil": { auth: b64("x:y") } } });
    await storeCredential("reg.io", { username: "new", password: "new" }, opts);
    expect(Object.keys((await readConfigJson()).auths).sort()).toEqual(["reg.io", "reg.io.evil"]);
    expect(await getCredential("reg.io", opts)).toEqual({ username: "new", password: "new" });
  });

  it("follows a symlinked config.json instead of replacing the link", async () => {
    const real = join(dir, "dotfiles");
    await mkdir(real);
    await writeFile(join(real, "config.json"), JSON.stringify({ auths: {} }));
    await symlink(join(real, "config.json"), configFile());
    await storeCredential("reg.io", { username: "u", password: "p" }, opts);
    expect((await lstat(configFile())).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await readFile(join(real, "config.json"), "utf8")).auths["reg.io"]).toEqual({ auth: b64("u:p") });
  });

  it("refuses to overwrite a config.json that is not valid JSON", async () => {
    await writeConfig("{ broken");
    const err = await failure(storeCredential("reg.io", { username: "u", password: "p" }, opts));
    expect(err.kind).toBe("usage");
    expect(await readFile(configFile(), "utf8")).toBe("{ broken");
  });

  it("erase removes every spelling of the registry, keeps the rest, and stays 0600", async () => {
    await writeConfig({
      auths: { "reg.io": { auth: b64("a:b") }, "https://reg.io/v2/": { auth: b64("c:d") }, "keep.io": { auth: b64("k:v") } },
      proxies: { default: {} },
    });
    expect(await eraseCredential("reg.io", opts)).toBe(true);
    const config = await readConfigJson();
    expect(config).toEqual({ auths: { "keep.io": { auth: b64("k:v") } }, proxies: { default: {} } });
    expect((await stat(configFile())).mode & 0o777).toBe(0o600);
    expect(await eraseCredential("reg.io", opts)).toBe(false);
  });

  it("erase without a config file removes nothing and creates nothing", async () => {
    expect(await eraseCredential("reg.io", opts)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });

  it("erase for Docker Hub removes its aliases, not registry-1.docker.io", async () => {
    await writeConfig({ auths: { "https://index.docker.io/v1/": { auth: b64("a:b") }, "index.docker.io": { auth: b64("e:f") }, "registry-1.docker.io": { auth: b64("c:d") } } });
    expect(await eraseCredential("docker.io", opts)).toBe(true);
    expect((await readConfigJson()).auths).toEqual({ "registry-1.docker.io": { auth: b64("c:d") } });
  });
});
