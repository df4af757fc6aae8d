import { RegcliError } from "../errors.js";
import { DeletedWithLeftovers, registryDestination, type RegistryRepository } from "../locations/registry.js";
import { isIndexMediaType } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { limiter } from "../util/limit.js";
import { createdLookup } from "./tag-created.js";
import { isAttachmentTag, isReferrersTag } from "../oci/referrers.js";
import { selectTags } from "./tag-filters.js";

/**
 * Retention for one repository. Candidates are the tags that match `include` (every tag when absent) and no
 * `exclude`; other tags are never touched. A candidate is kept when it is among the `keepLatest` newest candidates
 * (version order when every candidate is a version, else created time) or, with `olderThan`, when its image is
 * not older than that (an image without a created time is kept: it is not known to be older). With both, a
 * candidate goes only when it fails both (outside the newest N and older). The other candidates go.
 */
export interface PruneOptions {
  include?: string[];
  exclude?: string[];
  keepLatest?: number;
  olderThan?: string;
}

export interface PruneRemoval {
  tag: string;
  digest: string;
  /** Tags that stay (kept candidates, untouched tags, or indexes holding it as a child) whose manifest this is. */
  sharedWith: string[];
}

export interface PrunePlan {
  repository: string;
  /** Every tag the repository had. */
  tags: number;
  candidates: string[];
  kept: string[];
  /** Kept because their image has no created time (only with olderThan). */
  undated: string[];
  remove: PruneRemoval[];
}

export interface PruneOutcome {
  tag: string;
  digest: string;
  /** untagged: only the tag went (OCI 1.1); deleted: the manifest went by digest; left: shared, could not untag; failed. */
  action: "untagged" | "deleted" | "left" | "failed";
  reason?: string;
}

const CHECKS_AT_ONCE = 8;

type Repository = Pick<Reference, "registry" | "repository">;

async function planPrune(ctx: RegistryContext, ref: Reference, opts: PruneOptions): Promise<PrunePlan> {
  if (opts.keepLatest === undefined && opts.olderThan === undefined) {
    throw new RegcliError("usage", `tag prune ${ref.name} needs --keep-latest N or --older-than DURATION`, {
      hint: "--keep-latest 0 removes every tag that --include/--exclude select",
    });
  }
  const repo = registryDestination(ctx, ref);
  const all = await repo.listTags();
  // Referrers' tags (the tag schema's sha256-<hex> index, cosign's .sig/.att/.sbom) belong to their images: removing
  // them would hide a kept image's signatures, so they are never candidates.
  const candidates = await selectTags(all.filter((t) => !isAttachmentTag(t)), { include: opts.include, exclude: opts.exclude });
  const created = createdLookup(repo);
  const kept = new Set<string>();
  if (opts.keepLatest !== undefined) for (const t of await selectTags(candidates, { latest: opts.keepLatest }, created)) kept.add(t);
  const undated: string[] = [];
  if (opts.olderThan !== undefined) {
    for (const t of await selectTags(candidates, { newerThan: opts.olderThan, undated: "keep" }, created)) {
      if (!kept.has(t) && (await created(t)) === undefined) undated.push(t);
      kept.add(t);
    }
  }
  const plan = { repository: ref.name, tags: all.length, candidates, kept: candidates.filter((t) => kept.has(t)), undated };
  const going = candidates.filter((t) => !kept.has(t));
  return { ...plan, remove: await planRemovals(ctx, ref, all, going) };
}

/**
 * The removals of `going` (tags of `ref`'s repository, `all` being every tag it has), each with the staying tags
 * that point at its manifest (directly or as an index's child), so that manifest is never deleted by digest.
 */
