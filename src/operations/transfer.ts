import { RegcliError } from "../errors.js";
import { openDestination, openSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { RegistryContext } from "../registry/context.js";
import { CopyEngine, type CopyOptions, type CopyResult } from "./copy.js";

/** Copy one image from any location to any other: the one path under copy, pull -o and push. */
export async function transfer(
  ctx: RegistryContext,
  src: LocationSpec,
  dst: LocationSpec,
  options: CopyOptions & { preserveDigests?: boolean } = {},
): Promise<CopyResult & { source: string; destination: string }> {
  // Like skopeo: OCI layouts and archives get OCI media types, and registries gzipped layers, unless the user asks
  // to keep the exact bytes.
  if (options.referrers && dst.kind === "archive" && dst.flavour !== "oci-archive") {
    throw new RegcliError("unsupported", `a docker-archive has no place for referrers (docker load would take them for images): ${options.referrers.artifactTypes ? "--referrers-artifact-type" : "--referrers"} cannot be kept there`, {
      hint: "copy to an oci-archive: or oci: layout instead, or leave out --referrers",
    });
  }
  const ociTarget = dst.kind === "oci" || (dst.kind === "archive" && dst.flavour === "oci-archive");
  const engineOptions: CopyOptions = { ...options, convertToOci: ociTarget && !options.preserveDigests };
  const source = await openSource(ctx.source, src, { compressLayers: dst.kind === "registry" && !options.preserveDigests });
  try {
    const destination = await openDestination(ctx.destination, dst, source.identity);
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
