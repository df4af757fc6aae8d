/*
 * How an OCI layout (a directory, an oci-archive, the local store) records referrers, as regctl's ocidir does:
 * with the referrers tag schema of distribution-spec 1.1 inside index.json. The referrers of a subject are an
 * OCI index blob listing one descriptor per referring manifest (mediaType, digest, size, artifactType,
 * annotations: oci/referrers.ts referrerDescriptor), named by the tag `<alg>-<hex>` of the subject's digest
 * (referrersTag). Other tools read it as one more tagged index (skopeo, umoci) or as the fallback tag (regctl);
 * index.json keeps the referrer manifests reachable, so a garbage collection that walks index.json keeps them.
 */

/** A tag of the referrers tag schema: a record, not an image name. */
export function isReferrersTag(name: string | undefined): boolean {
  return name !== undefined && /^(sha256|sha512)-[a-f0-9]{64}$/.test(name);
}
