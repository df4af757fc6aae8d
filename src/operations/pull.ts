import { RegcliError } from "../errors.js";
import { withSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import { registryDestination } from "../locations/registry.js";
import { hostPlatform, refuseArtifact, type ManifestData, type Platform } from "../oci/index.js";
import { manifestReference, parseReference, type Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { fullName } from "../locations/image-names.js";
import { LocalStore } from "../store/store.js";
import { CopyEngine, type CopyEvent, type CopyOptions, type CopyResult, type CopyStats, type ReferrerOptions } from "./copy.js";
import { transfer } from "./transfer.js";

export interface PullOptions {
  platform?: Platform;
  /** Keep an index reduced to these platforms' children (a new digest); not with `platform`. */
  platforms?: Platform[];
  /** Keep the whole index (every platform), so a later push restores it with the same digest. */
  allPlatforms?: boolean;
  jobs?: number;
  onEvent?: (e: CopyEvent) => void;
  byteProgress?: boolean;
  /** Write to this location (OCI layout or archive) instead of the local store. */
  output?: LocationSpec;
  /** Keep Docker manifests byte for byte in OCI outputs instead of converting them (as skopeo does). */
  preserveDigests?: boolean;
  /** Also bring the image's referrers (signatures, SBOMs) into the store or output. */
  referrers?: ReferrerOptions;
  store?: LocalStore;
}

/** What a pull moved, in a pull's words (it downloads; nothing is mounted into a store or a file). */
export interface PullStats {
  blobsDownloaded: number;
  /** Bytes downloaded by this run: a blob resumed from a kept partial counts from where it resumed. */
  bytesDownloaded: number;
  blobsExisting: number;
  manifests: number;
}

export interface PullResult extends Omit<CopyResult, "stats"> {
  name: string;
  stats: PullStats;
}

function pullStats(stats: CopyStats): PullStats {
  return { blobsDownloaded: stats.blobsUploaded, bytesDownloaded: stats.bytesUploaded, blobsExisting: stats.blobsExisting, manifests: stats.manifests };
}

/** Pull an image from any location (a registry, a layout, an archive) into the local store, or into `output`. */
export async function pull(ctx: RegistryContext, src: LocationSpec, options: PullOptions = {}): Promise<PullResult & { source: string }> {
  const platform = options.allPlatforms || options.platforms ? undefined : (options.platform ?? hostPlatform());
  const display = src.kind === "registry" ? src.ref.full : undefined;
  // Artifacts are not images: their files come with `artifact pull` (a copy keeps them whole).
  const accept = (m: ManifestData, where: string) => {
    if (m.parsed.kind === "image") refuseArtifact(m.parsed.manifest, display ?? where);
  };
  const copyOptions = { platform, platforms: options.platforms, jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress, accept, referrers: options.referrers };
  if (options.output) {
    const result = await transfer(ctx, src, options.output, { ...copyOptions, preserveDigests: options.preserveDigests });
    return { ...result, name: result.destination, stats: pullStats(result.stats) };
  }
  return withSource(ctx, src, async (opened) => {
    const name = opened.identity?.name;
    if (!name) {
      throw new RegcliError("usage", `${opened.display} does not say the image's name`, { hint: `name it: regcli copy ${opened.display} store:NAME:TAG` });
    }
    const engine = new CopyEngine(copyOptions);
    const store = options.store ?? new LocalStore();
    const result = await store.withIngest(() => engine.copy(opened.source, opened.reference, store.layout, name));
    // Remember the registry repository it came from, so a push there mounts its blobs.
    if (opened.source.mountOrigin) await store.recordOrigin(name, opened.source.mountOrigin);
    return { ...result, name, source: opened.display, stats: pullStats(result.stats) };
  });
}

/**
 * Why `push SOURCE TARGET` cannot read SOURCE, which is no layout directory or archive file: a path is missing; a
 * name is looked up in the local store (whose images push under their own name); a registry reference is copied.
 * Never a suggestion that reads a bare name from docker.io.
 */
export async function pushSourceError(text: string, target: string, store = new LocalStore()): Promise<RegcliError> {
  let ref: Reference | undefined;
  try {
    if (!/^[.~/]|\\|\.(tar|tgz|tar\.gz)$/i.test(text)) ref = parseReference(text);
  } catch {
    // not a name: a path
  }
  if (!ref) {
    return new RegcliError("usage", `push source ${text}: no such file or directory`, { hint: "give an OCI layout directory or an archive file (docker save, regcli image save)" });
  }
  const name = fullName(ref);
  if (await store.layout.find(name).catch(() => undefined)) {
    return new RegcliError("usage", `${text} is an image in the local store (${name}), which push sends under its own name`, {
      hint: `push it from the store: regcli push store:${text} ${target}, or tag it first: regcli image tag ${text} ${target} && regcli push ${target}`,
    });
  }
  if (text.startsWith(`${ref.registry}/`) || ref.registry !== "docker.io") {
    return new RegcliError("usage", `push source ${text} is a registry reference, not a local image or file`, { hint: `to copy between registries: regcli copy ${text} ${target}` });
  }
  return new RegcliError("not-found", `push source ${text}: no such file or directory, and no image ${name} in the local store`, {
    hint: "see regcli images, or give an OCI layout directory or an archive file",
  });
}

/** Push an image from the store (by its name) or from a location (layout, archive) to a registry reference. */
export async function push(
  ctx: RegistryContext,
  target: Reference,
  from: { kind: "store"; store?: LocalStore } | { kind: "location"; spec: LocationSpec },
  options: Pick<CopyOptions, "jobs" | "onEvent" | "byteProgress" | "referrers" | "compress"> & { preserveDigests?: boolean } = {},
): Promise<CopyResult> {
  const dst: LocationSpec = { kind: "registry", ref: target };
  if (from.kind === "location") return transfer(ctx, from.spec, dst, options);
  const store = from.store ?? new LocalStore();
  const engine = new CopyEngine({ jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress, referrers: options.referrers, compress: options.compress });
  const name = fullName(target);
  // Blobs of an image pulled from this registry are mounted from the repository they came from.
  const source = await store.sourceFor(name);
  return engine.copy(source, name, registryDestination(ctx, target), manifestReference(target));
}
