import { RegcliError } from "../errors.js";
import { MediaType } from "./media-types.js";
import type { Descriptor, ImageIndex, ManifestData } from "./types.js";

/**
 * The referrers tag schema's tag for a subject (distribution-spec 1.1): `<alg>-<ref>`, the algorithm cut to 32
 * characters and the encoded part to 64. Registries without the referrers API keep an index of a subject's
 * referrers under it.
 */
export function referrersTag(subject: string): string {
  const colon = subject.indexOf(":");
  return `${subject.slice(0, colon).slice(0, 32)}-${subject.slice(colon + 1).slice(0, 64)}`;
}

/** A tag of the referrers tag schema: a record, not an image name. */
export function isReferrersTag(name: string | undefined): boolean {
  return name !== undefined && /^(sha256|sha512)-[a-f0-9]{64}$/.test(name);
}

/** cosign's tag schema: the attachments of digest <alg>:<hex> are tagged <alg>-<hex>.sig, .att and .sbom. */
export const COSIGN_SUFFIXES = [".sig", ".att", ".sbom"] as const;

/**
 * A tag that holds referrers rather than an image: the tag schema's `sha256-<hex>` index, cosign's `.sig`/`.att`/
 * `.sbom`. Whole-repository copies leave them out of the tags: with referrers they go with their image (the index
 * rebuilt at the destination by the referrers' copies); without, the index is left behind and cosign's are plain
 * tags. Retention never removes them.
 */
export function isAttachmentTag(tag: string): boolean {
  return isReferrersTag(tag) || (COSIGN_SUFFIXES.some((suffix) => tag.endsWith(suffix)) && isReferrersTag(tag.slice(0, tag.lastIndexOf("."))));
}

/** The subject a manifest or index refers to (OCI 1.1 `subject`), if any. */
export function subjectOf(manifest: ManifestData): Descriptor | undefined {
  return manifest.parsed.kind === "image" ? manifest.parsed.manifest.subject : manifest.parsed.index.subject;
}

/**
 * The descriptor a referrers listing holds for a manifest: its artifactType (the manifest's own, else its
 * config's media type, as the distribution spec says) and its annotations.
 */
export function referrerDescriptor(manifest: ManifestData): Descriptor {
  const doc = manifest.parsed.kind === "image" ? manifest.parsed.manifest : manifest.parsed.index;
  const artifactType = doc.artifactType ?? (manifest.parsed.kind === "image" ? manifest.parsed.manifest.config.mediaType : undefined);
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(artifactType && { artifactType }),
    ...(doc.annotations && Object.keys(doc.annotations).length > 0 && { annotations: doc.annotations }),
  };
}

/** The descriptors of a referrers listing narrowed to one artifact type. */
export function filterReferrers(manifests: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? manifests : manifests.filter((d) => d.artifactType === artifactType);
}

/**
 * The descriptors of a referrers answer (the API's or the tag schema's index): it must be an OCI image index;
 * anything else is refused rather than read as "no referrers".
 */
export function referrersIndex(data: ManifestData, where: string): Descriptor[] {
  if (data.parsed.kind !== "index" || data.mediaType !== MediaType.OciIndex) {
    throw new RegcliError("registry", `invalid referrers list from ${where}: got ${data.mediaType}, not an OCI image index`, {
      code: "REFERRERS_INVALID",
      hint: "report it to the registry's operator (or remove the wrong referrers tag)",
    });
  }
  return (data.parsed.index as ImageIndex).manifests;
}

/** A referrer fetched for `subject` must name it as its subject: a listing that says otherwise is refused. */
export function checkReferrerSubject(manifest: ManifestData, subject: string, where: string): void {
  const named = subjectOf(manifest)?.digest;
  if (named !== subject) {
    throw new RegcliError("integrity", `referrer ${manifest.digest} listed for ${subject} in ${where} has ${named ? `subject ${named}` : "no subject"}`, {
      code: "REFERRERS_INVALID",
    });
  }
}

/** The bytes of a referrers index listing `manifests` (the tag schema's fallback index). */
export function referrersIndexBytes(manifests: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}
