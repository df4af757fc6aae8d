// New images from old ones, without I/O: config edits, layers appended to a config, and the manifest that names
// them, in the media-type family (Docker schema 2 or OCI) of the base. The model is crane's pkg/v1/mutate.
import { RegcliError } from "../errors.js";
import { layerMediaType } from "./compress.js";
import { digestOf } from "./digest.js";
import { parseManifest } from "./manifest.js";
import { MediaType, type LayerCompression } from "./media-types.js";
import type { Descriptor, ManifestData } from "./types.js";

/** A config as JSON: fields regcli does not know are kept as they are. */
export type ConfigDocument = Record<string, unknown> & {
  created?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
};

/** One history entry, as Docker writes them. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** What `mutate` changes in a config; undefined fields are left alone. */
export interface ConfigEdit {
  labels?: Record<string, string>;
  /** K=V, merged by key (a K already set is replaced where it is). */
  env?: string[];
  /** null clears it. */
  entrypoint?: string[] | null;
  cmd?: string[] | null;
  user?: string;
  workdir?: string;
  /** "8080/tcp", "53/udp". */
  expose?: string[];
}

export type Family = "docker" | "oci";

/** The time a config and its history record: RFC 3339 in UTC, without fractional seconds when there are none. */
export function formatCreated(date: Date): string {
  return date.toISOString().replace(/\.000Z$/, "Z");
}

/**
 * The creation time of a new image: `--created` (RFC 3339, or a number of seconds since the epoch), else
 * SOURCE_DATE_EPOCH (reproducible builds), else now.
 */
export function createdTime(given: string | undefined, env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const epoch = (text: string, what: string) => {
    if (!/^\d+$/.test(text)) throw new RegcliError("usage", `${what} ${text}: expected seconds since 1970-01-01 (an integer)`);
    return formatCreated(new Date(Number(text) * 1000));
  };
  if (given !== undefined) {
    if (/^\d+$/.test(given)) return epoch(given, "--created");
    const date = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(given) ? new Date(given) : undefined;
    if (!date || Number.isNaN(date.getTime())) throw new RegcliError("usage", `--created ${given}: expected an RFC 3339 time (2026-01-02T03:04:05Z) or seconds since the epoch`);
    return formatCreated(date);
  }
  if (env.SOURCE_DATE_EPOCH) return epoch(env.SOURCE_DATE_EPOCH, "SOURCE_DATE_EPOCH");
  return formatCreated(now);
}

/** SOURCE_DATE_EPOCH as seconds, or undefined when not set. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.SOURCE_DATE_EPOCH;
  if (!text) return undefined;
  if (!/^\d+$/.test(text)) throw new RegcliError("usage", `SOURCE_DATE_EPOCH ${text}: expected seconds since 1970-01-01 (an integer)`);
  return Number(text);
}

/** `--entrypoint`/`--cmd` as Docker reads them: a JSON array is the exec form, other text the shell form; "" clears. */
export function parseCommandLine(text: string, flag: string): string[] | null {
  if (text.trim() === "") return null;
  if (text.trim().startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RegcliError("usage", `${flag} ${text}: not a valid JSON array`, { hint: `use ${flag} '["/app","--flag"]' or a shell command line` });
    }
    if (!Array.isArray(parsed) || parsed.some((p) => typeof p !== "string")) throw new RegcliError("usage", `${flag} ${text}: expected a JSON array of strings`);
    return parsed as string[];
  }
  return ["/bin/sh", "-c", text];
}

/** `KEY=VALUE` flags (labels, env): the key must not be empty. */
export function parseKeyValues(values: string[] | undefined, flag: string): Array<[string, string]> {
  return (values ?? []).map((value) => {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new RegcliError("usage", `${flag} ${value}: expected KEY=VALUE`);
    return [value.slice(0, eq), value.slice(eq + 1)];
  });
}

/** `--expose 8080`, `8080/tcp`, `53/udp`: the key Docker uses in ExposedPorts. */
export function parsePort(text: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new RegcliError("usage", `--expose ${text}: expected PORT or PORT/tcp|udp|sctp`);
  return `${Number(m[1])}/${(m[2] ?? "tcp").toLowerCase()}`;
}

/** The Dockerfile instructions an edit amounts to, for its history entry ("ENV A=1 LABEL b=2"). */
export function describeEdit(edit: ConfigEdit): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(edit.labels ?? {})) parts.push(`LABEL ${k}=${v}`);
  for (const e of edit.env ?? []) parts.push(`ENV ${e}`);
  if (edit.entrypoint !== undefined) parts.push(`ENTRYPOINT ${JSON.stringify(edit.entrypoint ?? [])}`);
  if (edit.cmd !== undefined) parts.push(`CMD ${JSON.stringify(edit.cmd ?? [])}`);
  if (edit.user !== undefined) parts.push(`USER ${edit.user}`);
  if (edit.workdir !== undefined) parts.push(`WORKDIR ${edit.workdir}`);
  for (const p of edit.expose ?? []) parts.push(`EXPOSE ${p}`);
  return parts.join(" ");
}

function copyConfig(config: ConfigDocument): ConfigDocument {
  return structuredClone(config);
}

