import { resolve } from "node:path";
import { RegcliError } from "../errors.js";
import type { RegistryContext } from "../registry/context.js";
import { OciLayout } from "./oci-layout.js";
import type { LocationSpec } from "./parse.js";
import { registryDestination, registrySource } from "./registry.js";
import type { ImageDestination, ImageSource } from "./types.js";

export interface OpenedSource {
  source: ImageSource;
  /** What to read in it: a tag, a name, or a digest. */
  reference: string;
  /** For messages. */
  display: string;
}

export interface OpenedDestination {
  destination: ImageDestination;
  reference: string;
  display: string;
}

export async function openSource(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedSource> {
  if (spec.kind === "registry") {
    return { source: registrySource(ctx, spec.ref), reference: spec.ref.digest ?? spec.ref.tag ?? "latest", display: spec.ref.full };
  }
  const layout = new OciLayout(resolve(spec.dir), `oci:${spec.dir}`);
  if (spec.tag) return { source: layout, reference: spec.tag, display: `oci:${spec.dir}:${spec.tag}` };
  const index = await layout.readIndex();
  if (index.manifests.length !== 1) {
    const names = (await layout.names()).map((n) => n.name);
    throw new RegcliError("usage", `oci:${spec.dir} holds ${index.manifests.length} images: name one as oci:${spec.dir}:TAG`, {
      hint: names.length ? `names: ${names.join(", ")}` : undefined,
    });
  }
  return { source: layout, reference: index.manifests[0]!.digest, display: `oci:${spec.dir}` };
}

export async function openDestination(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedDestination> {
  if (spec.kind === "registry") {
    return { destination: registryDestination(ctx, spec.ref), reference: spec.ref.digest ?? spec.ref.tag ?? "latest", display: spec.ref.full };
  }
  const layout = new OciLayout(resolve(spec.dir), `oci:${spec.dir}`);
  await layout.init();
  const tag = spec.tag ?? "latest";
  return { destination: layout, reference: tag, display: `oci:${spec.dir}:${tag}` };
}
