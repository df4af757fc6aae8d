import { RegcliError } from "../errors.js";
import type { OpenedSource } from "../locations/open.js";
import { parseLocation, type LocationSpec } from "../locations/parse.js";
import type { ImageSource } from "../locations/types.js";
import { configPlatform, formatPlatform, isArtifact, layerCompression, selectPlatform, type Descriptor, type ImageManifest, type Platform } from "../oci/index.js";
import { familyLayerType, type ConfigDocument, type Family, type HistoryEntry } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";
import { openImage } from "./export.js";
import { childImage, readConfig } from "./inspect.js";
import { rewriteImage, type RewriteOptions, type RewriteResult } from "./rewrite.js";

/** The annotations naming an image's base (OCI image-spec), which crane rebase reads and writes. */
export const BASE_NAME = "org.opencontainers.image.base.name";
export const BASE_DIGEST = "org.opencontainers.image.base.digest";

export interface RebaseOptions extends Pick<RewriteOptions, "jobs" | "onEvent" | "byteProgress" | "platforms" | "annotations"> {
  /** The base the image was built on; default: its base annotations' name@digest. */
  oldBase?: string;
  /** The base to put under it instead; default: its base annotation's name (the tag, as it is now). */
  newBase?: string;
}

interface BaseImage {
  display: string;
  digest: string;
  manifest: ImageManifest;
  config: ConfigDocument;
  source: ImageSource;
}

function samePlatform(a: Platform | undefined, b: Platform | undefined): boolean {
  return !!a && !!b && a.os === b.os && a.architecture === b.architecture && (!a.variant || !b.variant || a.variant === b.variant);
}

/** A layer descriptor in the image's media-type family (a Docker gzip layer is an OCI gzip layer, byte for byte). */
function inFamily(desc: Descriptor, family: Family): Descriptor {
  const compression = layerCompression(desc.mediaType);
  if (!compression || /nondistributable|foreign/.test(desc.mediaType)) return desc;
  return { ...desc, mediaType: familyLayerType(family, compression) };
}

/** `n` layers of the old base are the start of the image's: by digest, and by diff_id in the configs. */
function checkPrefix(image: { display: string; manifest: ImageManifest; config: ConfigDocument }, old: BaseImage): void {
  const notBased = (why: string) => new RegcliError("usage", `${image.display} is not based on ${old.display}: ${why}`, { hint: "give the base it was built on with --old-base" });
  const layers = image.manifest.layers;
  const oldLayers = old.manifest.layers;
  if (oldLayers.length > layers.length) throw notBased(`the image has ${layers.length} layers, the old base ${oldLayers.length}`);
  oldLayers.forEach((l, i) => {
    if (layers[i]!.digest !== l.digest) throw notBased(`layer ${i + 1} is ${layers[i]!.digest} in the image, ${l.digest} in the old base`);
  });
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  const oldDiffIds = old.config.rootfs?.diff_ids ?? [];
  oldDiffIds.forEach((d, i) => {
    if (diffIds[i] !== d) throw notBased(`diff_id ${i + 1} is ${diffIds[i] ?? "missing"} in the image's config, ${d} in the old base's`);
  });
}

/**
 * `regcli rebase` (crane's semantics): the image's layers above the old base are put on the new base. The old
 * base's layers must be the start of the image's (digests and diff_ids); the result has the new base's layers,
 * diff_ids and history followed by the image's own, the image's config otherwise (the new base's os, architecture,
 * variant and os.version). An index is rebased per platform, each on the bases' image of its platform.
 */
