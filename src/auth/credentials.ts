import { readFileSync } from "node:fs";
import { chmod, mkdir, open, realpath, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { localFileError, RegcliError } from "../errors.js";
import { childProcess, crypto } from "../util/builtins.js";

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token ("identitytoken" in config.json), exchanged at the token service. */
  identityToken?: string;
}

export interface CredentialOptions {
  /** Directory holding config.json (default: $DOCKER_CONFIG or ~/.docker). */
  configDir?: string;
  /** --authfile: the only file read, and the one login/logout write (config.json/auth.json format). */
  authFile?: string;
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  [other: string]: unknown;
}

interface DockerConfig {
  auths?: unknown;
  credsStore?: unknown;
  credHelpers?: unknown;
  [other: string]: unknown;
}

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
/** Names of docker.io in config.json keys; registry-1.docker.io and others are other registries, as in references. */
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io"]);
const HELPER_TIMEOUT_MS = 30_000;
const HELPER_MAX_OUTPUT = 1 << 20;
const TOKEN_USERNAME = "<token>";
const NOT_FOUND = /credentials not found/i;

const home = (env: NodeJS.ProcessEnv): string => env.HOME || homedir();

/** Path of Docker's config.json: opts.configDir, else $DOCKER_CONFIG, else ~/.docker. */
export function dockerConfigPath(opts: CredentialOptions = {}): string {
  const env = opts.env ?? process.env;
  const dir = opts.configDir || env.DOCKER_CONFIG || join(home(env), ".docker");
  return join(dir, "config.json");
}

/**
 * The files credentials are read from, first match wins: --authfile alone; else $REGISTRY_AUTH_FILE (where login
 * writes when it is set, so a fresh login is never shadowed), Docker's config.json, then podman/skopeo/buildah's
 * $XDG_RUNTIME_DIR/containers/auth.json and ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json.
 */
export function credentialFiles(opts: CredentialOptions = {}): string[] {
  if (opts.authFile) return [opts.authFile];
  const env = opts.env ?? process.env;
  const files = [env.REGISTRY_AUTH_FILE, dockerConfigPath(opts)];
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  files.push(join(env.XDG_CONFIG_HOME || join(home(env), ".config"), "containers", "auth.json"));
  return [...new Set(files.filter((f): f is string => !!f))];
}

/** The file login writes: --authfile, else $REGISTRY_AUTH_FILE, else Docker's config.json. */
export function loginFile(opts: CredentialOptions = {}): string {
  return opts.authFile || (opts.env ?? process.env).REGISTRY_AUTH_FILE || dockerConfigPath(opts);
}

/** The key docker uses for a registry in config.json and with credential helpers. */
export function credentialKey(registry: string): string {
  return DOCKER_HUB_HOSTS.has(registry.toLowerCase()) ? DOCKER_HUB_KEY : registry;
}

