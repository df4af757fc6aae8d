import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tally } from "./tally.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
}

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const regcliBin = join(repoRoot, "bin", "regcli.cjs");

const tempDirs: string[] = [];
process.on("exit", removeTempDirs);

/** Remove the temporary directories made so far (after each test file, by the setup file: vitest's forks are
 *  reused or killed, so the exit handler alone left tens of thousands behind in /tmp). */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A temporary directory removed after its test file (or when the test process exits). */
export async function tempDir(prefix = "regcli-test-"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A DOCKER_CONFIG directory whose config.json holds these logins (empty when none). */
export async function dockerConfigDir(auths?: Record<string, { username: string; password: string }>): Promise<string> {
  const dir = await tempDir("regcli-dockercfg-");
  if (auths) {
    const entries = Object.fromEntries(
      Object.entries(auths).map(([host, c]) => [host, { auth: Buffer.from(`${c.username}:${c.password}`).toString("base64") }]),
    );
    writeFileSync(join(dir, "config.json"), JSON.stringify({ auths: entries }), { mode: 0o600 });
  }
  return dir;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, input: string | Buffer | undefined, timeoutMs: number, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const stdoutBuffer = Buffer.concat(out);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: stdoutBuffer.toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), stdoutBuffer });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

/** What to type on the terminal once the screen shows `after` (after the previous one): typed ahead, a line
 *  would be echoed by the terminal before the program could turn echo off. */
export interface Typed {
  after: string;
  type: string;
}

/** Type each answer once its prompt is on the screen (script -f flushes the typescript as it goes). */
async function typeWhenAsked(input: NodeJS.WritableStream, typescript: string, answers: Typed[]): Promise<void> {
  let from = 0;
  for (const { after, type } of answers) {
    for (let waited = 0; waited < 30_000; waited += 50) {
      const at = (await readFile(typescript, "utf8").catch(() => "")).indexOf(after, from);
      if (at >= 0) {
        from = at + after.length;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    input.write(type);
  }
  input.end();
}

/**
 * Run regcli on a terminal (through script(1)), typing `answer` (at once, or each part after its prompt); the
 * screen is what the terminal showed. With `stdinPipe`, stdin is a pipe and the answer must come from /dev/tty.
 * `bin` runs another regcli (the standalone executable) instead of bin/regcli.cjs.
 */
export async function onTerminal(args: string[], answer: string | Typed[], stdinPipe = false, env: Record<string, string> = {}, bin?: string): Promise<{ code: number; screen: string }> {
  const home = await tempDir("regcli-tty-");
  const typescript = join(home, "typescript");
  const command = (stdinPipe ? "echo not-an-answer | " : "") + [...(bin ? [bin] : [process.execPath, regcliBin]), ...args].map((a) => `'${a}'`).join(" ");
  const code = await new Promise<number>((resolve) => {
    const child = spawn("script", ["-qfec", command, typescript], { env: { ...process.env, NO_COLOR: "1", DOCKER_CONFIG: home, XDG_RUNTIME_DIR: home, XDG_CONFIG_HOME: home, REGISTRY_AUTH_FILE: "", ...env }, stdio: ["pipe", "ignore", "ignore"] });
    child.on("close", (c) => resolve(c ?? 1));
    if (typeof answer === "string") child.stdin.end(answer);
    else void typeWhenAsked(child.stdin, typescript, answer);
  });
  return { code, screen: withoutScriptFrame(await readFile(typescript, "utf8")) };
}

/** script(1) frames the typescript with "Script started on ... [COMMAND=...]" and "Script done on ..." lines; they
 *  carry paths of this machine, and the user never sees them. */
export function withoutScriptFrame(typescript: string): string {
  return typescript.replace(/^Script started on [^\n]*\n/, "").replace(/\n?Script done on [^\n]*\n?$/, "");
}

const PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"];

/**
 * Run the built regcli binary as a user would, isolated from the developer's Docker config and proxies. `bin`: an
 * executable to run instead of `node bin/regcli.cjs` (an installed package's bin, the standalone executable).
 */
export async function regcli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; input?: string | Buffer; cwd?: string; timeoutMs?: number; bin?: string } = {},
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const v of PROXY_VARS) delete env[v];
  delete env.REGCLI_REGISTRY_MIRRORS;
  delete env.REGCLI_INSECURE_REGISTRIES;
  env.DOCKER_CONFIG = await dockerConfigDir();
  env.REGCLI_CONFIG = join(env.DOCKER_CONFIG, "regcli-config.json");
  // podman/skopeo's auth.json locations too: never the developer's logins.
  delete env.REGISTRY_AUTH_FILE;
  env.XDG_RUNTIME_DIR = env.XDG_CONFIG_HOME = env.DOCKER_CONFIG;
  // Nor its caches (what a host answered on): each run starts cold unless a test passes its own.
  env.XDG_CACHE_HOME = env.DOCKER_CONFIG;
  env.NO_COLOR = "1";
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const [command, argv] = opts.bin ? [opts.bin, args] : [process.execPath, [regcliBin, ...args]];
  const result = await run(command, argv, env, opts.input, opts.timeoutMs ?? 60_000, opts.cwd);
  tally("regcli runs");
  if (result.code === 0) tally("regcli runs completed");
  else if (STACK_LINE.test(result.stderr)) tally("regcli runs ending in a stack trace");
  else tally("regcli runs failing with a clear error");
  return result;
}

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

export async function skopeo(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  for (const v of PROXY_VARS) delete env[v];
  return run("skopeo", args, env, undefined, opts.timeoutMs ?? 120_000);
}

/** Another client (ctr, podman...), isolated from proxies and from regcli's test credentials (DOCKER_CONFIG); `env` adds to its environment. */
export async function tool(command: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const v of [...PROXY_VARS, "DOCKER_CONFIG"]) delete env[v];
  return run(command, args, { ...env, ...opts.env }, undefined, opts.timeoutMs ?? 120_000);
}

/** podman with private storage in `dir` (docs: outside-clients.md): vfs, its own runroot and tmpdir, no events. */
export async function podman(dir: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  for (const sub of ["root", "run", "tmp"]) mkdirSync(join(dir, sub), { recursive: true });
  const storage = ["--storage-driver", "vfs", "--root", join(dir, "root"), "--runroot", join(dir, "run")];
  return tool("podman", [...storage, "--events-backend", "none", "--cgroup-manager", "cgroupfs", "--tmpdir", join(dir, "tmp"), ...args], opts);
}
