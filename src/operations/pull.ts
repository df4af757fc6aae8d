import { resolve } from "node:path";
import { OciLayout } from "../locations/oci-layout.js";
import { openDestination, openSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import { registrySource } from "../locations/registry.js";
import { hostPlatform, type Platform } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { LocalStore } from "../store/store.js";
import { CopyEngine, type CopyEvent, type CopyResult } from "./copy.js";
import { manifestReference } from "./inspect.js";

export interface PullOptions {
  platform?: Platform;
  /** Keep the whole index (every platform), so a later push restores it with the same digest. */
  allPlatforms?: boolean;
  jobs?: number;
  onEvent?: (e: CopyEvent) => void;
  /** Write a standalone OCI layout here instead of the local store. */
  outputDir?: string;
  store?: LocalStore;
}

/** The name an image has in the local store: its full reference (name:tag, or name@digest). */
export function storeName(ref: Reference): string {
  return ref.tag ? `${ref.name}:${ref.tag}` : `${ref.name}@${ref.digest}`;
}

export async function pull(ctx: RegistryContext, ref: Reference, options: PullOptions = {}): Promise<CopyResult & { name: string }> {
  const platform = options.allPlatforms ? undefined : (options.platform ?? hostPlatform());
  const engine = new CopyEngine({ platform, jobs: options.jobs, onEvent: options.onEvent });
  const source = registrySource(ctx, ref);
  if (options.outputDir) {
    const layout = new OciLayout(resolve(options.outputDir), options.outputDir);
    await layout.init();
    const name = ref.tag ?? "latest";
    return { ...(await engine.copy(source, manifestReference(ref), layout, name)), name };
  }
  const store = options.store ?? new LocalStore();
  const name = storeName(ref);
  const result = await store.withIngest(() => engine.copy(source, manifestReference(ref), store.layout, name));
  return { ...result, name };
}

/** Push an image from the store (by its name) or from a location (oci:DIR[:TAG]) to a registry reference. */
export async function push(
  ctx: RegistryContext,
  target: Reference,
  from: { kind: "store"; store?: LocalStore } | { kind: "location"; spec: LocationSpec },
  options: { jobs?: number; onEvent?: (e: CopyEvent) => void } = {},
): Promise<CopyResult> {
  const engine = new CopyEngine({ jobs: options.jobs, onEvent: options.onEvent });
  const dst = await openDestination(ctx, { kind: "registry", ref: target });
  if (from.kind === "store") {
    const store = from.store ?? new LocalStore();
    return engine.copy(store.layout, storeName(target), dst.destination, dst.reference);
  }
  const src = await openSource(ctx, from.spec);
  return engine.copy(src.source, src.reference, dst.destination, dst.reference);
}
