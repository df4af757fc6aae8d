import { openDestination, openSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import { parseReference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { CopyEngine, type CopyOptions, type CopyResult } from "./copy.js";

/** The name an image gets where the destination does not say: a tag for layouts, the familiar name for docker archives. */
export function defaultNameFor(src: LocationSpec, dst: LocationSpec): string {
  if (src.kind !== "registry") {
    const name = src.kind === "oci" ? src.tag : src.name;
    return name && !/^(?:sha256|sha512):/.test(name) ? name : "latest";
  }
  if (dst.kind === "store") return src.ref.full;
  if (dst.kind === "archive" && dst.flavour === "docker-archive") return src.ref.familiar.split("@")[0]!;
  return src.ref.tag ?? "latest";
}

/**
 * Copy one image from any location to any other: the one path under copy, pull -o and push. `sourceDigest` differs
 * from `digest` when Docker manifests were converted for an OCI destination; callers say so.
 */
export async function transfer(
  ctx: RegistryContext,
  src: LocationSpec,
  dst: LocationSpec,
  options: CopyOptions & { preserveDigests?: boolean } = {},
): Promise<CopyResult & { source: string; destination: string }> {
  // Like skopeo: OCI layouts and archives get OCI media types unless the user asks to keep the exact bytes.
  const ociTarget = dst.kind === "oci" || (dst.kind === "archive" && dst.flavour === "oci-archive");
  const engineOptions: CopyOptions = { ...options, convertToOci: ociTarget && !options.preserveDigests };
  const source = await openSource(ctx, src);
  try {
    // An image of the store is named like the registry image it came from.
    const named: LocationSpec = src.kind === "store" && source.name ? { kind: "registry", ref: parseReference(source.name) } : src;
    const destination = await openDestination(ctx, dst, defaultNameFor(named, dst));
    try {
      const engine = new CopyEngine(engineOptions);
      const result = await engine.copy(source.source, source.reference, destination.destination, destination.reference);
      await destination.finish();
      return { ...result, source: source.display, destination: destination.display };
    } catch (err) {
      await destination.abort();
      throw err;
    }
  } finally {
    await source.close();
  }
}
