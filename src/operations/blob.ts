import { pipeline, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { viaMirrors } from "../locations/registry.js";
import { VerifyingStream } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";

/** One blob's bytes as a stream that fails at its end unless they match the digest in the reference. */
export async function openBlob(ctx: RegistryContext, ref: Reference): Promise<{ stream: Readable; size: number | undefined }> {
  if (!ref.digest) {
    throw new RegcliError("usage", `blob needs a digest: ${ref.familiar} has none`, { hint: "use REPOSITORY@sha256:..." });
  }
  const digest = ref.digest;
  return viaMirrors(ctx, ref.registry, async (client) => {
    const { body, size } = await client.getBlob(ref.repository, digest);
    const verifier = new VerifyingStream(digest, size, client.registry);
    return { stream: pipeline(body, verifier, () => undefined), size };
  });
}
