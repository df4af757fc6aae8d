import type { Command } from "commander";
import { loadRegistryRules } from "../config/registries-conf.js";
import { loadSettings } from "../config/settings.js";
import { RegcliError } from "../errors.js";
import type { RegistryContext, RegistryContextOptions } from "../registry/context.js";
import type { Credential } from "../auth/credentials.js";
import { jsonEventsOn, note, writeEvent } from "./output.js";

export interface GlobalOptions {
  debug?: boolean;
  insecure?: boolean;
  plainHttp?: boolean;
  caFile?: string[];
  certDir?: string;
  retries?: string;
  timeout?: string;
  chunkSize?: string;
  quiet?: boolean;
  username?: string;
  passwordStdin?: boolean;
}

function positiveNumber(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new RegcliError("usage", `${flag} must be a non-negative number, got "${value}"`);
  return n;
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/** --username with --password-stdin: a credential for one registry of this command. */
export async function credentialFromFlags(opts: GlobalOptions): Promise<Credential | undefined> {
  if (!opts.username && !opts.passwordStdin) return undefined;
  if (!opts.username) throw new RegcliError("usage", "--password-stdin needs --username");
  if (!opts.passwordStdin) throw new RegcliError("usage", "--username needs --password-stdin (passwords are never taken as arguments)");
  const password = await readStdin();
  if (!password) throw new RegcliError("usage", "no password on standard input");
  return { username: opts.username, password };
}

/** Build the registry context from global flags and settings; `credentialRegistry` gets flag credentials. */
export async function createContext(cmd: Command, credentialRegistry?: string): Promise<RegistryContext> {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  const [settings, registryRules] = await Promise.all([loadSettings(), loadRegistryRules()]);
  const options: RegistryContextOptions = {
    insecure: opts.insecure,
    plainHttp: opts.plainHttp,
    caFiles: opts.caFile,
    certDir: opts.certDir,
    retries: positiveNumber(opts.retries, "--retries", 3),
    timeoutMs: positiveNumber(opts.timeout, "--timeout", 60) * 1000,
    mirrors: settings["registry-mirrors"],
    insecureRegistries: settings["insecure-registries"],
    registryRules,
    debug: opts.debug ? (line) => note(`debug: ${line}`) : undefined,
    // Waits for rate limits: a line on stderr (not with --quiet), or the event itself with --progress json.
    notice: ({ message, ...event }) => {
      if (jsonEventsOn()) writeEvent({ ...event, message });
      else if (!opts.quiet) note(message);
    },
    chunkSize: opts.chunkSize === undefined ? undefined : parseSize(opts.chunkSize, "--chunk-size"),
  };
  if (credentialRegistry) {
    const credential = await credentialFromFlags(opts);
    if (credential) options.credentialOverride = { registry: credentialRegistry, credential };
  }
  const { RegistryContext } = await import("../registry/context.js");
  return new RegistryContext(options);
}

/** Run `action` with a context, closing its connections afterwards. */
export async function withContext<T>(cmd: Command, credentialRegistry: string | undefined, action: (ctx: RegistryContext) => Promise<T>): Promise<T> {
  const ctx = await createContext(cmd, credentialRegistry);
  let failed = true;
  try {
    const result = await action(ctx);
    failed = false;
    return result;
  } finally {
    // After a failure, transfers still running (or a response nobody will read) must not hold up the exit.
    await ctx.close(failed).catch(() => undefined);
  }
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };

/** A byte size such as 5242880, 5MiB, 8M or 1GB. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(bytes) || bytes < 1) throw new RegcliError("usage", `${flag} must be a size such as 16MiB, got "${value}"`);
  return bytes;
}

/** A repeatable flag's values, in order (commander's option argument parser). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** --jobs: a positive integer. */
export function parseJobs(value: string): number {
  const jobs = Number(value);
  if (!Number.isInteger(jobs) || jobs < 1) throw new RegcliError("usage", `--jobs must be a positive integer, got "${value}"`);
  return jobs;
}