/** host[:port] of a config.json key that may carry a scheme and a path ("https://host:5000/v2/" -> "host:5000"). */
function hostOfKey(key: string): string {
  return key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

function sameRegistry(key: string, registry: string): boolean {
  const host = hostOfKey(key);
  const wanted = hostOfKey(registry);
  if (DOCKER_HUB_HOSTS.has(wanted)) return DOCKER_HUB_HOSTS.has(host);
  return host === wanted;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The auths map, or {} when config.json has none (or something that is not a map). */
function authsOf(config: DockerConfig): Record<string, unknown> {
  return isObject(config.auths) ? config.auths : {};
}

/** Exact key first, then any key naming the same host[:port] (with a scheme, a path, or a Docker Hub alias). */
function findKeyed<T>(map: Record<string, T>, registry: string): [string, T] | undefined {
  const key = credentialKey(registry);
  if (Object.hasOwn(map, key)) return [key, map[key]!];
  return Object.entries(map).find(([k]) => sameRegistry(k, registry));
}

async function readConfig(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new RegcliError("usage", `cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === "") return {}; // docker treats an empty file as an empty config
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RegcliError("usage", `cannot read ${path}: invalid JSON`);
  }
  if (!isObject(parsed)) throw new RegcliError("usage", `cannot read ${path}: invalid JSON (not an object)`);
  return parsed;
}

/**
 * Replace config.json atomically: a 0600 temporary file in the same directory, then rename. A symlinked
 * config.json (dotfile managers) is followed, as docker does, so the link survives.
 */
async function writeConfigAtomically(path: string, config: DockerConfig): Promise<void> {
  let target = path;
  try {
    target = await realpath(path);
  } catch {
    // missing: create it where asked
  }
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${crypto().randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(config, null, "\t")}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, 0o600); // in case the umask narrowed or the platform ignored the mode
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw localFileError(err, target) ?? new RegcliError("general", `cannot write ${target}: ${(err as Error).message}`, { cause: err });
  }
}

/** The helper docker would use for this registry: credHelpers[key] wins, else credsStore; undefined for none. */
function helperFor(config: DockerConfig, registry: string): string | undefined {
  if (isObject(config.credHelpers)) {
    const found = findKeyed(config.credHelpers, registry);
    if (found && typeof found[1] === "string" && found[1] !== "") return found[1];
  }
  return typeof config.credsStore === "string" && config.credsStore !== "" ? config.credsStore : undefined;
}

function checkHelperName(name: string): void {
  if (name.includes("/") || name.includes("\\") || name.includes("..") || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RegcliError("usage", `refusing credential helper name ${JSON.stringify(name)}: it must be a plain name, not a path`, {
      hint: "fix credsStore/credHelpers in config.json",
    });
  }
}

interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run `docker-credential-NAME ACTION` (no shell) with `input` on stdin. */
async function runHelper(name: string, action: "get" | "store" | "erase", input: string, env: NodeJS.ProcessEnv): Promise<HelperResult> {
  checkHelperName(name);
  const program = `docker-credential-${name}`;
  // Loaded only when a helper is configured: node:child_process costs every other start-up a few ms.
  const { spawn } = childProcess();
  return new Promise((resolve, reject) => {
    let settled = false;
    let timedOut = false;
    // Not detached: helpers that prompt (gpg pinentry for docker-credential-pass) need the controlling terminal.
    const child = spawn(program, [action], { env, stdio: ["pipe", "pipe", "pipe"], shell: false, windowsHide: true });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      // Kill it and stop listening at once: a grandchild still holding our pipes must not keep us waiting.
      timedOut = true;
      child.kill("SIGKILL");
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      if (settled) return;
      settled = true;
      resolve({ code: 128 + 9, stdout, stderr, timedOut });
    }, HELPER_TIMEOUT_MS);
    timer.unref();
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      if (stdout.length < HELPER_MAX_OUTPUT) stdout += d;
    });
    child.stderr.on("data", (d: string) => {
      if (stderr.length < HELPER_MAX_OUTPUT) stderr += d;
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found on PATH" : err.message;
      reject(new RegcliError("auth", `credential helper ${program} cannot run: ${why}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, timedOut });
    });
    child.stdin.on("error", () => undefined); // a helper that exits without reading stdin
    child.stdin.end(input);
  });
}

/** The first line of a helper's complaint, with any secret we handed it masked. */
function complaint(result: HelperResult, secrets: Array<string | undefined>): string {
  if (result.timedOut) return `timed out after ${HELPER_TIMEOUT_MS / 1000} s`;
  let line = (result.stderr.trim() || result.stdout.trim()).split(/\r?\n/)[0]?.trim().slice(0, 200) ?? "";
  for (const secret of secrets) if (secret) line = line.split(secret).join("***");
  return line || `exit status ${result.code}`;
}

