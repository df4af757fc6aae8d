import { digestOf } from "./digest.js";
import { parseManifest, selectPlatform } from "./manifest.js";
import { MediaType } from "./media-types.js";
import type { Descriptor, ManifestData, Platform } from "./types.js";

const OCI_EQUIVALENT: Record<string, string> = {
  [MediaType.DockerManifest]: MediaType.OciManifest,
  [MediaType.DockerManifestList]: MediaType.OciIndex,
  [MediaType.DockerConfig]: MediaType.OciConfig,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  [MediaType.DockerForeignLayerGzip]: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.docker.image.rootfs.diff.tar": MediaType.OciLayer,
};

const ociType = (mediaType: string) => OCI_EQUIVALENT[mediaType] ?? mediaType;

/**
 * The OCI form of a Docker v2 schema 2 manifest or manifest list (what `skopeo copy ... oci:` writes): the same
 * blobs under OCI media types. `children` maps an index's child digests to their converted descriptors.
 * An OCI document is returned unchanged, so its digest is kept.
 */
export function toOciManifest(m: ManifestData, children: Map<string, Descriptor> = new Map()): ManifestData {
  if (m.mediaType !== MediaType.DockerManifest && m.mediaType !== MediaType.DockerManifestList) return m;
  return withDescriptors(m, children, true);
}

/**
 * The document with the descriptors `replaced` maps (old digest -> new descriptor: a re-compressed layer, a child
 * written under another digest), other fields kept; with `toOci` also in its OCI form. A new digest.
 */
export function withDescriptors(m: ManifestData, replaced: Map<string, Descriptor>, toOci: boolean): ManifestData {
  const convertDescriptor = (d: Descriptor) => replaced.get(d.digest) ?? (toOci ? { ...d, mediaType: ociType(d.mediaType) } : d);
  const doc = JSON.parse(m.bytes.toString("utf8")) as Record<string, unknown>;
  if (toOci) doc.mediaType = ociType(m.mediaType);
  if (m.parsed.kind === "image") {
    doc.config = convertDescriptor(m.parsed.manifest.config);
    doc.layers = m.parsed.manifest.layers.map(convertDescriptor);
  } else {
    doc.manifests = m.parsed.index.manifests.map(convertDescriptor);
  }
  const bytes = Buffer.from(JSON.stringify(doc));
  const converted = parseManifest(bytes, toOci ? ociType(m.mediaType) : m.mediaType, "conversion");
  return { ...converted, digest: digestOf(bytes) };
}

/**
 * An index reduced to the children for `platforms` (in the index's order, other fields kept): a new document with a
 * new digest. Each platform must be in the index (not-found naming the ones it has).
 */
export function reduceIndex(m: ManifestData, platforms: Platform[], where: string): ManifestData {
  if (m.parsed.kind !== "index") return m;
  const index = m.parsed.index;
  const keep = new Set(platforms.map((p) => selectPlatform(index, p, where).digest));
  const doc = JSON.parse(m.bytes.toString("utf8")) as Record<string, unknown>;
  doc.manifests = index.manifests.filter((d) => keep.has(d.digest));
  const bytes = Buffer.from(JSON.stringify(doc));
  return { ...parseManifest(bytes, m.mediaType, where), digest: digestOf(bytes) };
}