export async function planRemovals(ctx: RegistryContext, ref: Repository, all: string[], going: string[]): Promise<PruneRemoval[]> {
  if (!going.length) return [];
  const repo = registryDestination(ctx, ref);
  // Every tag's digest, so a manifest a staying tag points at (directly or as an index's child) is never deleted.
  const client = ctx.client(ref.registry, ref.repository);
  const limit = limiter(CHECKS_AT_ONCE);
  const heads = new Map(await Promise.all(all.map((t) => limit(async () => [t, await client.headManifest(ref.repository, t)] as const))));
  const goingSet = new Set(going);
  const staying = new Map<string, string[]>();
  const stays = (digest: string, by: string) => staying.set(digest, [...(staying.get(digest) ?? []), by]);
  const indexes: string[] = [];
  for (const t of all) {
    const head = heads.get(t);
    if (!head || goingSet.has(t)) continue;
    stays(head.digest, t);
    if (isIndexMediaType(head.mediaType)) indexes.push(t);
  }
  const children = await Promise.all(indexes.map((t) => limit(() => repo.getManifest(heads.get(t)!.digest))));
  indexes.forEach((t, i) => {
    const index = children[i]!.parsed;
    if (index.kind !== "index") return;
    for (const child of index.index.manifests) {
      // An artifact listed in a referrers tag schema index is a referrer, not a child: deleting it takes it out of
      // that index (the location's deleteManifest). An image index that merely has such a tag keeps its children.
      if (isReferrersTag(t) && child.artifactType) continue;
      stays(child.digest, `${t} (index)`);
    }
  });
  return going.flatMap((tag) => {
    const head = heads.get(tag);
    return head ? [{ tag, digest: head.digest, sharedWith: staying.get(head.digest) ?? [] }] : [];
  });
}

/** Does this error say the registry can only delete manifests by digest (no OCI 1.1 tag delete)? */
const noTagDelete = (err: unknown) => err instanceof RegcliError && err.kind === "registry" && ["DIGEST_INVALID", "UNSUPPORTED"].includes(err.code ?? "");

/**
 * Remove the tags of `ref`'s repository that `opts` do not keep (see PruneOptions). Each goes by a tag-only delete
 * where the registry supports it; else its manifest is deleted by digest, unless a staying tag points at it, in
 * which case the tag is left and reported. `approve` sees the plan first and returns false to stop (dry run) or
 * throws to refuse. One failed removal does not stop the others; the outcomes say what happened to each.
 */
export async function pruneTags(
  ctx: RegistryContext,
  ref: Reference,
  opts: PruneOptions,
  approve: (plan: PrunePlan) => Promise<boolean>,
): Promise<{ plan: PrunePlan; outcomes?: PruneOutcome[] }> {
  const plan = await planPrune(ctx, ref, opts);
  if (!plan.remove.length || !(await approve(plan))) return { plan };
  return { plan, outcomes: await removeTags(ctx, ref, plan.remove) };
}

/**
 * Carry out planned removals: a tag-only delete where the registry supports it; else the manifest by digest, unless
 * a staying tag points at it (the tag is then left). One failed removal does not stop the others.
 */
export async function removeTags(ctx: RegistryContext, ref: Repository, remove: PruneRemoval[]): Promise<PruneOutcome[]> {
  const client = ctx.client(ref.registry, ref.repository);
  let repo: RegistryRepository | undefined;
  let tagDelete = true;
  const deleted = new Set<string>();
  const outcomes: PruneOutcome[] = [];
  for (const r of remove) {
    try {
      if (tagDelete) {
        try {
          await client.deleteTag(ref.repository, r.tag);
          outcomes.push({ tag: r.tag, digest: r.digest, action: "untagged" });
          continue;
        } catch (err) {
          if (!noTagDelete(err)) throw err;
          tagDelete = false;
        }
      }
      if (r.sharedWith.length) {
        const reason = `${ref.registry} can only delete manifests and ${r.sharedWith.join(", ")} still point${r.sharedWith.length === 1 ? "s" : ""} at it`;
        outcomes.push({ tag: r.tag, digest: r.digest, action: "left", reason });
        continue;
      }
      // Through the location: on a registry without the referrers API a deleted referrer leaves its subject's index.
      if (!deleted.has(r.digest)) await (repo ??= registryDestination(ctx, ref)).deleteManifest(r.digest);
      deleted.add(r.digest);
      outcomes.push({ tag: r.tag, digest: r.digest, action: "deleted" });
    } catch (err) {
      if (!(err instanceof RegcliError)) throw err;
      if (err instanceof DeletedWithLeftovers) deleted.add(r.digest);
      outcomes.push({ tag: r.tag, digest: r.digest, action: "failed", reason: err.toLine() });
    }
  }
  return outcomes;
}
