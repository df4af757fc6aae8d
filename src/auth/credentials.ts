import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { RegcliError } from "../errors.js";

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token ("identitytoken" in config.json), exchanged at the token service. */
  identityToken?: string;
}

export interface CredentialOptions {
  /** Directory holding config.json (default: $DOCKER_CONFIG or ~/.docker). */
  configDir?: string;
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [other: string]: unknown;
}

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const HELPER_TIMEOUT_MS = 30_000;
const TOKEN_USERNAME = "<token>";

export function dockerConfigPath(opts: CredentialOptions = {}): string {
  const env = opts.env ?? process.env;
  const dir = opts.configDir ?? env.DOCKER_CONFIG ?? join(homedir(), ".docker");
  return join(dir, "config.json");
}

/** The key docker uses for a registry in config.json and with credential helpers. */
export function credentialKey(registry: string): string {
  return DOCKER_HUB_HOSTS.has(registry) ? DOCKER_HUB_KEY : registry;
}

/** host[:port] of a config.json key that may carry a scheme and a path. */
function hostOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0]!.toLowerCase();
}

function sameRegistry(key: string, registry: string): boolean {
  const host = hostOfKey(key);
  if (DOCKER_HUB_HOSTS.has(registry)) return DOCKER_HUB_HOSTS.has(host);
  return host === registry.toLowerCase();
}

async function readConfig(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new RegcliError("usage", `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return parsed as DockerConfig;
  } catch {
    throw new RegcliError("usage", `cannot read ${path}: invalid JSON`);
  }
}

async function writeConfigAtomically(path: string, config: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.regcli-${process.pid}-${Date.now()}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(config, null, "\t")}\n`, { mode: 0o600 });
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw new RegcliError("general", `cannot write ${path}: ${(err as Error).message}`);
  }
}

function helperFor(config: DockerConfig | undefined, registry: string): string | undefined {
  if (!config) return undefined;
  const helpers = config.credHelpers ?? {};
  for (const [key, name] of Object.entries(helpers)) {
    if (sameRegistry(key, registry) && name) return name;
  }
  return config.credsStore || undefined;
}

function checkHelperName(name: string): void {
  if (name.includes("/") || name.includes("\\") || name.includes("..") || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RegcliError("usage", `refusing credential helper name "${name}": it must be a plain name, not a path`);
  }
}

interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runHelper(name: string, action: "get" | "store" | "erase", input: string, env: NodeJS.ProcessEnv): Promise<HelperResult> {
  checkHelperName(name);
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { env, stdio: ["pipe", "pipe", "pipe"], timeout: HELPER_TIMEOUT_MS });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("error", (err) => {
      const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found on PATH" : err.message;
      reject(new RegcliError("auth", `credential helper ${program} cannot run: ${why}`));
    });
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 200) ?? "";
}

function decodeAuth(entry: AuthEntry, path: string, registry: string): Credential {
  if (entry.identitytoken) return { username: entry.username, identityToken: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) {
      throw new RegcliError("auth", `malformed "auth" entry for ${registry} in ${path}`, {
        hint: `log in again with regcli login ${registry}`,
      });
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return {};
}

/** Credentials for a registry, from a credential helper or config.json; undefined when there are none. */
export async function getCredential(registry: string, opts: CredentialOptions = {}): Promise<Credential | undefined> {
  const env = opts.env ?? process.env;
  const path = dockerConfigPath(opts);
  const config = await readConfig(path);
  if (!config) return undefined;
  const helper = helperFor(config, registry);
  if (helper) {
    const result = await runHelper(helper, "get", credentialKey(registry), env);
    if (result.code !== 0) {
      if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
      throw new RegcliError(
        "auth",
        `credential helper docker-credential-${helper} failed for ${registry}: ${firstLine(result.stderr || result.stdout) || `exit ${result.code}`}`,
      );
    }
    let parsed: { Username?: unknown; Secret?: unknown };
    try {
      parsed = JSON.parse(result.stdout);
    } catch {
      throw new RegcliError("auth", `credential helper docker-credential-${helper} sent invalid output for ${registry}`);
    }
    const username = typeof parsed.Username === "string" ? parsed.Username : "";
    const secret = typeof parsed.Secret === "string" ? parsed.Secret : "";
    if (!secret) return undefined;
    return username === TOKEN_USERNAME ? { identityToken: secret } : { username, password: secret };
  }
  const auths = config.auths ?? {};
  const key = credentialKey(registry);
  const entry = auths[key] ?? Object.entries(auths).find(([k]) => sameRegistry(k, registry))?.[1];
  if (!entry || typeof entry !== "object") return undefined;
  const cred = decodeAuth(entry, path, registry);
  return cred.password !== undefined || cred.identityToken !== undefined ? cred : undefined;
}

/** Store credentials as docker does: the configured helper, else config.json (mode 0600). */
export async function storeCredential(registry: string, cred: Credential, opts: CredentialOptions = {}): Promise<{ where: string }> {
  const env = opts.env ?? process.env;
  const path = dockerConfigPath(opts);
  const config = (await readConfig(path)) ?? {};
  const key = credentialKey(registry);
  const helper = helperFor(config, registry);
  if (helper) {
    const payload = cred.identityToken
      ? { ServerURL: key, Username: TOKEN_USERNAME, Secret: cred.identityToken }
      : { ServerURL: key, Username: cred.username ?? "", Secret: cred.password ?? "" };
    const result = await runHelper(helper, "store", JSON.stringify(payload), env);
    if (result.code !== 0) {
      throw new RegcliError("auth", `credential helper docker-credential-${helper} could not store credentials for ${registry}: ${firstLine(result.stderr || result.stdout)}`);
    }
    return { where: `docker-credential-${helper}` };
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) if (k !== key && sameRegistry(k, registry)) delete auths[k];
  auths[key] = cred.identityToken
    ? { auth: Buffer.from(`${cred.username ?? TOKEN_USERNAME}:`).toString("base64"), identitytoken: cred.identityToken }
    : { auth: Buffer.from(`${cred.username ?? ""}:${cred.password ?? ""}`).toString("base64") };
  await writeConfigAtomically(path, { ...config, auths });
  return { where: path };
}

/** Remove stored credentials; true when something was removed. */
export async function eraseCredential(registry: string, opts: CredentialOptions = {}): Promise<boolean> {
  const env = opts.env ?? process.env;
  const path = dockerConfigPath(opts);
  const config = await readConfig(path);
  if (!config) return false;
  const helper = helperFor(config, registry);
  let removed = false;
  if (helper) {
    const result = await runHelper(helper, "erase", credentialKey(registry), env);
    if (result.code === 0) removed = true;
    else if (!/credentials not found/i.test(result.stdout + result.stderr)) {
      throw new RegcliError("auth", `credential helper docker-credential-${helper} could not erase credentials for ${registry}: ${firstLine(result.stderr || result.stdout)}`);
    }
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) {
    if (sameRegistry(k, registry)) {
      delete auths[k];
      removed = true;
    }
  }
  if (removed && !helper) await writeConfigAtomically(path, { ...config, auths });
  else if (helper && Object.keys(auths).length !== Object.keys(config.auths ?? {}).length) await writeConfigAtomically(path, { ...config, auths });
  return removed;
}
