import { Ajv, type ErrorObject } from "ajv";
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import { RegcliError } from "../errors.js";
import type { TagFilterSpec } from "./tag-filters.js";
import schema from "./sync.schema.json" with { type: "json" };

/** One entry of a sync job, from the config file or the command line. */
export interface SyncEntry {
  /** Repositories (`registry/path`) or repository globs (`registry/team/*`), each with its registry. */
  sources: string[];
  /** A repository, or a template with {repository} and {registry}. */
  destination: string;
  tags: TagFilterSpec;
  platforms: string[];
  /** Manifests mirrored by digest (no tag at the destination), besides the tags the filters select. */
  digests?: string[];
  /** The sources came as a registry and a list: each goes to the destination plus its path (unless a template). */
  list?: boolean;
  /** After mirroring, delete the destination's tags that `tags` no longer selects (retention). */
  prune?: boolean;
  /** With platforms: write an index reduced to them (a new digest) instead of copying it whole. */
  keepIndex?: boolean;
  /** Carry each image's referrers and cosign tag attachments (default true). */
  referrers?: boolean;
  /** With referrers: only the images' referrers of these artifact types. */
  referrerTypes?: string[];
  jobs?: number;
  /** Where the entry is, for messages: "sync.yaml:12". */
  where?: string;
}

interface RawTags {
  include?: string[];
  exclude?: string[];
  semver?: string;
  latest?: number;
  "newer-than"?: string;
}
interface RawOptions {
  tags?: RawTags;
  platforms?: string[] | "all";
  prune?: boolean;
  "keep-index"?: boolean;
  referrers?: boolean;
  "referrers-artifact-types"?: string[];
  jobs?: number;
}
interface RawEntry extends RawOptions {
  digests?: string[];
  source: string | { registry: string; repositories: string[] };
  destination: string;
}
interface RawConfig {
  defaults?: RawOptions;
  sync: RawEntry[];
}

/** Keys that would put credentials in the file: they come from config.json and credential helpers only. */
const CREDENTIAL_KEYS = /^(password|auth|token|identitytoken|credentials?)$/i;

let validate: ReturnType<Ajv["compile"]> | undefined;

/**
 * A sync config (YAML) checked against the shipped JSON Schema (src/operations/sync.schema.json). Every problem is
 * reported as one line, `FILE:LINE: message`, as a usage error (exit 2).
 */
export function parseSyncConfig(text: string, file: string): SyncEntry[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number | undefined) => `${file}:${offset === undefined ? 1 : lines.linePos(offset).line}`;
  const fail = (offset: number | undefined, message: string): never => {
    throw new RegcliError("usage", `${at(offset)}: ${message}`);
  };
  const problem = doc.errors[0];
  if (problem) fail(problem.pos[0], problem.message.split("\n")[0]!);
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && CREDENTIAL_KEYS.test(String(pair.key.value))) {
        fail(pair.key.range?.[0], `"${String(pair.key.value)}": credentials do not belong in a sync file; use regcli login or a credential helper (config.json)`);
      }
    },
  });
  const value = doc.toJS() as unknown;
  validate ??= new Ajv({ allErrors: false, strict: false }).compile(schema);
  if (!validate(value)) {
    // A oneOf reports each branch's complaint first; the oneOf's own message says what is expected there.
    const error = validate.errors!.find((e) => e.keyword === "oneOf") ?? validate.errors![0]!;
    fail(nodeAt(doc, error)?.range?.[0], describe(error));
  }
  const config = value as RawConfig;
  const defaults = config.defaults ?? {};
  return config.sync.map((entry, i) => {
    const node = doc.getIn(["sync", i], true) as Node | undefined;
    const source = entry.source;
    const sources = typeof source === "string" ? [source] : source.repositories.map((r) => `${source.registry.replace(/\/+$/, "")}/${r}`);
    return {
      sources,
      destination: entry.destination,
      tags: tagSpec({ ...defaults.tags, ...entry.tags }),
      platforms: platformList(entry.platforms ?? defaults.platforms),
      digests: entry.digests ?? [],
      list: typeof source !== "string",
      prune: entry.prune ?? defaults.prune ?? false,
      keepIndex: entry["keep-index"] ?? defaults["keep-index"] ?? false,
      referrers: entry.referrers ?? defaults.referrers ?? true,
      referrerTypes: entry["referrers-artifact-types"] ?? defaults["referrers-artifact-types"] ?? [],
      jobs: entry.jobs ?? defaults.jobs,
      where: at(node?.range?.[0]),
    };
  });
}

function tagSpec(raw: RawTags): TagFilterSpec {
  const spec: TagFilterSpec = {};
  if (raw.include) spec.include = raw.include;
  if (raw.exclude) spec.exclude = raw.exclude;
  if (raw.semver) spec.semver = raw.semver;
  if (raw.latest !== undefined) spec.latest = raw.latest;
  if (raw["newer-than"]) spec.newerThan = raw["newer-than"];
  return spec;
}

/** The YAML node an ajv error is about (for an unknown key: the key itself), for its line. */
function nodeAt(doc: Document, error: ErrorObject): Node | undefined {
  const path = error.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const node = (path.length ? doc.getIn(path, true) : doc.contents) as Node | undefined;
  const extra = error.keyword === "additionalProperties" ? (error.params as { additionalProperty: string }).additionalProperty : undefined;
  if (extra && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === extra);
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return node ?? undefined;
}

function describe(error: ErrorObject): string {
  const where = error.instancePath ? error.instancePath.slice(1).replace(/\//g, ".") : "the file";
  switch (error.keyword) {
    case "additionalProperties":
      return `${where}: unknown key "${(error.params as { additionalProperty: string }).additionalProperty}"`;
    case "required":
      return `${where}: missing "${(error.params as { missingProperty: string }).missingProperty}"`;
    case "pattern":
      if (/\/digests\//.test(error.instancePath)) return `${where}: not a digest (sha256: and 64 lowercase hex digits)`;
      return `${where}: ${error.message ?? "invalid"}`;
    case "oneOf":
      return `${where}: expected a repository (registry/path or registry/team/*) or {registry, repositories}`;
    default:
      return `${where}: ${error.message ?? "invalid"}`;
  }
}

/** A config's platforms: `all` (whole indexes) is no list, as `--platform all` on the command line. */
function platformList(platforms: string[] | "all" | undefined): string[] {
  return platforms === undefined || platforms === "all" ? [] : platforms;
}
