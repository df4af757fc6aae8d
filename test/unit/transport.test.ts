import { describe, expect, it } from "vitest";
import { retryAfterMs } from "../../src/transport/http.js";
import { humanDuration } from "../../src/util/duration.js";
import { isLow, readRateLimit } from "../../src/registry/ratelimit.js";
import { redactHeaders, redactUrl } from "../../src/transport/redact.js";
import { isPlainHttpServerError, isTransientNetworkError, networkError, strayNetworkError } from "../../src/transport/errors.js";
import { findHostCertDir, readCertDir } from "../../src/transport/certs.js";
import { loadSettings } from "../../src/config/settings.js";
import { loadRegistryRules } from "../../src/config/registries-conf.js";
import { findRule, rewrite } from "../../src/registry/rules.js";
import { normalizeRegistryName } from "../../src/reference/registry-name.js";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

describe("Retry-After", () => {
  it("reads seconds and HTTP dates (the cap is the caller's: a longer wait is refused, not shortened)", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs("0")).toBe(0);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:10 GMT", now)).toBe(10_000);
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:00 GMT", now + 5000)).toBe(0);
    expect(retryAfterMs("99999")).toBe(99_999_000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe("Docker Hub rate-limit headers", () => {
  const res = (headers: Record<string, string>) => ({ header: (name: string) => headers[name] });
  it("reads limit, remaining, window and source; nothing without ratelimit-remaining", () => {
    const rl = readRateLimit(res({ "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600", "docker-ratelimit-source": "192.0.2.1" }));
    expect(rl).toEqual({
      limit: 100,
      remaining: 76,
      window: 21600,
      source: "192.0.2.1",
      headers: { "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600", "docker-ratelimit-source": "192.0.2.1" },
    });
    expect(readRateLimit(res({ "ratelimit-limit": "100;w=21600" }))).toBeUndefined();
    expect(readRateLimit(res({ "ratelimit-remaining": "junk" }))).toBeUndefined();
    expect(readRateLimit(res({ "ratelimit-remaining": "3" }))).toMatchObject({ remaining: 3, limit: undefined, window: undefined });
  });

  it("is low at 10% of the limit or less, or 10 left when no limit is sent", () => {
    const rl = (remaining: number, limit?: number) => ({ remaining, limit, window: 60, source: undefined, headers: {} });
    expect(isLow(rl(10, 100))).toBe(true);
    expect(isLow(rl(11, 100))).toBe(false);
    expect(isLow(rl(199, 2000))).toBe(true);
    expect(isLow(rl(10))).toBe(true);
    expect(isLow(rl(11))).toBe(false);
  });

  it("durations read as people say them", () => {
    expect(humanDuration(1500)).toBe("1.5 s");
    expect(humanDuration(60_000)).toBe("60 s");
    expect(humanDuration(3_600_000)).toBe("60 min");
    expect(humanDuration(21_600_000)).toBe("6 h");
  });
});

describe("redaction", () => {
  it("never shows credentials in headers", () => {
    const out = redactHeaders({ Authorization: "Bearer abc.def.ghi", "proxy-authorization": "Basic dXNlcjpwdw==", accept: "x" });
    expect(out).toEqual({ Authorization: "Bearer [redacted]", "proxy-authorization": "Basic [redacted]", accept: "x" });
  });

  it("hides tokens in URLs and userinfo", () => {
    expect(redactUrl("https://u:p@reg.io/v2/?access_token=SECRET&n=1")).toBe("https://redacted@reg.io/v2/?access_token=[redacted]&n=1");
    expect(redactUrl("https://reg.io/upload?_state=abc&digest=sha256:1")).not.toContain("abc");
  });
});

describe("network errors", () => {
  const url = new URL("https://reg.example:5000/v2/");
  it.each([
    ["ECONNREFUSED", /connection refused by reg.example:5000/],
    ["ENOTFOUND", /cannot resolve host reg.example/],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", /not trusted.*--ca-file/],
    ["UND_ERR_CONNECT_TIMEOUT", /timed out/],
    ["ECONNRESET", /reset/],
  ])("%s becomes one clear line", (code, pattern) => {
    const e = Object.assign(new Error("boom"), { code });
    expect(networkError(e, url).toLine()).toMatch(pattern);
    expect(networkError(e, url).exitCode).toBe(5);
  });

  it("a TLS alert about the client certificate (TLS 1.3 sends it after the handshake) is an auth error, never retried", () => {
    const e = Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET", cause: Object.assign(new Error("alert"), { code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" }) });
    expect(networkError(e, url).exitCode).toBe(3);
    expect(networkError(e, url).toLine()).toMatch(/reg.example:5000 requires a TLS client certificate .*certs\.d\/reg.example:5000\//);
    expect(networkError(e, url, "/c/client.cert").toLine()).toMatch(/refused the TLS client certificate \/c\/client.cert/);
    expect(isTransientNetworkError(e)).toBe(false);
  });

  it("recognizes a plain-HTTP server met with TLS", () => {
    expect(isPlainHttpServerError(Object.assign(new Error("x"), { code: "EPROTO" }))).toBe(true);
    expect(isPlainHttpServerError(new Error("write EPROTO ... wrong version number"))).toBe(true);
    expect(isPlainHttpServerError(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBe(false);
  });
});

describe("certs.d", () => {
  it("the first root with a HOST:PORT directory is the host's, the others are not merged in; only *.crt are CAs", async () => {
    const base = await mkdtemp(join(tmpdir(), "regcli-certsd-"));
    const roots = ["home", "etc-containers", "etc-docker"].map((r) => join(base, r));
    await mkdir(join(roots[1]!, "reg.example:5000"), { recursive: true });
    await mkdir(join(roots[2]!, "reg.example:5000"), { recursive: true });
    await mkdir(join(roots[2]!, "other.example"), { recursive: true });
    await writeFile(join(roots[1]!, "reg.example:5000", "ca.crt"), "CA ONE");
    await writeFile(join(roots[1]!, "reg.example:5000", "notes.pem"), "not a certificate of certs.d");
    expect(findHostCertDir("reg.example:5000", roots)).toBe(join(roots[1]!, "reg.example:5000"));
    expect(findHostCertDir("other.example", roots)).toBe(join(roots[2]!, "other.example"));
    expect(findHostCertDir("reg.example", roots)).toBeUndefined();
    expect(readCertDir(join(roots[1]!, "reg.example:5000"))).toEqual({ dir: join(roots[1]!, "reg.example:5000"), ca: ["CA ONE"] });
    // An empty directory configures nothing; a missing one is an error only when named by --cert-dir.
    expect(readCertDir(join(roots[2]!, "other.example"))).toBeUndefined();
    expect(readCertDir(join(base, "nope"))).toBeUndefined();
    expect(() => readCertDir(join(base, "nope"), true)).toThrow(/--cert-dir .*nope is not a directory/);
  });
});

describe("settings", () => {
  it("reads mirrors from the config file; the environment variable wins", async () => {
    const dir = await mkdtemp(join(tmpdir(), "regcli-settings-"));
    const file = join(dir, "config.json");
    await writeFile(file, JSON.stringify({ "registry-mirrors": ["https://m1.example"], "insecure-registries": ["reg.lan:5000"] }));
    expect(await loadSettings({ REGCLI_CONFIG: file })).toEqual({ "registry-mirrors": ["https://m1.example"], "insecure-registries": ["reg.lan:5000"] });
    expect((await loadSettings({ REGCLI_CONFIG: file, REGCLI_REGISTRY_MIRRORS: "http://a:1, http://b:2" }))["registry-mirrors"]).toEqual(["http://a:1", "http://b:2"]);
    expect(await loadSettings({ REGCLI_CONFIG: join(dir, "missing.json") })).toEqual({ "registry-mirrors": [], "insecure-registries": [] });
    await writeFile(file, "{oops");
    await expect(loadSettings({ REGCLI_CONFIG: file })).rejects.toThrow(/invalid JSON/);
    await writeFile(file, JSON.stringify({ "registry-mirrors": "https://m1" }));
    await expect(loadSettings({ REGCLI_CONFIG: file })).rejects.toThrow(/list of strings/);
    await writeFile(file, JSON.stringify({ "insecure-registry": ["reg.lan:5000"] }));
    await expect(loadSettings({ REGCLI_CONFIG: file })).rejects.toThrow(/unknown key "insecure-registry" in .*config\.json/);
  });
});

describe("registries.conf", () => {
  async function files(main: string, dropIns: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
    const dir = await mkdtemp(join(tmpdir(), "regcli-regconf-"));
    await writeFile(join(dir, "registries.conf"), main);
    await mkdir(join(dir, "d"));
    for (const [name, text] of Object.entries(dropIns)) await writeFile(join(dir, "d", name), text);
    return { CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"), CONTAINERS_REGISTRIES_CONF_DIR: join(dir, "d"), HOME: dir };
  }

  it("matches the longest prefix at a name boundary, wildcards on subdomains, and renames by location", async () => {
    const env = await files(`
[[registry]]
prefix = "example.com"
location = "example.com"
insecure = true
[[registry]]
prefix = "example.com/team"
location = "mirror.lan:5000/cache/team"
[[registry]]
prefix = "*.corp.example"
blocked = true
`);
    const rules = await loadRegistryRules(env);
    expect(findRule(rules, "example.com/app")?.insecure).toBe(true);
    expect(findRule(rules, "example.com/teams/app")?.prefix).toBe("example.com");
    const team = findRule(rules, "example.com/team/app")!;
    expect(rewrite("example.com/team/app", team, team.location)).toEqual({ registry: "mirror.lan:5000", repository: "cache/team/app" });
    expect(findRule(rules, "reg.corp.example:5000/app")?.blocked).toBe(true);
    expect(findRule(rules, "corp.example/app")).toBeUndefined();
    expect(findRule(rules, "example.community/app")).toBeUndefined();
  });

  it("reads the v1 format in the main file; a later drop-in replaces an entry whole; the named file must exist", async () => {
    const env = await files(`[registries.insecure]\nregistries = ["a.lan"]\n[registries.block]\nregistries = ["b.lan"]\n`, {
      "10-a.conf": `[[registry]]\nlocation = "a.lan"\n[[registry.mirror]]\nlocation = "m.lan"\n`,
      "20-ignored.txt": "not toml",
    });
    const rules = await loadRegistryRules(env);
    expect(findRule(rules, "b.lan/x")?.blocked).toBe(true);
    expect(findRule(rules, "a.lan/x")).toMatchObject({ insecure: false, mirrors: [{ location: "m.lan", insecure: false, use: "all" }] });
    await expect(loadRegistryRules({ ...env, CONTAINERS_REGISTRIES_CONF: "/nonexistent/registries.conf" })).rejects.toThrow(/cannot read \/nonexistent\/registries.conf \(named by CONTAINERS_REGISTRIES_CONF\)/);
    await expect(loadRegistryRules(await files(`[[registry]]\nlocation = "https://x.lan"\n`))).rejects.toThrow(/without http/);
  });
});

describe("registries.conf files without registry tables", () => {
  it("are not parsed: podman's shortnames.conf aliases, comments and search registries give no rules and no TOML errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "regcli-regconf-"));
    await writeFile(join(dir, "registries.conf"), `# comments only\nunqualified-search-registries = ["docker.io"]\n`);
    await mkdir(join(dir, "d"));
    // An alias table with a line TOML refuses: were the file parsed, loading would fail.
    await writeFile(join(dir, "d", "000-shortnames.conf"), `[aliases]\n  "busybox" = "docker.io/library/busybox"\n  "broken = \n`);
    const env = { CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"), CONTAINERS_REGISTRIES_CONF_DIR: join(dir, "d"), HOME: dir };
    expect(await loadRegistryRules(env)).toEqual([]);
    // Any form of a registry table or key is parsed, and its errors reported.
    for (const text of [`[[registry]]\nlocation = \n`, `[[ registry.mirror ]]\nx = \n`, `[registries.insecure]\nregistries = [\n`, `registry = [ \n`, `'registry' = \n`]) {
      await writeFile(join(dir, "d", "000-shortnames.conf"), text);
      await expect(loadRegistryRules(env), text).rejects.toThrow(/invalid TOML in .*000-shortnames\.conf:/);
    }
    // A rule behind a byte-order mark, or under a key spelled with escapes, is read (the review found both skipped).
    for (const text of ["\uFEFF[[registry]]\nlocation = \"x.io\"\nblocked = true\n", '[["regis\\u0074ry"]]\nlocation = "x.io"\nblocked = true\n']) {
      await writeFile(join(dir, "d", "000-shortnames.conf"), text);
      expect(findRule(await loadRegistryRules(env), "x.io/app")?.blocked, text).toBe(true);
    }
  });
});

describe("registry names for login", () => {
  it.each([
    ["docker.io", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["https://index.docker.io/v1/", "docker.io"],
    ["registry-1.docker.io", "registry-1.docker.io"],
    ["registry.hub.docker.com", "registry.hub.docker.com"],
    ["localhost:5000", "localhost:5000"],
    ["http://127.0.0.1:5000/", "127.0.0.1:5000"],
    ["[::1]:5000", "[::1]:5000"],
    ["Reg.Example.com", "Reg.Example.com"],
  ])("%s -> %s", (input, expected) => expect(normalizeRegistryName(input)).toBe(expected));

  it.each(["", "bad host", "-bad.example", "https://"])("refuses %j", (input) => expect(() => normalizeRegistryName(input)).toThrow(/not a registry host/));
});

describe("stray network errors (the CLI's last resort)", () => {
  const withCode = (message: string, code: string, cause?: unknown) => Object.assign(new Error(message, { cause }), { code });
  it.each([
    ["other side closed", "UND_ERR_SOCKET"],
    ["read ECONNRESET", "ECONNRESET"],
    ["Body Timeout Error", "UND_ERR_BODY_TIMEOUT"],
  ])("%s (%s) is a network error, exit 5", (message, code) => {
    const e = strayNetworkError(withCode(message, code));
    expect(e?.kind).toBe("network");
    expect(e?.exitCode).toBe(5);
    expect(e?.message).toContain(message);
  });
  it("a socket error wrapping its cause keeps both messages", () => {
    const e = strayNetworkError(withCode("terminated", "UND_ERR_SOCKET", withCode("read ECONNRESET", "ECONNRESET")));
    expect(e?.message).toBe("network failure: terminated: read ECONNRESET");
  });
  it.each([new Error("boom"), new TypeError("x is not a function"), Object.assign(new Error("nope"), { code: "ERR_INVALID_ARG_TYPE" }), "text"])(
    "leaves %s alone (an internal error stays one)",
    (err) => expect(strayNetworkError(err)).toBeUndefined(),
  );
});
