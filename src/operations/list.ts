import type { ListTarget } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { RegcliError } from "../errors.js";
import { identityOf } from "../locations/image-names.js";
import { openLocation } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import { registrySource } from "../locations/registry.js";
import type { ListOptions } from "../locations/types.js";
import { parseReference } from "../reference/index.js";
import { selectTags, sortNames, type NameOrder } from "./tag-filters.js";

export type ListResult = { kind: "repositories"; registry: string; items: string[] } | { kind: "tags"; repository: string; items: string[] };

/** What of a listing is shown: names matching one of the anchored regexes `include`, in `sort` order. */
export interface ListShape {
  include?: string[];
  sort?: NameOrder;
}

/**
 * Repositories of a registry (catalog) or tags of a repository: every page followed, or with `onePage` the one
 * page of `pageSize` names after `last` (Distribution's n and last, sent to the registry).
 */
export async function list(ctx: RegistryContext, target: ListTarget, options: ListOptions & ListShape = {}): Promise<ListResult> {
  if (target.kind === "registry") {
    const items = asPage(await ctx.client(target.registry).catalog(options), options);
    return { kind: "repositories", registry: target.registry, items: await shape(items, options) };
  }
  const items = asPage(await registrySource(ctx, target).listTags(options), options);
  return { kind: "tags", repository: `${target.registry}/${target.repository}`, items: await shape(items, options) };
}

/**
 * A registry that ignores n or last (Distribution 2.8 does on tag lists) sends every name: the page is cut here as
 * one that honours them sends it (one that honours `last` never sends `last` itself).
 */
function asPage(items: string[], options: ListOptions): string[] {
  let out = items;
  const at = options.last === undefined ? -1 : out.indexOf(options.last);
  if (at >= 0) out = out.slice(at + 1);
  if (options.onePage && options.pageSize !== undefined) out = out.slice(0, options.pageSize);
  return out;
}

async function shape(items: string[], options: ListShape): Promise<string[]> {
  const kept = options.include?.length ? await selectTags(items, { include: options.include }) : items;
  return sortNames(kept, options.sort ?? "none");
}

/**
 * The names in an OCI layout, an archive or the local store (`store:REPOSITORY`: that repository's tags, or
 * `@digest` for an image stored by digest).
 */
export async function listLocation(ctx: RegistryContext, spec: Exclude<LocationSpec, { kind: "registry" }>, options: ListShape = {}): Promise<ListResult> {
  const result = await namesOf(ctx, spec);
  return { ...result, items: await shape(result.items, options) };
}

async function namesOf(ctx: RegistryContext, spec: Exclude<LocationSpec, { kind: "registry" }>): Promise<ListResult> {
  const named = spec.kind === "store" ? spec.name : spec.kind === "oci" ? spec.tag : spec.name;
  if (named && spec.kind !== "store") throw new RegcliError("usage", `ls lists every name of a layout or archive: drop ":${named}"`);
  const opened = await openLocation(ctx, spec);
  try {
    if (spec.kind !== "store") {
      // A layout's or archive's entries by their full name where one is recorded (io.containerd.image.name), else by
      // the tag in ref.name, as skopeo writes them.
      const items: string[] = [];
      for (const entry of await opened.layout!.entries()) {
        const id = identityOf(entry);
        if (id.name ?? id.tag) items.push((id.name ?? id.tag)!);
      }
      return { kind: "tags", repository: opened.display, items };
    }
    // No store yet: nothing in it.
    const names = await opened.source.listTags().catch((err: unknown) => {
      if (err instanceof RegcliError && err.kind === "not-found") return [];
      throw err;
    });
    if (!spec.name) return { kind: "tags", repository: opened.display, items: names };
    const repository = parseReference(spec.name, { defaultTag: false });
    if (repository.tag || repository.digest) throw new RegcliError("usage", `ls store:REPOSITORY lists a repository's tags: drop the tag or digest of ${spec.name}`);
    const items: string[] = [];
    for (const name of names) {
      const ref = parseReference(name, { defaultTag: false });
      if (ref.name === repository.name) items.push(ref.tag ?? `@${ref.digest}`);
    }
    return { kind: "tags", repository: `store:${repository.name}`, items };
  } finally {
    await opened.close();
  }
}
