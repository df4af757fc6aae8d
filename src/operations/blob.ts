import type { Readable } from "node:stream";
import { openLocation } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { RegistryContext } from "../registry/context.js";

/** One blob's bytes from any location, as a stream that fails at its end unless they match `digest`. */
export async function openBlob(ctx: RegistryContext, spec: LocationSpec, digest: string): Promise<{ stream: Readable; close(): Promise<void> }> {
  const opened = await openLocation(ctx, spec);
  try {
    return { stream: await opened.source.openBlob({ mediaType: "", digest, size: -1 }), close: opened.close };
  } catch (err) {
    await opened.close();
    throw err;
  }
}
