import type { LocationSpec } from "../locations/parse.js";
import { registryDestination, registrySource } from "../locations/registry.js";
import { hostPlatform, type Platform } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { LocalStore } from "../store/store.js";
import { CopyEngine, type CopyEvent, type CopyOptions, type CopyResult, type CopyStats } from "./copy.js";
import { manifestReference } from "./inspect.js";
import { transfer } from "./transfer.js";

export interface PullOptions {
  platform?: Platform;
  /** Keep the whole index (every platform), so a later push restores it with the same digest. */
  allPlatforms?: boolean;
  jobs?: number;
  onEvent?: (e: CopyEvent) => void;
  byteProgress?: boolean;
  /** Write to this location (OCI layout or archive) instead of the local store. */
  output?: LocationSpec;
  /** Keep Docker manifests byte for byte in OCI outputs instead of converting them (as skopeo does). */
  preserveDigests?: boolean;
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

/** The name an image has in the local store: its full reference (name:tag, or name@digest). */
export function storeName(ref: Reference): string {
  return ref.tag ? `${ref.name}:${ref.tag}` : `${ref.name}@${ref.digest}`;
}

export async function pull(ctx: RegistryContext, ref: Reference, options: PullOptions = {}): Promise<PullResult> {
  const platform = options.allPlatforms ? undefined : (options.platform ?? hostPlatform());
  const copyOptions = { platform, jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress };
  if (options.output) {
    const src: LocationSpec = { kind: "registry", ref };
    const result = await transfer(ctx, src, options.output, { ...copyOptions, preserveDigests: options.preserveDigests });
    return { ...result, name: result.destination, stats: pullStats(result.stats) };
  }
  const engine = new CopyEngine(copyOptions);
  const store = options.store ?? new LocalStore();
  const name = storeName(ref);
  const result = await store.withIngest(() => engine.copy(registrySource(ctx, ref), manifestReference(ref), store.layout, name));
  await store.recordOrigin(name, { registry: ref.registry, repository: ref.repository });
  return { ...result, name, stats: pullStats(result.stats) };
}

/** Push an image from the store (by its name) or from a location (layout, archive) to a registry reference. */
export async function push(
  ctx: RegistryContext,
  target: Reference,
  from: { kind: "store"; store?: LocalStore } | { kind: "location"; spec: LocationSpec },
  options: Pick<CopyOptions, "jobs" | "onEvent" | "byteProgress"> & { preserveDigests?: boolean } = {},
): Promise<CopyResult> {
  const dst: LocationSpec = { kind: "registry", ref: target };
  if (from.kind === "location") return transfer(ctx, from.spec, dst, options);
  const store = from.store ?? new LocalStore();
  const engine = new CopyEngine({ jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress });
  const name = storeName(target);
  // Blobs of an image pulled from this registry are mounted from the repository they came from.
  const source = await store.sourceFor(name);
  return engine.copy(source, name, registryDestination(ctx, target), target.digest ?? target.tag ?? "latest");
}
