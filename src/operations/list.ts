import type { ListTarget } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { registrySource } from "../locations/registry.js";

export type ListResult = { kind: "repositories"; registry: string; items: string[] } | { kind: "tags"; repository: string; items: string[] };

/** Repositories of a registry (catalog) or tags of a repository, every page followed. */
export async function list(ctx: RegistryContext, target: ListTarget, pageSize?: number): Promise<ListResult> {
  if (target.kind === "registry") {
    return { kind: "repositories", registry: target.registry, items: await ctx.client(target.registry).catalog(pageSize) };
  }
  const items = await registrySource(ctx, target).listTags(pageSize);
  return { kind: "tags", repository: `${target.registry}/${target.repository}`, items };
}
