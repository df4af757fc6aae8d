import { Option, type Command } from "commander";
import { loadRegistryRules } from "../config/registries-conf.js";
import { loadSettings } from "../config/settings.js";
import { RegcliError } from "../errors.js";
import type { RegistryContext, RegistryContextOptions } from "../registry/context.js";
import type { Credential } from "../auth/credentials.js";
import { COMPRESSIONS, type LayerCompression } from "../oci/media-types.js";
import { askSecret } from "./confirm.js";
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
  authfile?: string;
}

/** Per-side credentials of a two-sided command (copy, sync), as skopeo takes them. */
interface SideFlags {
  srcCreds?: string;
  destCreds?: string;
  srcAuthfile?: string;
  destAuthfile?: string;
}

/** The registries each side of a two-sided command reaches (none for a layout or archive). */
export interface SideRegistries {
  source: string[];
  destination: string[];
}

/** --src-creds, --dest-creds, --src-authfile and --dest-authfile on a two-sided command. */
export function addSideOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--src-creds <user[:password]>", "credentials for the source registry only (asks for a missing password on a terminal)"))
    .addOption(new Option("--dest-creds <user[:password]>", "credentials for the destination registry only (asks for a missing password on a terminal)"))
    .addOption(new Option("--src-authfile <file>", "read the source registry's credentials from this auth.json/config.json only"))
    .addOption(new Option("--dest-authfile <file>", "read the destination registry's credentials from this auth.json/config.json only"));
}

/** USER[:PASSWORD] of --src-creds/--dest-creds; a missing password is asked for on the terminal. */
async function parseCreds(side: "src" | "dest", value: string): Promise<Credential> {
  const flag = `--${side}-creds`;
  const colon = value.indexOf(":");
  const username = colon < 0 ? value : value.slice(0, colon);
  if (!username) throw new RegcliError("usage", `${flag} needs USER[:PASSWORD], got no user name`);
  if (colon >= 0) return { username, password: value.slice(colon + 1) };
  const password = await askSecret(`Password for ${username} (${flag}): `);
  if (password === undefined) {
    throw new RegcliError("usage", `${flag} ${username} has no password and there is no terminal to ask for it`, { hint: `give ${flag} ${username}:PASSWORD, or --${side}-authfile FILE` });
  }
  return { username, password };
}

/** One side's own credentials: a credential bound to its registry, and/or the only file to read. */
interface SideCredentials {
  registry: string;
  credential?: Credential;
  authFile?: string;
}
export type Sides = Partial<Record<"source" | "destination", SideCredentials>>;

/**
 * The per-side flags of a two-sided command, checked (and a missing password asked for) before any progress
 * shows. Each side's credential is bound to that side's registry.
 */
export async function resolveSides(cmd: Command, registries: SideRegistries): Promise<Sides> {
  const opts = cmd.optsWithGlobals<SideFlags & GlobalOptions>();
  if (opts.destCreds !== undefined && opts.username) throw new RegcliError("usage", "give the destination's credentials once: --dest-creds or -u/--password-stdin");
  const sides: Sides = {};
  for (const [side, flag] of [["source", "src"], ["destination", "dest"]] as const) {
    const creds = flag === "src" ? opts.srcCreds : opts.destCreds;
    const authFile = flag === "src" ? opts.srcAuthfile : opts.destAuthfile;
    if (creds === undefined && authFile === undefined) continue;
    const on = registries[side];
    const given = creds !== undefined ? `--${flag}-creds` : `--${flag}-authfile`;
    if (on.length === 0) throw new RegcliError("usage", `${given} is for a registry ${side}, and this ${side} is not one`);
    if (creds !== undefined && on.length > 1) {
      throw new RegcliError("usage", `--${flag}-creds is for one registry, and the ${side}s are on ${on.join(", ")}`, { hint: `use --${flag}-authfile FILE` });
    }
    sides[side] = { registry: on[0]!, authFile, credential: creds !== undefined ? await parseCreds(flag, creds) : undefined };
  }
  return sides;
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

/**
 * Build the registry context from global flags and settings; `credentialRegistry` gets flag credentials, and a
 * two-sided command passes its resolved `sides` (--src-creds and the like).
 */
export async function createContext(cmd: Command, credentialRegistry?: string, sides: Sides = {}, extra: Partial<RegistryContextOptions> = {}): Promise<RegistryContext> {
  const opts = cmd.optsWithGlobals<GlobalOptions & SideFlags>();
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
    credentialOptions: opts.authfile !== undefined ? { authFile: opts.authfile } : undefined,
    ...extra,
  };
  if (credentialRegistry) {
    const credential = await credentialFromFlags(opts);
    if (credential) options.credentialOverride = { registry: credentialRegistry, credential };
  }
  const { RegistryContext } = await import("../registry/context.js");
  const ctx = new RegistryContext(options);
  // Another side's credentials never apply here; -u/--password-stdin stay the destination's.
  for (const side of ["source", "destination"] as const) {
    const own = sides[side];
    if (!own) continue;
    ctx.setSide(side, {
      credentialOverride: own.credential ? { registry: own.registry, credential: own.credential } : side === "destination" ? options.credentialOverride : undefined,
      credentialOptions: own.authFile !== undefined ? { authFile: own.authFile } : options.credentialOptions,
    });
  }
  return ctx;
}

/** Run `action` with a context, closing its connections afterwards. */
export async function withContext<T>(cmd: Command, credentialRegistry: string | undefined, action: (ctx: RegistryContext) => Promise<T>, sides?: Sides): Promise<T> {
  const ctx = await createContext(cmd, credentialRegistry, sides);
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

/** A flag's value that must be a positive integer (--jobs, --latest, -n, --page-size). */
export function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RegcliError("usage", `${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** --jobs: a positive integer. */
export function parseJobs(value: string): number {
  return positiveInteger(value, "--jobs");
}

/** --referrers and --referrers-artifact-type, for every command that moves an image (copy, pull, push). */
export function addReferrerOptions(cmd: Command): Command {
  return cmd
    .option("--referrers", "also copy the image's referrers (signatures, SBOMs, attestations; recursively) and cosign's sha256-<hex>.sig/.att/.sbom tags")
    .option("--referrers-artifact-type <type>", "with --referrers, only the image's referrers of this artifact type (repeatable; implies --referrers)", collect);
}

/** The referrers to carry, as those flags ask: undefined for none. */
export function referrerChoice(opts: { referrers?: boolean; referrersArtifactType?: string[] }): { artifactTypes?: string[] } | undefined {
  return opts.referrers || opts.referrersArtifactType ? { artifactTypes: opts.referrersArtifactType } : undefined;
}

/** `--compress gzip|zstd|none`: the layer compression a command writes (copy, push, append). */
export function compressOption(description = "re-compress image layers to this while copying (new layer, manifest and index digests; zstd and none write OCI media types)", fallback?: LayerCompression): Option {
  const option = new Option(`--compress <${COMPRESSIONS.join("|")}>`, description).choices(COMPRESSIONS);
  return fallback ? option.default(fallback) : option;
}

/** The --compress choice, refused with --preserve-digests (re-compressing changes every digest). */
export function compressChoice(opts: { compress?: LayerCompression; preserveDigests?: boolean }): LayerCompression | undefined {
  if (opts.compress && opts.preserveDigests) throw new RegcliError("usage", "--compress changes layer and manifest digests: it cannot go with --preserve-digests");
  return opts.compress;
}
