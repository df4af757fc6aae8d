import { MediaType, type Descriptor, type ImageIndex, type ManifestData } from "../oci/index.js";
import type { ReferrerFilter } from "./types.js";

/*
 * How an OCI layout (a directory, an oci-archive, the local store) records referrers, as regctl's ocidir does:
 * with the referrers tag schema of distribution-spec 1.1 inside index.json. The referrers of a subject are an
 * OCI index blob listing one descriptor per referring manifest (mediaType, digest, size, artifactType,
 * annotations), named by the tag `<alg>-<hex>` of the subject's digest (the hex cut at 64 characters). Other
 * tools read it as one more tagged index (skopeo, umoci) or as the fallback tag (regctl); index.json keeps the
 * referrer manifests reachable, so a garbage collection that walks index.json keeps them.
 */

/** The tag naming the referrers of `digest` (sha256:abc... -> sha256-abc...). */
export function referrersTag(digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `${alg}-${hex.slice(0, 64)}`;
}

/** A tag of the referrers tag schema: a record, not an image name. */
export function isReferrersTag(name: string | undefined): boolean {
  return name !== undefined && /^(sha256|sha512)-[a-f0-9]{64}$/.test(name);
}

/** The descriptor of a manifest that has a subject, as a referrers listing gives it; undefined without a subject. */
export function referrerEntry(manifest: ManifestData): { subject: string; descriptor: Descriptor } | undefined {
  const doc = manifest.parsed.kind === "image" ? manifest.parsed.manifest : manifest.parsed.index;
  if (!doc.subject) return undefined;
  // An image manifest without artifactType is typed by its config (image-spec's guidance for referrers).
  const artifactType = doc.artifactType ?? (manifest.parsed.kind === "image" ? manifest.parsed.manifest.config.mediaType : undefined);
  const descriptor: Descriptor = {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(artifactType ? { artifactType } : {}),
    ...(doc.annotations && Object.keys(doc.annotations).length ? { annotations: doc.annotations } : {}),
  };
  return { subject: doc.subject.digest, descriptor };
}

/** The record index with `added` in it (replacing an entry of the same digest): its bytes. */
export function referrersIndexBytes(existing: Descriptor[], added: Descriptor[]): Buffer {
  const manifests = existing.filter((d) => !added.some((a) => a.digest === d.digest)).concat(added);
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  return Buffer.from(JSON.stringify(index));
}

export function filterReferrers(list: Descriptor[], filter?: ReferrerFilter): Descriptor[] {
  return filter?.artifactType ? list.filter((d) => d.artifactType === filter.artifactType) : list;
}
