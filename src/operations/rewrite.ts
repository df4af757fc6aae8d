import { resolve } from "node:path";
import { RegcliError } from "../errors.js";
import { openDestination, openSource } from "../locations/open.js";
import { OciLayout } from "../locations/oci-layout.js";
import type { LocationSpec } from "../locations/parse.js";
import type { ImageDestination, ImageSource, OpenBlob } from "../locations/types.js";
import {
  checkDescriptorSize,
  configPlatform,
  formatPlatform,
  isArtifact,
  isAttestation,
  MAX_INDEX_DEPTH,
  platformMatches,
  refuseArtifact,
  selectPlatform,
  type Descriptor,
  type ManifestData,
  type Platform,
} from "../oci/index.js";
import { configBlob, familyOf, rewriteIndex, rewriteManifest, type ConfigDocument, type Family } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";
import { bytesBlob } from "./blob-readers.js";
import { carryOtherImages, CopyEngine, type CopyEvent, type CopyStats } from "./copy.js";
import { readConfig } from "./inspect.js";

/** One platform's image, as an edit sees it. */
export interface PlatformImage {
  manifest: ManifestData;
  config: ConfigDocument;
  /** Docker schema 2 or OCI: what the new layers' media types must be. */
  family: Family;
  /** From the index entry, else from the config. */
  platform?: Platform;
  /** Where the image's layers can be read (openBlob of a layer's descriptor). */
  source: ImageSource;
  display: string;
}

/** A blob of the new image that the base does not have: its bytes, or another image's location it is copied from. */
export type NewBlob = { descriptor: Descriptor; open: OpenBlob } | { descriptor: Descriptor; from: ImageSource };

/** What an edit makes of one image. */
export interface ImageEdit {
  config: ConfigDocument;
  /** The new image's layers in order: the base's (copied from it) and new ones (in `blobs`). */
  layers: Descriptor[];
  blobs?: NewBlob[];
  /** Merged over the image manifest's own. */
  annotations?: Record<string, string>;
}

export type Editor = (image: PlatformImage) => Promise<ImageEdit>;

export interface RewriteOptions {
  edit: Editor;
  /** Of an index: the children to edit (default all); the others are kept as they are. */
  platforms?: Platform[];
  /** Merged over the annotations of the document written under the target's tag (the index, or the image). */
  annotations?: Record<string, string>;
  jobs?: number;
  onEvent?: (event: CopyEvent) => void;
  byteProgress?: boolean;
}

export interface RewrittenImage {
  platform?: string;
  from: string;
  to: string;
  config: string;
}

export interface RewriteResult {
  digest: string;
  mediaType: string;
  source: string;
  destination: string;
  /** Every image edited: its old and new manifest digest and its new config. */
  images: RewrittenImage[];
  /** Digests of the blobs the edits made (new layers, new configs). */
  newBlobs: string[];
  stats: CopyStats;
}

/**
 * Make a new image from the one `source` names and write it to `target`, on any locations: `edit` makes each
 * selected platform image's new config and layers; the base's blobs are copied (or mounted, or found present),
 * new blobs put once per destination, then the child manifests, then the new index with its annotations kept.
 */
export async function rewriteImage(ctx: RegistryContext, source: LocationSpec, target: LocationSpec, options: RewriteOptions): Promise<RewriteResult> {
  const opened = await openSource(ctx.source, source, { compressLayers: target.kind === "registry" });
  try {
    const destination = await openDestination(ctx.destination, target, opened.identity);
    try {
      const engine = new CopyEngine({ jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress });
      const run = new Rewrite(engine, opened.source, destination.destination, opened.display, options);
      const top = await opened.source.getManifest(opened.reference);
      const written = await run.manifest(top, destination.reference, 0, true);
      // Written back into the archive it came from: the archive is written anew, with the other images it held.
      if (source.kind === "archive" && target.kind === "archive" && resolve(source.file) === resolve(target.file) && opened.source instanceof OciLayout) {
        await carryOtherImages(engine, opened.source, destination.destination, destination.reference);
      }
      await destination.finish();
      return { digest: written.digest, mediaType: written.mediaType, source: opened.display, destination: destination.display, images: run.images, newBlobs: [...run.newBlobs], stats: engine.stats };
    } catch (err) {
      await destination.abort();
      throw err;
    }
  } finally {
    await opened.close();
  }
}

class Rewrite {
  readonly images: RewrittenImage[] = [];
  readonly newBlobs = new Set<string>();

