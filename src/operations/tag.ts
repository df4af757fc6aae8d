import { RegcliError } from "../errors.js";
import { registryDestination, type RegistryRepository } from "../locations/registry.js";
import { isIndexMediaType, type Descriptor } from "../oci/index.js";
import { isReferrersTag } from "../oci/referrers.js";
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
  /** Tagged indexes listing the manifest as a child: deleting it leaves them pointing at nothing. */
  parents: { tag: string; digest: string }[];
  /**
   * The manifests referring to it (signatures, SBOMs), and theirs, deepest first: deleted with it when asked
   * (withReferrers), otherwise they remain.
   */
  referrers: Descriptor[];
  /** Why its referrers could not be listed (only without withReferrers: with it, that stops the delete). */
  referrersUnknown?: string;
}

const TAG_CHECKS_AT_ONCE = 8;

/** The manifest a tag or digest names and every tag pointing at it (a HEAD per tag, a few at once). */
async function planDelete(ctx: RegistryContext, ref: Reference, withReferrers: boolean): Promise<DeletePlan> {
  const client = ctx.client(ref.registry, ref.repository);
  const head = await client.headManifest(ref.repository, manifestReference(ref));
  if (!head) throw new RegcliError("not-found", `manifest ${ref.full} not found`, { code: "MANIFEST_UNKNOWN" });
  const digest = ref.digest ?? head.digest;
  let referrers: Descriptor[] = [];
  let referrersUnknown: string | undefined;
  try {
    referrers = await referrersBelow(registryDestination(ctx, ref), digest, new Set([digest]));
  } catch (err) {
    if (withReferrers || !(err instanceof RegcliError)) throw err;
    referrersUnknown = `the referrers of ${ref.name}@${digest} could not be listed (${err.message})`;
  }
  const plan = { ref, digest, referrers, parents: [], ...(referrersUnknown && { referrersUnknown }) };
  let all: string[];
  try {
    all = await client.listTags(ref.repository);
  } catch (err) {
    if (err instanceof RegcliError && err.kind === "not-found") return { ...plan, tags: [] };
    return { ...plan, tags: ref.tag && !ref.digest ? [ref.tag] : [], unknown: `the tags of ${ref.name} could not be listed (${(err as Error).message})` };
  }
  const limit = limiter(TAG_CHECKS_AT_ONCE);
  const heads = await Promise.all(all.map((t) => limit(async () => (t === ref.tag && !ref.digest ? { digest, mediaType: head.mediaType } : await client.headManifest(ref.repository, t)))));
  const tags = all.filter((_, i) => heads[i]?.digest === digest);
  // An index tagged elsewhere in the repository that lists the manifest would be left pointing at nothing.
  const indexes = new Map<string, string[]>();
  heads.forEach((h, i) => {
    if (h && h.digest !== digest && isIndexMediaType(h.mediaType) && !isReferrersTag(all[i])) indexes.set(h.digest, [...(indexes.get(h.digest) ?? []), all[i]!]);
  });
  const repo = registryDestination(ctx, ref);
  const listing = await Promise.all([...indexes.keys()].map((d) => limit(async () => (await repo.getManifest(d)).parsed)));
  const parents = [...indexes].flatMap(([indexDigest, names], i) => {
    const parsed = listing[i]!;
    return parsed.kind === "index" && parsed.index.manifests.some((m) => m.digest === digest) ? names.map((tag) => ({ tag, digest: indexDigest })) : [];
  });
  return { ...plan, tags, parents };
}

/** Every referrer of `digest`, recursively, each after its own referrers (the order to delete them in). */
async function referrersBelow(repo: RegistryRepository, digest: string, seen: Set<string>): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const d of await repo.referrers(digest)) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push(...(await referrersBelow(repo, d.digest, seen)), d);
  }
  return out;
}

/**
 * Delete the manifest a tag or digest names (registries delete by digest; a tag is resolved first), with every
 * tag pointing at it, and with `withReferrers` every manifest referring to it, recursively, first. On a registry
 * without the referrers API the sha256-<hex> indexes are kept in step. `approve` sees what goes first and throws
 * to stop.
 */
export async function deleteImage(ctx: RegistryContext, ref: Reference, approve: (plan: DeletePlan) => Promise<void>, options: { withReferrers?: boolean } = {}): Promise<DeletePlan> {
  const plan = await planDelete(ctx, ref, options.withReferrers === true);
  await approve(plan);
  const repo = registryDestination(ctx, ref);
  for (const d of options.withReferrers ? plan.referrers : []) await repo.deleteManifest(d.digest);
  await repo.deleteManifest(plan.digest);
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