export async function rebaseImage(ctx: RegistryContext, source: LocationSpec, target: LocationSpec, options: RebaseOptions): Promise<RewriteResult> {
  const opened = new Map<string, Promise<OpenedSource>>();
  const open = (text: string) => {
    let o = opened.get(text);
    if (!o) opened.set(text, (o = openImage(ctx.source, text)));
    return o;
  };
  /** The image of `platform` that `text` names (itself, or its child in an index). */
  const base = async (text: string, platform: Platform | undefined, role: string, imageDisplay: string): Promise<BaseImage> => {
    const o = await open(text);
    let manifest = await o.source.getManifest(o.reference);
    if (manifest.parsed.kind === "index") {
      if (!platform) throw new RegcliError("usage", `${imageDisplay} names no platform to pick from the ${role} ${o.display}, a multi-platform index`);
      manifest = await childImage(o.source, selectPlatform(manifest.parsed.index, platform, o.display), o.display);
    }
    if (manifest.parsed.kind !== "image" || isArtifact(manifest.parsed.manifest)) throw new RegcliError("usage", `the ${role} ${o.display} is not an image`);
    const { config } = await readConfig(o.source, manifest, o.display);
    const own = configPlatform(config);
    if (platform && !samePlatform(own, platform)) {
      throw new RegcliError("usage", `the ${role} ${o.display} is a ${formatPlatform(own)} image, and ${imageDisplay} is ${formatPlatform(platform)}`, { hint: "give a base of the image's platform (or an index that has it)" });
    }
    return { display: o.display, digest: manifest.digest, manifest: manifest.parsed.manifest, config, source: o.source };
  };
  try {
    return await rewriteImage(ctx, source, target, {
      ...options,
      edit: async (image) => {
        if (image.manifest.parsed.kind !== "image") throw new Error("not an image");
        const manifest = image.manifest.parsed.manifest;
        const annotations = manifest.annotations ?? {};
        const platform = image.platform ?? configPlatform(image.config);
        const where = `${image.display}${platform ? ` (${formatPlatform(platform)})` : ""}`;
        const named = annotations[BASE_NAME] && annotations[BASE_DIGEST] ? `${annotations[BASE_NAME]}@${annotations[BASE_DIGEST]}` : undefined;
        const oldText = options.oldBase ?? named;
        const newText = options.newBase ?? annotations[BASE_NAME];
        if (!oldText || !newText) {
          throw new RegcliError("usage", `${where} carries no ${BASE_NAME}${oldText ? "" : `/${BASE_DIGEST}`} annotation to take the ${oldText ? "new" : "old"} base from`, { hint: `give ${oldText ? "--new-base" : "--old-base"}` });
        }
        const [old, next] = await Promise.all([base(oldText, platform, "old base", where), base(newText, platform, "new base", where)]);
        checkPrefix({ display: where, manifest, config: image.config }, old);
        const own = manifest.layers.slice(old.manifest.layers.length);
        const config = structuredClone(image.config);
        const nextPlatform = configPlatform(next.config)!;
        config.os = nextPlatform.os;
        config.architecture = nextPlatform.architecture;
        for (const key of ["variant", "os.version"] as const) {
          if (nextPlatform[key]) config[key] = nextPlatform[key];
          else delete config[key];
        }
        config.rootfs = { type: "layers", diff_ids: [...(next.config.rootfs?.diff_ids ?? []), ...(image.config.rootfs?.diff_ids ?? []).slice(old.manifest.layers.length)] };
        const history: HistoryEntry[] = [...(next.config.history ?? []), ...(image.config.history ?? []).slice((old.config.history ?? []).length)];
        if (history.length) config.history = history;
        else delete config.history;
        const baseLayers = next.manifest.layers.map((l) => inFamily(l, image.family));
        // The new base's name and digest, as crane writes them, where the image has OCI annotations and the base a registry name.
        const spec = parseLocation(newText);
        const baseAnnotations = image.family === "oci" && spec.kind === "registry" ? { [BASE_NAME]: spec.ref.tag ? `${spec.ref.name}:${spec.ref.tag}` : spec.ref.name, [BASE_DIGEST]: next.digest } : undefined;
        return {
          config,
          layers: [...baseLayers, ...own],
          blobs: baseLayers.map((descriptor) => ({ descriptor, from: next.source })),
          ...(baseAnnotations ? { annotations: baseAnnotations } : {}),
        };
      },
    });
  } finally {
    await Promise.all([...opened.values()].map((o) => o.then((x) => x.close(), () => undefined)));
  }
}
