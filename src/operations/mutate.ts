import type { LocationSpec } from "../locations/parse.js";
import type { Platform } from "../oci/index.js";
import { editConfig, type ConfigEdit } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";
import { rewriteImage, type RewriteOptions, type RewriteResult } from "./rewrite.js";

export interface MutateOptions extends Pick<RewriteOptions, "jobs" | "onEvent" | "byteProgress"> {
  /** Undefined: the configs are kept as they are (only annotations change). */
  edit?: ConfigEdit;
  /** The new configs' created time and history entry's (RFC 3339). */
  created: string;
  /** Manifest annotations of what is written under the target's tag (the index, or the image). */
  annotations?: Record<string, string>;
  platforms?: Platform[];
}

/** Change the config of an image (each selected platform's of an index): its layers are kept, one empty_layer history entry added. */
export function mutateImage(ctx: RegistryContext, source: LocationSpec, target: LocationSpec, options: MutateOptions): Promise<RewriteResult> {
  return rewriteImage(ctx, source, target, {
    ...options,
    edit: async (image) => {
      if (image.manifest.parsed.kind !== "image") throw new Error("not an image");
      const config = options.edit ? editConfig(image.config, options.edit, options.created) : image.config;
      return { config, layers: image.manifest.parsed.manifest.layers };
    },
  });
}
