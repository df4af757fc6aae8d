import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { RegcliError } from "../errors.js";

/** regcli's own settings; key names follow Docker's daemon.json where the meaning is the same. */
export interface Settings {
  "registry-mirrors": string[];
  "insecure-registries": string[];
}

const KNOWN_KEYS: readonly (keyof Settings)[] = ["registry-mirrors", "insecure-registries"];

export function settingsPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REGCLI_CONFIG) return env.REGCLI_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "regcli", "config.json");
}

function stringList(value: unknown, key: string, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new RegcliError("usage", `invalid ${path}: "${key}" must be a list of strings`);
  }
  return value as string[];
}

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(/[\s,]+/).filter(Boolean);
}

/**
 * Settings from the config file, with REGCLI_REGISTRY_MIRRORS and REGCLI_INSECURE_REGISTRIES (comma or space
 * separated) taking precedence over the file's lists when set.
 */
export async function loadSettings(env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  const path = settingsPath(env);
  let file: Record<string, unknown> = {};
  try {
    file = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") {
      const why = err instanceof SyntaxError ? "invalid JSON" : (err as Error).message;
      throw new RegcliError("usage", `cannot read config ${path}: ${why}`);
    }
  }
  if (typeof file !== "object" || file === null || Array.isArray(file)) throw new RegcliError("usage", `invalid ${path}: expected a JSON object`);
  // A misspelt key would otherwise be a setting silently not applied.
  const unknown = Object.keys(file).find((key) => !(KNOWN_KEYS as readonly string[]).includes(key));
  if (unknown !== undefined) {
    throw new RegcliError("usage", `unknown key "${unknown}" in ${path}`, { hint: `known keys: ${KNOWN_KEYS.join(", ")}` });
  }
  const mirrors = env.REGCLI_REGISTRY_MIRRORS !== undefined
    ? splitList(env.REGCLI_REGISTRY_MIRRORS)
    : stringList(file["registry-mirrors"], "registry-mirrors", path);
  const insecure = env.REGCLI_INSECURE_REGISTRIES !== undefined
    ? splitList(env.REGCLI_INSECURE_REGISTRIES)
    : stringList(file["insecure-registries"], "insecure-registries", path);
  return { "registry-mirrors": mirrors, "insecure-registries": insecure };
}
