/**
 * Per-registry rules in the model of containers-registries.conf(5) (read by src/config/registries-conf.ts):
 * which names a rule covers, where pulls of those names go, and whether they are refused.
 */

/** Which pulls a mirror serves (registries.conf's pull-from-mirror). */
export type MirrorUse = "all" | "digest-only" | "tag-only";

export interface MirrorRule {
  /** host[:port][/namespace], no scheme. */
  location: string;
  /** Plain HTTP and unverified TLS allowed. */
  insecure: boolean;
  use: MirrorUse;
}

export interface RegistryRule {
  /** The names this rule covers: host[:port][/namespace], or "*.example.com" for subdomains. */
  prefix: string;
  /** Where pulls of those names go (the prefix is replaced by it); "" keeps the name. */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorRule[];
  /** The file that defined the rule, for messages. */
  source: string;
}

/** How much of `name` (host[:port]/repository) the prefix covers, or -1, as containers/image matches them. */
export function prefixMatch(name: string, prefix: string): number {
  if (prefix.startsWith("*.")) {
    const host = name.split("/", 1)[0]!.replace(/:\d+$/, "");
    return host.endsWith(prefix.slice(1)) ? host.length : -1;
  }
  if (!name.startsWith(prefix)) return -1;
  if (name.length === prefix.length) return prefix.length;
  return ":/@".includes(name[prefix.length]!) ? prefix.length : -1;
}

/** The rule with the longest prefix covering `name`. */
export function findRule(rules: readonly RegistryRule[], name: string): RegistryRule | undefined {
  let best: RegistryRule | undefined;
  for (const rule of rules) {
    if (prefixMatch(name, rule.prefix) >= 0 && rule.prefix.length > (best?.prefix.length ?? 0)) best = rule;
  }
  return best;
}

/** `name` with the rule's prefix replaced by `location`, split into registry and repository. */
export function rewrite(name: string, rule: RegistryRule, location: string): { registry: string; repository: string } {
  const rewritten = location ? location + name.slice(prefixMatch(name, rule.prefix)) : name;
  const slash = rewritten.indexOf("/");
  return { registry: rewritten.slice(0, slash), repository: rewritten.slice(slash + 1) };
}