/**
 * A config with `edit` applied (Docker's rules: env merged by key, labels merged, a new entrypoint resets an
 * inherited cmd unless a cmd is given too), created at `created`, with one `empty_layer` history entry.
 */
export function editConfig(config: ConfigDocument, edit: ConfigEdit, created: string, createdBy = `regcli mutate ${describeEdit(edit)}`.trim()): ConfigDocument {
  const out = copyConfig(config);
  const c: Record<string, unknown> = (out.config ??= {});
  if (edit.labels && Object.keys(edit.labels).length) c.Labels = { ...((c.Labels as Record<string, string> | null) ?? {}), ...edit.labels };
  if (edit.env?.length) {
    const env = [...((c.Env as string[] | null) ?? [])];
    for (const entry of edit.env) {
      const key = entry.slice(0, entry.indexOf("=") + 1);
      const at = env.findIndex((e) => e.startsWith(key) || e === key.slice(0, -1));
      if (at >= 0) env[at] = entry;
      else env.push(entry);
    }
    c.Env = env;
  }
  if (edit.entrypoint !== undefined) {
    c.Entrypoint = edit.entrypoint;
    if (edit.cmd === undefined) c.Cmd = null;
  }
  if (edit.cmd !== undefined) c.Cmd = edit.cmd;
  if (edit.user !== undefined) c.User = edit.user;
  if (edit.workdir !== undefined) c.WorkingDir = edit.workdir;
  if (edit.expose?.length) c.ExposedPorts = { ...((c.ExposedPorts as Record<string, unknown>) ?? {}), ...Object.fromEntries(edit.expose.map((p) => [p, {}])) };
  out.created = created;
  out.history = [...(out.history ?? []), { created, created_by: createdBy, comment: "regcli", empty_layer: true }];
  return out;
}

/** A layer added to a config: its uncompressed digest and its history entry's text. */
export interface AddedLayer {
  diffId: string;
  createdBy: string;
  comment?: string;
}

/** A config with layers appended: their diff_ids, and one (non-empty) history entry each, created at `created`. */
export function appendToConfig(config: ConfigDocument, layers: AddedLayer[], created: string): ConfigDocument {
  const out = copyConfig(config);
  const rootfs = out.rootfs ?? { type: "layers", diff_ids: [] };
  out.rootfs = { ...rootfs, type: "layers", diff_ids: [...(rootfs.diff_ids ?? []), ...layers.map((l) => l.diffId)] };
  out.created = created;
  out.history = [...(out.history ?? []), ...layers.map((l) => ({ created, created_by: l.createdBy, ...(l.comment ? { comment: l.comment } : {}) }))];
  return out;
}

/** Docker schema 2 or OCI, as the base manifest is. */
export function familyOf(manifestMediaType: string): Family {
  return manifestMediaType === MediaType.DockerManifest ? "docker" : "oci";
}

/**
 * The media type of a new layer in an image of this family: a Docker schema 2 image keeps Docker's layer types
 * (gzip or plain tar); it has no zstd type, and an OCI zstd layer in it would make a manifest of mixed families.
 */
export function familyLayerType(family: Family, compression: LayerCompression): string {
  if (family === "oci") return layerMediaType(compression);
  if (compression === "zstd") {
    throw new RegcliError("unsupported", "a Docker schema 2 image has no zstd layer type", { hint: "use --compress gzip, or copy the base to OCI media types first (regcli copy BASE oci:DIR)" });
  }
  return compression === "none" ? "application/vnd.docker.image.rootfs.diff.tar" : layerMediaType(compression, true);
}

/** Config bytes as written: compact JSON (its digest is what the manifest names). */
export function configBlob(config: ConfigDocument, mediaType: string): { descriptor: Descriptor; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(config));
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

/**
 * A new image manifest from the base's: every field of the base kept (its media type, annotations, artifactType),
 * the config and layers replaced, `annotations` merged over the base's.
 */
export function rewriteManifest(base: ManifestData, config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): ManifestData {
  if (base.parsed.kind !== "image") throw new RegcliError("general", "rewriteManifest needs an image manifest");
  const doc = JSON.parse(base.bytes.toString("utf8")) as Record<string, unknown>;
  doc.config = config;
  doc.layers = layers;
  setAnnotations(doc, annotations);
  return parseManifest(Buffer.from(JSON.stringify(doc)), base.mediaType, "the new image");
}

/** A new index from the base's: children replaced by digest (`children`: old digest -> new descriptor), annotations merged. */
export function rewriteIndex(base: ManifestData, children: Map<string, Descriptor>, annotations?: Record<string, string>): ManifestData {
  if (base.parsed.kind !== "index") throw new RegcliError("general", "rewriteIndex needs an index");
  const doc = JSON.parse(base.bytes.toString("utf8")) as Record<string, unknown>;
  doc.manifests = base.parsed.index.manifests.map((d) => children.get(d.digest) ?? d);
  setAnnotations(doc, annotations);
  return parseManifest(Buffer.from(JSON.stringify(doc)), base.mediaType, "the new index");
}

function setAnnotations(doc: Record<string, unknown>, annotations: Record<string, string> | undefined): void {
  if (annotations && Object.keys(annotations).length) doc.annotations = { ...((doc.annotations as Record<string, string>) ?? {}), ...annotations };
}
