import { RegcliError } from "../errors.js";
import { registryDestination } from "../locations/registry.js";
import { manifestReference, validateTag, withTag, type Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { limiter } from "../util/limit.js";

/** Put the same manifest bytes under another tag of the same repository: no blob moves, digest kept. */
export async function tag(ctx: RegistryContext, ref: Reference, newTag: string): Promise<{ target: Reference; digest: string }> {
  validateTag(newTag);
  const repo = registryDestination(ctx, ref);
  const manifest = await repo.getManifest(manifestReference(ref));
  await repo.putManifest(manifest, newTag);
  return { target: withTag(ref, newTag), digest: manifest.digest };
}

/** What deleting a manifest takes with it. */
export interface DeletePlan {
  ref: Reference;
  digest: string;
  /** Every tag of the repository pointing at the manifest, the one named included. */
  tags: string[];
  /** Why the tags could not all be checked (then other tags may go too). */
  unknown?: string;
}

const TAG_CHECKS_AT_ONCE = 8;

/** The manifest a tag or digest names and every tag pointing at it (a HEAD per tag, a few at once). */
async function planDelete(ctx: RegistryContext, ref: Reference): Promise<DeletePlan> {
  const client = ctx.client(ref.registry, ref.repository);
  const head = await client.headManifest(ref.repository, manifestReference(ref));
  if (!head) throw new RegcliError("not-found", `manifest ${ref.full} not found`, { code: "MANIFEST_UNKNOWN" });
  const digest = ref.digest ?? head.digest;
  let all: string[];
  try {
    all = await client.listTags(ref.repository);
  } catch (err) {
    if (err instanceof RegcliError && err.kind === "not-found") return { ref, digest, tags: [] };
    return { ref, digest, tags: ref.tag && !ref.digest ? [ref.tag] : [], unknown: `the tags of ${ref.name} could not be listed (${(err as Error).message})` };
  }
  const limit = limiter(TAG_CHECKS_AT_ONCE);
  const pointing = await Promise.all(
    all.map((t) => limit(async () => (t === ref.tag && !ref.digest ? true : (await client.headManifest(ref.repository, t))?.digest === digest))),
  );
  return { ref, digest, tags: all.filter((_, i) => pointing[i]) };
}

/**
 * Delete the manifest a tag or digest names (registries delete by digest; a tag is resolved first), with every
 * tag pointing at it. `approve` sees what goes first and throws to stop.
 */
export async function deleteImage(ctx: RegistryContext, ref: Reference, approve: (plan: DeletePlan) => Promise<void>): Promise<DeletePlan> {
  const plan = await planDelete(ctx, ref);
  await approve(plan);
  await ctx.client(ref.registry, ref.repository).deleteManifest(ref.repository, plan.digest);
  return plan;
}

/** Remove one tag and keep its manifest (OCI 1.1 DELETE by tag), where the registry supports it. */
export async function untag(ctx: RegistryContext, ref: Reference): Promise<{ digest: string }> {
  if (!ref.tag || ref.digest) {
    throw new RegcliError("usage", `untag needs IMAGE:TAG, got ${ref.full}`, { hint: "to delete a manifest by digest use regcli delete" });
  }
  const client = ctx.client(ref.registry, ref.repository);
  const head = await client.headManifest(ref.repository, ref.tag);
  if (!head) throw new RegcliError("not-found", `manifest ${ref.full} not found`, { code: "MANIFEST_UNKNOWN" });
  await client.deleteTag(ref.repository, ref.tag);
  return { digest: head.digest };
}
