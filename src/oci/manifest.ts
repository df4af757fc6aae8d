import { RegcliError } from "../errors.js";
import { digestOf, isDigest } from "./digest.js";
import { baseMediaType, isImageManifestMediaType, isIndexMediaType, MediaType } from "./media-types.js";
import type { Descriptor, ImageIndex, ImageManifest, ManifestData, ParsedManifest, Platform } from "./types.js";

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_INDEX_DEPTH = 4;

function invalid(where: string, reason: string): RegcliError {
  return new RegcliError("registry", `invalid manifest from ${where}: ${reason}`, { code: "MANIFEST_INVALID" });
}

function checkDescriptor(value: unknown, where: string, field: string): Descriptor {
  if (typeof value !== "object" || value === null) throw invalid(where, `${field} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== "string" || d.mediaType === "") throw invalid(where, `${field}.mediaType is missing`);
  if (typeof d.digest !== "string" || !isDigest(d.digest)) throw invalid(where, `${field}.digest is not a valid digest`);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw invalid(where, `${field}.size is not a non-negative integer`);
  }
  return value as Descriptor;
}

/**
 * Parse manifest bytes, deciding between image manifest and index from the document's own mediaType, the
 * Content-Type it was served with, and its shape. Documents that are ambiguous (both `manifests` and
 * `layers`) or whose declared types disagree are refused, so what is parsed is what was hashed.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, where: string): ManifestData {
  if (bytes.length > MAX_MANIFEST_BYTES) throw invalid(where, `larger than ${MAX_MANIFEST_BYTES} bytes`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw invalid(where, "not valid JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalid(where, "not a JSON object");
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  const served = baseMediaType(contentType);
  if (doc.schemaVersion === 1 || served === MediaType.DockerSchema1Signed) {
    throw new RegcliError("registry", `unsupported manifest from ${where}: Docker schema 1 is deprecated`, {
      code: "MANIFEST_UNSUPPORTED",
      hint: "re-push the image with a current client",
    });
  }
  if (doc.schemaVersion !== 2) throw invalid(where, "schemaVersion is not 2");
  const hasManifests = "manifests" in doc;
  const hasLayers = "layers" in doc || "config" in doc;
  if (hasManifests && hasLayers) throw invalid(where, "has both manifests and layers/config (ambiguous)");
  if (declared && served && served !== "application/json" && served !== "application/octet-stream" && declared !== served) {
    throw invalid(where, `mediaType ${declared} disagrees with Content-Type ${served}`);
  }
  let mediaType = declared ?? (served && served !== "application/json" && served !== "application/octet-stream" ? served : undefined);
  let parsed: ParsedManifest;
  if (hasManifests) {
    if (!Array.isArray(doc.manifests)) throw invalid(where, "manifests is not an array");
    doc.manifests.forEach((m, i) => checkDescriptor(m, where, `manifests[${i}]`));
    mediaType ??= MediaType.OciIndex;
    if (!isIndexMediaType(mediaType)) throw invalid(where, `index has mediaType ${mediaType}`);
    parsed = { kind: "index", index: doc as unknown as ImageIndex };
  } else {
    checkDescriptor(doc.config, where, "config");
    if (!Array.isArray(doc.layers)) throw invalid(where, "layers is not an array");
    doc.layers.forEach((l, i) => checkDescriptor(l, where, `layers[${i}]`));
    mediaType ??= MediaType.OciManifest;
    if (isIndexMediaType(mediaType)) throw invalid(where, `image manifest has index mediaType ${mediaType}`);
    if (!isImageManifestMediaType(mediaType)) {
      throw new RegcliError("registry", `unsupported manifest media type ${mediaType} from ${where}`, { code: "MANIFEST_UNSUPPORTED" });
    }
    parsed = { kind: "image", manifest: doc as unknown as ImageManifest };
  }
  return { bytes, digest: digestOf(bytes), mediaType, parsed };
}

/** A manifest fetched by an index entry must be as long as the entry says (its digest is checked on fetch). */
export function checkDescriptorSize(desc: Descriptor, manifest: ManifestData, where: string): void {
  if (desc.size !== manifest.bytes.length) {
    throw new RegcliError("integrity", `manifest ${desc.digest} from ${where} is ${manifest.bytes.length} bytes but its index says ${desc.size}`);
  }
}

/** Every blob an image manifest references (config first, then layers). */
export function blobsOf(manifest: ImageManifest): Descriptor[] {
  return [manifest.config, ...manifest.layers];
}

/**
 * A BuildKit attestation in an index: a child of platform unknown/unknown whose annotations name the image it
 * describes (vnd.docker.reference.digest). Its config looks like an image's, its layers are in-toto statements.
 */
export function isAttestation(desc: Descriptor): boolean {
  return desc.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";
}

/**
 * An OCI artifact rather than a container image: it declares an artifactType, or its config is no image config
 * (an SBOM, a signature, a Helm chart). Its layers are files, not filesystem layers.
 */
export function isArtifact(manifest: ImageManifest): boolean {
  return manifest.artifactType !== undefined || (manifest.config.mediaType !== MediaType.OciConfig && manifest.config.mediaType !== MediaType.DockerConfig);
}

/** What an artifact is, for messages and listings: its artifactType, else its config's media type. */
export function artifactTypeOf(manifest: ImageManifest): string {
  return manifest.artifactType ?? manifest.config.mediaType;
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return "unknown";
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** A config's platform as listings show it: os/architecture[/variant], "unknown" for a part the config lacks. */
export function configPlatformText(config: object): string {
  const c = config as Record<string, unknown>;
  const text = (key: string) => (typeof c[key] === "string" && c[key] ? (c[key] as string) : "unknown");
  return formatPlatform(configPlatform(config) ?? { os: text("os"), architecture: text("architecture") });
}

/** The platform an image config states (os, architecture, variant, os.version, os.features); none without os and architecture. */
export function configPlatform(config: object): Platform | undefined {
  const c = config as Record<string, unknown>;
  const text = (key: string) => (typeof c[key] === "string" && c[key] ? (c[key] as string) : undefined);
  const [os, architecture, variant, osVersion] = [text("os"), text("architecture"), text("variant"), text("os.version")];
  if (!os || !architecture) return undefined;
  const features = c["os.features"];
  return {
    os,
    architecture,
    ...(variant ? { variant } : {}),
    ...(osVersion ? { "os.version": osVersion } : {}),
    ...(Array.isArray(features) && features.length && features.every((f) => typeof f === "string") ? { "os.features": features as string[] } : {}),
  };
}

export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new RegcliError("usage", `invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * A --platform value: `all` (every platform of an index, as crane's --all-platforms), or one or more
 * os/arch[/variant] separated by commas (`linux/amd64,linux/arm64`), each once.
 */
export function parsePlatforms(text: string): "all" | Platform[] {
  if (text.trim() === "all") return "all";
  const platforms: Platform[] = [];
  for (const part of text.split(",").map((p) => p.trim())) {
    const platform = parsePlatform(part);
    if (!platforms.some((p) => formatPlatform(p) === formatPlatform(platform))) platforms.push(platform);
  }
  return platforms;
}

/**
 * What a --platform value asks of a copy: one platform, that platform's image alone (its own digest); several, the
 * index reduced to their children (a new index, a new digest); `all`, the whole index ({}).
 */
export function copyPlatforms(selection: "all" | Platform[]): { platform?: Platform; platforms?: Platform[] } {
  if (selection === "all") return {};
  return selection.length === 1 ? { platform: selection[0] } : { platforms: selection };
}

/** A --platform value for what handles one image only: a list or `all` is a usage error saying `why`. */
export function parseOnePlatform(text: string, why: string): Platform {
  const selection = parsePlatforms(text);
  if (selection === "all" || selection.length !== 1) {
    throw new RegcliError("usage", `--platform ${text}: ${why}`, { hint: "give one platform, e.g. --platform linux/amd64" });
  }
  return selection[0]!;
}

const DEFAULT_VARIANTS: Record<string, string> = { arm64: "v8", arm: "v7" };

/** Does the descriptor's platform satisfy the wanted one? A missing variant in `want` matches any. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant) return true;
  const haveVariant = have.variant ?? DEFAULT_VARIANTS[have.architecture];
  return haveVariant === want.variant;
}

export function selectPlatform(index: ImageIndex, want: Platform, where: string): Descriptor {
  const found = index.manifests.find((d) => platformMatches(d.platform, want));
  if (!found) {
    const available = index.manifests.map((d) => formatPlatform(d.platform)).join(", ");
    throw new RegcliError("not-found", `no ${formatPlatform(want)} image in ${where}`, {
      hint: `available platforms: ${available || "none"}`,
    });
  }
  return found;
}

/** The platform this machine runs, in OCI terms (as `docker pull` picks by default). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" };
  const os = process.platform === "win32" ? "windows" : process.platform;
  return { os, architecture: arch[process.arch] ?? process.arch };
}

/** Artifacts are not images: the commands that read a filesystem refuse them, pointing to `artifact pull`. */
export function refuseArtifact(manifest: ImageManifest, display: string): void {
  if (!isArtifact(manifest)) return;
  throw new RegcliError("usage", `${display} is an artifact (${artifactTypeOf(manifest)}), not a container image`, { hint: `get its files with: regcli artifact pull ${display} -o DIR` });
}