function helperFailure(helper: string, verb: string, registry: string, result: HelperResult, secrets: Array<string | undefined> = []): RegcliError {
  return new RegcliError("auth", `credential helper docker-credential-${helper} ${verb} for ${registry}: ${complaint(result, secrets)}`);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

function decodeEntry(entry: AuthEntry, path: string, registry: string): Credential {
  const malformed = (what: string) =>
    new RegcliError("auth", `malformed ${what} for ${registry} in ${path}`, { hint: `log in again with regcli login ${registry}` });
  const cred: Credential = {};
  if (entry.auth !== undefined && entry.auth !== "") {
    if (typeof entry.auth !== "string" || !BASE64.test(entry.auth.trim())) throw malformed(`"auth" entry (not base64)`);
    const decoded = Buffer.from(entry.auth.trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw malformed(`"auth" entry (not "user:password")`);
    cred.username = decoded.slice(0, colon);
    cred.password = decoded.slice(colon + 1);
  } else {
    if (typeof entry.username === "string" && entry.username !== "") cred.username = entry.username;
    if (typeof entry.password === "string" && cred.username !== undefined) cred.password = entry.password;
  }
  if (typeof entry.identitytoken === "string" && entry.identitytoken !== "") {
    cred.identityToken = entry.identitytoken;
    // docker writes base64("user:") beside an identity token: there is no password to offer.
    if (cred.password === "") delete cred.password;
  }
  return cred;
}

/** Credentials for a registry from the first credential file (or its helper) that has some; undefined for none. */
export async function getCredential(registry: string, opts: CredentialOptions = {}): Promise<Credential | undefined> {
  const env = opts.env ?? process.env;
  for (const path of credentialFiles(opts)) {
    const config = await readConfig(path);
    if (!config) {
      if (path === opts.authFile) throw new RegcliError("usage", `--authfile ${path} does not exist`, { hint: `create it with regcli --authfile ${path} login REGISTRY` });
      continue;
    }
    const cred = await credentialIn(config, path, registry, env);
    if (cred) return cred;
  }
  return undefined;
}

/** One file's credentials for a registry: its helper's (credHelpers, credsStore), else its auths entry. */
async function credentialIn(config: DockerConfig, path: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const helper = helperFor(config, registry);
  if (helper) {
    const result = await runHelper(helper, "get", credentialKey(registry), env);
    if (result.code !== 0 || result.timedOut) {
      if (!result.timedOut && NOT_FOUND.test(result.stdout + result.stderr)) return undefined;
      throw helperFailure(helper, "failed", registry, result);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.stdout);
    } catch {
      throw new RegcliError("auth", `credential helper docker-credential-${helper} failed for ${registry}: its output is not JSON`);
    }
    if (!isObject(parsed)) throw new RegcliError("auth", `credential helper docker-credential-${helper} failed for ${registry}: its output is not a JSON object`);
    const username = typeof parsed.Username === "string" ? parsed.Username : "";
    const secret = typeof parsed.Secret === "string" ? parsed.Secret : "";
    if (!secret) return undefined;
    return username === TOKEN_USERNAME ? { identityToken: secret } : { username, password: secret };
  }
  const found = findKeyed(authsOf(config), registry);
  if (!found || !isObject(found[1])) return undefined;
  const cred = decodeEntry(found[1], path, registry);
  return cred.password !== undefined || cred.identityToken !== undefined ? cred : undefined;
}

/** Store credentials as docker does, in loginFile(): its configured helper, else the file itself (mode 0600). */
export async function storeCredential(registry: string, cred: Credential, opts: CredentialOptions = {}): Promise<{ where: string }> {
  const env = opts.env ?? process.env;
  const path = loginFile(opts);
  const config = (await readConfig(path)) ?? {};
  const key = credentialKey(registry);
  const helper = helperFor(config, registry);
  if (helper) {
    const payload = cred.identityToken
      ? { ServerURL: key, Username: TOKEN_USERNAME, Secret: cred.identityToken }
      : { ServerURL: key, Username: cred.username ?? "", Secret: cred.password ?? "" };
    const result = await runHelper(helper, "store", JSON.stringify(payload), env);
    if (result.code !== 0 || result.timedOut) {
      throw helperFailure(helper, "could not store credentials", registry, result, [cred.password, cred.identityToken]);
    }
    return { where: `docker-credential-${helper}` };
  }
  const auths: Record<string, unknown> = { ...authsOf(config) };
  // One entry per registry: an older one spelled with a scheme or path would only confuse later readers.
  for (const k of Object.keys(auths)) if (k !== key && sameRegistry(k, registry)) delete auths[k];
  const entry: Record<string, string> = {};
  if (cred.identityToken) {
    if (cred.username) entry.auth = Buffer.from(`${cred.username}:`).toString("base64");
    entry.identitytoken = cred.identityToken;
  } else {
    entry.auth = Buffer.from(`${cred.username ?? ""}:${cred.password ?? ""}`).toString("base64");
  }
  auths[key] = entry;
  await writeConfigAtomically(path, { ...config, auths });
  return { where: path };
}

/**
 * Remove stored credentials, so that no credential file regcli reads still has them (only --authfile's with
 * --authfile): from each file's helper and its auths. True when something was removed.
 */
export async function eraseCredential(registry: string, opts: CredentialOptions = {}): Promise<boolean> {
  let removed = false;
  for (const path of credentialFiles(opts)) if (await eraseIn(path, registry, opts.env ?? process.env)) removed = true;
  return removed;
}

async function eraseIn(path: string, registry: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const config = await readConfig(path);
  if (!config) return false;
  let removed = false;
  const helper = helperFor(config, registry);
  if (helper) {
    const result = await runHelper(helper, "erase", credentialKey(registry), env);
    if (result.code === 0 && !result.timedOut) removed = true;
    else if (result.timedOut || !NOT_FOUND.test(result.stdout + result.stderr)) {
      throw helperFailure(helper, "could not erase credentials", registry, result);
    }
  }
  // As docker's native store does, also drop any config.json entry for the registry.
  const auths: Record<string, unknown> = { ...authsOf(config) };
  const stale = Object.keys(auths).filter((k) => sameRegistry(k, registry));
  if (stale.length > 0) {
    for (const k of stale) delete auths[k];
    await writeConfigAtomically(path, { ...config, auths });
    removed = true;
  }
  return removed;
}
