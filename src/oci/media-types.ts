export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** OCI 1.1 artifacts: the artifactType oras gives an artifact that names none, and the layer type of its files. */
export const UNKNOWN_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1";
export const DEFAULT_FILE_MEDIA_TYPE = MediaType.OciLayer;
/** The file name of an artifact's layer (oras push writes it, oras pull reads it). */
export const TITLE_ANNOTATION = "org.opencontainers.image.title";
/** The empty JSON object `{}`: the config of an artifact that has none (image-spec, "Guidelines for Artifact Usage"). */
export const EMPTY_DESCRIPTOR = {
  mediaType: MediaType.OciEmpty,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
} as const;
export const EMPTY_JSON = Buffer.from("{}");

export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
export const IMAGE_MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];

/** What we ask registries for when reading a manifest: every form we can handle, indexes included. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
];

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_MEDIA_TYPES.includes(mediaType);
}

export function isImageManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_MANIFEST_MEDIA_TYPES.includes(mediaType);
}

/** Strip parameters from a Content-Type header ("application/json; charset=utf-8" -> "application/json"). */
export function baseMediaType(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const base = contentType.split(";")[0]!.trim().toLowerCase();
  return base === "" ? undefined : base;
}

export type LayerCompression = "gzip" | "zstd" | "none";
/** The compressions --compress takes. */
export const COMPRESSIONS: readonly LayerCompression[] = ["gzip", "zstd", "none"];

/**
 * How a filesystem layer of this media type is compressed (OCI layers, non-distributable ones, Docker's), or
 * undefined when the media type is not a filesystem layer regcli knows (an artifact's blob, an encrypted layer).
 */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  const oci = /^application\/vnd\.oci\.image\.layer\.(?:nondistributable\.)?v1\.tar(?:\+(gzip|zstd))?$/.exec(mediaType);
  if (oci) return (oci[1] as LayerCompression | undefined) ?? "none";
  const docker = /^application\/vnd\.docker\.image\.rootfs\.(?:foreign\.)?diff\.tar(\.gzip)?$/.exec(mediaType);
  if (docker) return docker[1] ? "gzip" : "none";
  return undefined;
}
