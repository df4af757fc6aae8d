import { RegcliError } from "../errors.js";
import { manifestReference, type Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import type { RateLimit } from "../registry/ratelimit.js";

/** Docker's documented image for checking the pull limit. */
export const DEFAULT_RATELIMIT_IMAGE = "docker.io/ratelimitpreview/test";

/**
 * The pull limit a registry reports, read from a HEAD on a manifest (which Docker Hub does not count as a
 * pull). Always the registry itself, never a configured mirror: the limit is the origin's.
 */
export async function checkRateLimit(ctx: RegistryContext, ref: Reference): Promise<RateLimit | undefined> {
  const head = await ctx.client(ref.registry, ref.repository).headManifest(ref.repository, manifestReference(ref));
  if (!head) throw new RegcliError("not-found", `manifest ${ref.full} not found`, { hint: "name an image that exists; the limit is reported with its manifest" });
  return head.rateLimit;
}
