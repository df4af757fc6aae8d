import { RegcliError } from "../errors.js";
import { registryDestination } from "../locations/registry.js";
import { validateTag, withTag, type Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";
import { manifestReference } from "./inspect.js";

/** Put the same manifest bytes under another tag of the same repository: no blob moves, digest kept. */
export async function tag(ctx: RegistryContext, ref: Reference, newTag: string): Promise<{ target: Reference; digest: string }> {
  validateTag(newTag);
  const repo = registryDestination(ctx, ref);
  const manifest = await repo.getManifest(manifestReference(ref));
  await repo.putManifest(manifest, newTag);
  return { target: withTag(ref, newTag), digest: manifest.digest };
}

/** Delete the manifest a tag or digest names (registries delete by digest; a tag is resolved first). */
export async function deleteImage(ctx: RegistryContext, ref: Reference): Promise<{ digest: string }> {
  const client = ctx.client(ref.registry);
  let digest = ref.digest;
  if (!digest) {
    const head = await client.headManifest(ref.repository, ref.tag ?? "latest");
    if (!head) throw new RegcliError("not-found", `manifest ${ref.full} not found`, { code: "MANIFEST_UNKNOWN" });
    digest = head.digest;
  }
  await client.deleteManifest(ref.repository, digest);
  return { digest };
}