  constructor(
    private readonly engine: CopyEngine,
    private readonly src: ImageSource,
    private readonly dst: ImageDestination,
    private readonly display: string,
    private readonly options: RewriteOptions,
  ) {}

  /** Write the new form of `manifest` under `reference`; returns what was written. */
  async manifest(manifest: ManifestData, reference: string, depth: number, top: boolean, platform?: Platform): Promise<ManifestData> {
    const annotations = top ? this.options.annotations : undefined;
    if (manifest.parsed.kind === "image") {
      refuseArtifact(manifest.parsed.manifest, this.display);
      const { config } = await readConfig(this.src, manifest, this.display);
      const own = platform ?? configPlatform(config);
      if (top && this.options.platforms && !this.options.platforms.some((p) => platformMatches(own, p))) {
        throw new RegcliError("not-found", `${this.display} is a ${formatPlatform(own)} image, not ${this.options.platforms.map(formatPlatform).join(", ")}`);
      }
      return this.image(manifest, config, reference, own, annotations);
    }
    if (depth >= MAX_INDEX_DEPTH) throw new RegcliError("registry", `index nesting in ${this.display} is deeper than ${MAX_INDEX_DEPTH}`);
    const index = manifest.parsed.index;
    // Each platform asked for must be there (the error lists the ones that are).
    const wanted = this.options.platforms && depth === 0 ? new Set(this.options.platforms.map((p) => selectPlatform(index, p, this.display).digest)) : undefined;
    const children = new Map<string, Descriptor>();
    await Promise.all(
      index.manifests.map(async (child) => {
        const data = await this.src.getManifest(child.digest);
        checkDescriptorSize(child, data, this.display);
        const edited = (!wanted || wanted.has(child.digest)) && !isAttestation(child) && (data.parsed.kind === "index" || !isArtifact(data.parsed.manifest));
        if (!edited) {
          // Kept as it is (another platform, an attestation): copied with everything below it.
          await this.engine.copy(this.src, child.digest, this.dst, child.digest);
          return;
        }
        const written = await this.manifest(data, child.digest, depth + 1, false, child.platform);
        if (written.digest !== child.digest) children.set(child.digest, { ...child, mediaType: written.mediaType, digest: written.digest, size: written.bytes.length });
      }),
    );
    const output = rewriteIndex(manifest, children, annotations);
    await this.engine.putManifest(this.dst, output, reference === manifest.digest ? output.digest : reference);
    return output;
  }

  private async image(manifest: ManifestData, config: ConfigDocument, reference: string, platform: Platform | undefined, annotations: Record<string, string> | undefined): Promise<ManifestData> {
    if (manifest.parsed.kind !== "image") throw new RegcliError("general", "not an image manifest");
    const base = manifest.parsed.manifest;
    const edit = await this.options.edit({ manifest, config, family: familyOf(manifest.mediaType), platform, source: this.src, display: this.display });
    const added = new Map((edit.blobs ?? []).map((b) => [b.descriptor.digest, b]));
    const baseLayers = new Map(base.layers.map((l) => [l.digest, l]));
    const newConfig = configBlob(edit.config, base.config.mediaType);
    this.newBlobs.add(newConfig.descriptor.digest);
    const unknown = edit.layers.find((layer) => !added.has(layer.digest) && !baseLayers.has(layer.digest));
    if (unknown) throw new RegcliError("general", `layer ${unknown.digest} is neither the base's nor a new one`);
    await Promise.all([
      this.engine.putBlob(this.dst, newConfig.descriptor, bytesBlob(newConfig.bytes, newConfig.descriptor, "the new config")),
      ...edit.layers.map((layer) => {
        const blob = added.get(layer.digest);
        if (!blob) return this.engine.copyBlobs(this.src, this.dst, [baseLayers.get(layer.digest)!]);
        if ("from" in blob) return this.engine.copyBlobs(blob.from, this.dst, [blob.descriptor]);
        this.newBlobs.add(layer.digest);
        return this.engine.putBlob(this.dst, blob.descriptor, blob.open);
      }),
    ]);
    const output = rewriteManifest(manifest, newConfig.descriptor, edit.layers, { ...edit.annotations, ...annotations });
    await this.engine.putManifest(this.dst, output, reference === manifest.digest ? output.digest : reference);
    this.images.push({ ...(platform ? { platform: formatPlatform(platform) } : {}), from: manifest.digest, to: output.digest, config: newConfig.descriptor.digest });
    return output;
  }
}
