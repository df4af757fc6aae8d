import { RegcliError } from "../errors.js";
import { withSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { ImageSource } from "../locations/types.js";
import {
  checkDescriptorSize,
  configPlatformText,
  formatPlatform,
  hostPlatform,
  layerCompression,
  MediaType,
  platformMatches,
  selectPlatform,
  type Descriptor,
  type ImageConfig,
  type ManifestData,
  type Platform,
} from "../oci/index.js";
import type { ConfigDocument } from "../oci/mutate.js";
import type { RegistryContext } from "../registry/context.js";

/**
 * The manifest bytes exactly as the location holds them (as the registry serves them), and where they came from;
 * with `platform`, that platform's image manifest of an index.
 */
export async function getManifest(ctx: RegistryContext, spec: LocationSpec, platform?: Platform): Promise<ManifestData & { reference: string }> {
  return withSource(ctx, spec, async (o) => {
    const manifest = platform ? (await resolveImage(o.source, o, platform)).image : await o.source.getManifest(o.reference);
    return { ...manifest, reference: o.display };
  });
}

/**
 * The image manifest for a reference: itself, or for an index the entry for `platform` (default: this
 * machine's platform, else the only entry).
 */
export async function resolveImage(
  source: ImageSource,
  ref: { reference: string; display: string },
  platform?: Platform,
): Promise<{ top: ManifestData; image: ManifestData; platform?: Platform }> {
  const top = await source.getManifest(ref.reference);
  if (top.parsed.kind === "image") return { top, image: top };
  const index = top.parsed.index;
  let chosen: Descriptor;
  if (platform) chosen = selectPlatform(index, platform, ref.display);
  else {
    const host = hostPlatform();
    const match = index.manifests.find((d) => platformMatches(d.platform, host));
    if (match) chosen = match;
    else if (index.manifests.length === 1) chosen = index.manifests[0]!;
    else {
      throw new RegcliError("usage", `${ref.display} is a multi-platform index without a ${formatPlatform(host)} image`, {
        hint: `pick one with --platform (available: ${index.manifests.map((d) => formatPlatform(d.platform)).join(", ")})`,
      });
    }
  }
  return { top, image: await childImage(source, chosen, ref.display), platform: chosen.platform };
}

/** The image manifest an index entry names, its size checked against the entry; anything but an image is refused. */
export async function childImage(source: ImageSource, child: Descriptor, display: string): Promise<ManifestData> {
  const image = await source.getManifest(child.digest);
  checkDescriptorSize(child, image, display);
  if (image.parsed.kind !== "image") throw new RegcliError("registry", `${formatPlatform(child.platform)} entry of ${display} is not an image manifest`);
  return image;
}

/** The image config of an image manifest (at most 8 MiB, verified, a JSON object; fields regcli does not know kept). */
export async function readConfig(source: ImageSource, image: ManifestData, where: string): Promise<{ bytes: Buffer; config: ImageConfig & ConfigDocument }> {
  if (image.parsed.kind !== "image") throw new Error("readConfig needs an image manifest");
  const desc = image.parsed.manifest.config;
  if (desc.size > 8 * 1024 * 1024) throw new RegcliError("registry", `the config of ${where} is ${desc.size} bytes: too large for an image config`);
  const chunks: Buffer[] = [];
  for await (const chunk of await source.openBlob(desc)) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  let config: unknown;
  try {
    config = JSON.parse(bytes.toString("utf8"));
  } catch {
    config = undefined;
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new RegcliError("registry", `the config ${desc.digest} of ${where} is not a JSON object`);
  return { bytes, config: config as ImageConfig & ConfigDocument };
}

/** The config blob bytes (verified) of an image, picking a platform from an index. */
export async function getConfig(ctx: RegistryContext, spec: LocationSpec, platform?: Platform): Promise<Buffer> {
  return withSource(ctx, spec, async (o) => {
    const { image } = await resolveImage(o.source, o, platform);
    return (await readConfig(o.source, image, o.display)).bytes;
  });
}

export interface InspectResult {
  reference: string;
  digest: string;
  mediaType: string;
  /** How many manifests name this one as their subject (signatures, SBOMs: see `regcli referrers`); absent where the location cannot tell. */
  referrers?: number;
  platforms?: Array<{ platform: string; digest: string; mediaType: string; size: number }>;
  image: {
    digest: string;
    mediaType: string;
    /** os/arch[/variant]; absent for an artifact whose config is not an image config. */
    platform?: string;
    /** An artifact's type: the manifest's artifactType, else its config's media type when that is not an image config. */
    artifactType?: string;
    configMediaType: string;
    created?: string;
    entrypoint?: string[] | null;
    cmd?: string[] | null;
    env?: string[];
    workingDir?: string;
    user?: string;
    labels: Record<string, string>;
    layers: Array<{ digest: string; size: number; mediaType: string; compression: "gzip" | "zstd" | "none" | "unknown" }>;
    configDigest: string;
    totalSize: number;
  };
}

export async function inspect(ctx: RegistryContext, spec: LocationSpec, platform?: Platform): Promise<InspectResult> {
  return withSource(ctx, spec, async (o) => {
    const { top, image, platform: chosen } = await resolveImage(o.source, o, platform);
    return { ...(await describe(o.source, o, top, image, chosen)), ...(await referrerCount(o.source, top.digest)) };
  });
}

/**
 * Each image of an index for `platforms` (in the index's order; `all`: every child), described as `inspect` does; an
 * image that is no index is the one result. A platform the index lacks: not-found naming the ones it has.
 */
export async function inspectPlatforms(ctx: RegistryContext, spec: LocationSpec, platforms: "all" | Platform[]): Promise<InspectResult[]> {
  return withSource(ctx, spec, async (o) => {
    const top = await o.source.getManifest(o.reference);
    const count = await referrerCount(o.source, top.digest);
    if (top.parsed.kind === "image") return [{ ...(await describe(o.source, o, top, top, undefined)), ...count }];
    const index = top.parsed.index;
    const wanted = platforms === "all" ? index.manifests : [...new Set(platforms.map((p) => selectPlatform(index, p, o.display)))];
    const results = await Promise.all(
      index.manifests
        .filter((d) => wanted.includes(d))
        .map(async (child) => describe(o.source, o, top, await childImage(o.source, child, o.display), child.platform)),
    );
    return results.map((r) => ({ ...r, ...count }));
  });
}

/** The number of referrers of `digest`, where the location can list them (not yet every local one can). */
async function referrerCount(source: ImageSource, digest: string): Promise<{ referrers?: number }> {
  try {
    return { referrers: (await source.referrers(digest)).length };
  } catch (err) {
    if (err instanceof RegcliError && err.kind === "unsupported") return {};
    throw err;
  }
}

async function describe(source: ImageSource, ref: { reference: string; display: string }, top: ManifestData, image: ManifestData, chosen: Platform | undefined): Promise<InspectResult> {
  if (image.parsed.kind !== "image") throw new Error("unreachable");
  const manifest = image.parsed.manifest;
  const configMediaType = manifest.config.mediaType;
  const imageConfig = configMediaType === MediaType.OciConfig || configMediaType === MediaType.DockerConfig;
  // An artifact's config is whatever its tool stores (often the empty `{}`): not read as an image config.
  const { config } = imageConfig ? await readConfig(source, image, ref.display) : { config: {} as ImageConfig };
  const layers = manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, compression: layerCompression(l.mediaType) ?? ("unknown" as const) }));
  const platformText = chosen ? formatPlatform(chosen) : imageConfig ? configPlatformText(config) : undefined;
  return {
    reference: ref.display,
    digest: top.digest,
    mediaType: top.mediaType,
    platforms:
      top.parsed.kind === "index"
        ? top.parsed.index.manifests.map((d) => ({ platform: formatPlatform(d.platform), digest: d.digest, mediaType: d.mediaType, size: d.size }))
        : undefined,
    image: {
      digest: image.digest,
      mediaType: image.mediaType,
      platform: platformText,
      artifactType: manifest.artifactType ?? (imageConfig ? undefined : configMediaType),
      configMediaType,
      created: config.created,
      entrypoint: config.config?.Entrypoint,
      cmd: config.config?.Cmd,
      env: config.config?.Env,
      workingDir: config.config?.WorkingDir || undefined,
      user: config.config?.User || undefined,
      labels: config.config?.Labels ?? {},
      layers,
      configDigest: manifest.config.digest,
      totalSize: manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
    },
  };
}

/**
 * The manifest digest without downloading the manifest where the location allows (a HEAD; configured mirrors
 * first); with `platform`, the digest of that platform's image as the index lists it (an image that is no
 * index: its own digest).
 */
export async function resolveDigest(ctx: RegistryContext, spec: LocationSpec, platform?: Platform): Promise<{ reference: string; digest: string; mediaType?: string }> {
  return withSource(ctx, spec, async (o) => {
    let desc: Descriptor;
    if (platform) {
      const top = await o.source.getManifest(o.reference);
      desc = top.parsed.kind === "index" ? selectPlatform(top.parsed.index, platform, o.display) : { digest: top.digest, mediaType: top.mediaType, size: top.bytes.length };
    } else desc = await o.source.resolve(o.reference);
    return { reference: o.display, digest: desc.digest, mediaType: desc.mediaType || undefined };
  });
}
