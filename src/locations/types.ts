import type { Hash } from "node:crypto";
import type { Readable } from "node:stream";
import type { Descriptor, ManifestData } from "../oci/index.js";
import type { ListOptions } from "../registry/client.js";

export type { ListOptions };

/** Where blobs could be mounted from, when source and destination are repositories of one registry. */
export interface MountOrigin {
  registry: string;
  repository: string;
}

/** Every place an image can be read from: a registry repository, an OCI layout, an archive, the local store. */
export interface ImageSource {
  /** For messages: "localhost:5000/app". */
  readonly description: string;
  readonly mountOrigin?: MountOrigin;
  /** A manifest or index by tag or digest, verified against its digest. */
  getManifest(reference: string): Promise<ManifestData>;
  /** What a tag or digest names (digest, media type, size), without the manifest body where the location can (HEAD). */
  resolve(reference: string): Promise<Descriptor>;
  /**
   * A blob's bytes as a stream that fails at its end unless digest and size match (a size below 0: not known
   * beforehand, only the digest is checked). With `offset` the stream starts there (resume); see BlobReadOptions
   * for how the part before it is verified.
   */
  openBlob(desc: Descriptor, options?: BlobReadOptions): Promise<Readable>;
  listTags(options?: ListOptions): Promise<string[]>;
  /**
   * The manifests whose `subject` is `digest` (OCI 1.1 referrers: signatures, SBOMs, attestations), as descriptors
   * with artifactType and annotations; empty when there are none. A registry answers from its referrers API, else
   * from the referrers tag schema (the index tagged `sha256-<hex>`); a layout, archive or the store from its own
   * record (see OciLayout). With `filter.artifactType`, only those.
   */
  referrers(digest: string, filter?: ReferrerFilter): Promise<Descriptor[]>;
}

/** What a referrers listing may be narrowed to. */
export interface ReferrerFilter {
  artifactType?: string;
}

export interface BlobReadOptions {
  /** Start at this byte: an interrupted transfer resumes rather than restarts. */
  offset?: number;
  /**
   * The hash of the `offset` bytes already held, so the stream still verifies the whole blob. Without it, only
   * the size is checked and the destination must verify the digest (registries hash every upload).
   */
  prefixHash?: Hash;
}

/** Opens the source side of one blob transfer; destinations call it only when bytes must move. */
export type OpenBlob = (options?: BlobReadOptions) => Promise<Readable>;

export type BlobOutcome = "exists" | "mounted" | "uploaded";

/** Every place an image can be written to. */
export interface ImageDestination {
  readonly description: string;
  /** A registry repository: where other repositories of that registry can mount its blobs from. */
  readonly mountOrigin?: MountOrigin;
  /** Store a blob unless present; `open` is called only when bytes must actually move. */
  putBlob(desc: Descriptor, open: OpenBlob, mountFrom?: MountOrigin): Promise<BlobOutcome>;
  /** The digest currently stored under a tag or digest, if any. */
  manifestDigest(reference: string): Promise<string | undefined>;
  /** Every tag present (one listing instead of a check per tag, for whole-repository copies). */
  listTags?(): Promise<string[]>;
  /**
   * Store manifest bytes exactly as given, under a tag or its digest. A manifest with a `subject` is also made
   * findable by referrers(subject): where the location has no referrers API, it updates the referrers tag schema's
   * index (a registry) or its own record (a layout, the store).
   */
  putManifest(manifest: ManifestData, reference: string): Promise<void>;
}
