import { pipeline, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { VerifyingStream } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";

/** One blob's bytes as a stream that fails at its end unless they match the digest in the reference. */
export async function openBlob(ctx: RegistryContext, ref: Reference): Promise<{ stream: Readable; size: number | undefined }> {
  if (!ref.digest) {
    throw new RegcliError("usage", `blob needs a digest: ${ref.familiar} has none`, { hint: "use REPOSITORY@sha256:..." });
  }
  const endpoints = [...ctx.mirrorClients(ref.registry), ctx.client(ref.registry)];
  let lastError: unknown;
  for (const client of endpoints) {
    try {
      const { body, size } = await client.getBlob(ref.repository, ref.digest);
      const verifier = new VerifyingStream(ref.digest, size, client.registry);
      return { stream: pipeline(body, verifier, () => undefined), size };
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
