import { readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { localFileError, RegcliError } from "../errors.js";
import type { MirrorRule, MirrorUse, RegistryRule } from "../registry/rules.js";

const SYSTEM_FILE = "/etc/containers/registries.conf";
const SYSTEM_DIR = "/etc/containers/registries.conf.d";

interface Sources {
  main: string;
  /** A file named by the environment must exist; the default ones may not. */
  required: boolean;
  dirs: string[];
}

/**
 * Which files podman, skopeo and buildah read (containers/image pkg/sysregistriesv2): $CONTAINERS_REGISTRIES_CONF,
 * else ~/.config/containers/registries.conf when it exists (then /etc is not read at all), else
 * /etc/containers/registries.conf; then the drop-ins of $CONTAINERS_REGISTRIES_CONF_DIR alone, or of
 * /etc/containers/registries.conf.d (not with the user's file) and ~/.config/containers/registries.conf.d.
 */
async function sources(env: NodeJS.ProcessEnv): Promise<Sources> {
  const home = env.HOME || homedir();
  const userFile = join(home, ".config/containers/registries.conf");
  const userDir = join(home, ".config/containers/registries.conf.d");
  const envDir = env.CONTAINERS_REGISTRIES_CONF_DIR;
  if (env.CONTAINERS_REGISTRIES_CONF) {
    return { main: env.CONTAINERS_REGISTRIES_CONF, required: true, dirs: envDir ? [envDir] : [SYSTEM_DIR, userDir] };
  }
  if (statSync(userFile, { throwIfNoEntry: false })) return { main: userFile, required: false, dirs: envDir ? [envDir] : [userDir] };
  return { main: SYSTEM_FILE, required: false, dirs: envDir ? [envDir] : [SYSTEM_DIR, userDir] };
}

async function dropIns(dir: string): Promise<string[]> {
  try {
    const entries = readdirSync(dir, { withFileTypes: true });
    return entries.filter((e) => !e.isDirectory() && e.name.endsWith(".conf")).map((e) => join(dir, e.name)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw localFileError(err, dir, "read") ?? err;
  }
}

function invalid(path: string, what: string): RegcliError {
  return new RegcliError("usage", `invalid ${path}: ${what}`, { hint: "see containers-registries.conf(5)" });
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field<T>(table: Record<string, unknown>, key: string, type: "string" | "boolean", fallback: T, path: string, where: string): T {
  const value = table[key];
  if (value === undefined) return fallback;
  if (typeof value !== type) throw invalid(path, `${where} "${key}" must be ${type === "string" ? "a string" : "true or false"}`);
  return value as T;
}

/** host[:port][/namespace] without a trailing slash; a URL scheme is refused, as containers/image does. */
function location(text: string, path: string): string {
  const trimmed = text.replace(/\/+$/, "");
  if (/^https?:\/\//.test(trimmed)) throw invalid(path, `location "${text}": give host[:port][/namespace] without http:// or https://`);
  return trimmed;
}

const MIRROR_USES: readonly string[] = ["all", "digest-only", "tag-only"] satisfies MirrorUse[];

function registryRule(entry: unknown, path: string): RegistryRule {
  if (!isTable(entry)) throw invalid(path, "[[registry]] must be a table");
  const loc = location(field(entry, "location", "string", "", path, "[[registry]]"), path);
  const prefix = location(field(entry, "prefix", "string", "", path, "[[registry]]"), path) || loc;
  const where = `[[registry]] "${prefix}":`;
  if (!prefix) throw invalid(path, "[[registry]] needs a location or a prefix");
  if (!loc && !prefix.startsWith("*.")) throw invalid(path, `${where} a prefix without a location must have the form *.example.com`);
  if (prefix.startsWith("*.") && /[/@:]/.test(prefix)) throw invalid(path, `${where} a wildcard prefix must have the form *.example.com`);
  if (entry["pull-from-mirror"] !== undefined) throw invalid(path, `${where} pull-from-mirror belongs in a [[registry.mirror]]`);
  const byDigestOnly = field(entry, "mirror-by-digest-only", "boolean", false, path, where);
  const mirrors = entry.mirror ?? [];
  if (!Array.isArray(mirrors)) throw invalid(path, `${where} mirror must be a list of [[registry.mirror]] tables`);
  return {
    prefix,
    location: loc,
    insecure: field(entry, "insecure", "boolean", false, path, where),
    blocked: field(entry, "blocked", "boolean", false, path, where),
    mirrors: mirrors.map((m): MirrorRule => {
      if (!isTable(m)) throw invalid(path, `${where} [[registry.mirror]] must be a table`);
      const mirrorLocation = location(field(m, "location", "string", "", path, `${where} mirror`), path);
      if (!mirrorLocation) throw invalid(path, `${where} a [[registry.mirror]] needs a location`);
      const use = field(m, "pull-from-mirror", "string", "", path, `${where} mirror`);
      if (use && !MIRROR_USES.includes(use)) throw invalid(path, `${where} pull-from-mirror must be all, digest-only or tag-only, got "${use}"`);
      if (use && byDigestOnly) throw invalid(path, `${where} mirror-by-digest-only and pull-from-mirror cannot both be set`);
      return { location: mirrorLocation, insecure: field(m, "insecure", "boolean", false, path, `${where} mirror`), use: byDigestOnly ? "digest-only" : ((use || "all") as MirrorUse) };
    }),
    source: path,
  };
}

/** The old v1 format ([registries.insecure] / [registries.block] lists), accepted in the main file only. */
function v1Rules(table: Record<string, unknown>, path: string): RegistryRule[] {
  const byLocation = new Map<string, RegistryRule>();
  for (const [section, flag] of [["block", "blocked"], ["insecure", "insecure"]] as const) {
    const list = isTable(table[section]) ? table[section].registries : undefined;
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((v) => typeof v !== "string")) throw invalid(path, `[registries.${section}] registries must be a list of strings`);
    for (const text of list as string[]) {
      const loc = location(text, path);
      const rule = byLocation.get(loc) ?? { prefix: loc, location: loc, insecure: false, blocked: false, mirrors: [], source: path };
      rule[flag] = true;
      byLocation.set(loc, rule);
    }
  }
  return [...byLocation.values()];
}

/**
 * A [[registry]] or [registries.*] table, or a registry/registries key, at the start of a line. A file with none
 * holds nothing regcli reads (podman's shortnames.conf: aliases; a registries.conf of comments and search
 * registries), so it is not parsed at all: ~12 M instructions, ~2.5 ms of every start on a machine with podman
 * installed. Not parsed means a syntax error in such a file is not reported (podman's own tools report it). A file
 * starting with a byte-order mark is tested after it, and one with a \u or \U escape (a key can be spelled so) is
 * always parsed.
 */
const RULES = /^[ \t]*(?:\[\[?[ \t]*)?["']?registr(?:y|ies)["']?[ \t]*[\].=]/m;

/** One file's rules, or undefined when it does not exist (and need not). Keys regcli has no use for are ignored. */
async function readRules(path: string, required: boolean, dropIn: boolean): Promise<RegistryRule[] | undefined> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      if (!required) return undefined;
      throw new RegcliError("usage", `cannot read ${path} (named by CONTAINERS_REGISTRIES_CONF): no such file`);
    }
    throw localFileError(err, path, "read") ?? err;
  }
  if (!RULES.test(text.replace(/^\uFEFF/, "")) && !/\\[uU]/.test(text)) return [];
  const { parse, TomlError } = await import("smol-toml");
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = err.message.split("\n", 1)[0]!.replace(/^Invalid TOML document: /, "");
    throw new RegcliError("usage", `invalid TOML in ${path}:${err.line}:${err.column}: ${what}`);
  }
  const v1 = isTable(doc.registries) ? v1Rules(doc.registries, path) : [];
  const entries = doc.registry ?? [];
  if (!Array.isArray(entries)) throw invalid(path, "registry must be a list of [[registry]] tables");
  if (v1.length && (dropIn || entries.length)) throw invalid(path, dropIn ? "a drop-in must use the v2 format ([[registry]])" : "mixes the v1 format ([registries.*]) with [[registry]]");
  // Within a file the first entry for a prefix wins, as in containers/image.
  const rules = new Map<string, RegistryRule>();
  for (const rule of [...v1, ...entries.map((e) => registryRule(e, path))]) if (!rules.has(rule.prefix)) rules.set(rule.prefix, rule);
  return [...rules.values()];
}

/**
 * The [[registry]] rules of registries.conf and its drop-ins, merged as containers/image merges them: a later
 * file's entry for a prefix replaces an earlier one whole.
 */
export async function loadRegistryRules(env: NodeJS.ProcessEnv = process.env): Promise<RegistryRule[]> {
  const { main, required, dirs } = await sources(env);
  const merged = new Map<string, RegistryRule>();
  const files: [string, boolean, boolean][] = [[main, required, false]];
  for (const dir of dirs) for (const file of await dropIns(dir)) files.push([file, false, true]);
  for (const [file, mustExist, dropIn] of files) {
    for (const rule of (await readRules(file, mustExist, dropIn)) ?? []) merged.set(rule.prefix, rule);
  }
  return [...merged.values()];
}
