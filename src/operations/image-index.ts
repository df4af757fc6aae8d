import { RegcliError } from "../errors.js";
import { OciLayout } from "../locations/oci-layout.js";
import { openDestination, openSource, type OpenedSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { ImageSource } from "../locations/types.js";
import { configPlatform, formatPlatform, isArtifact, isAttestation, isDigest, MediaType, parseManifest, parsePlatform, platformMatches, type Descriptor, type ManifestData, type Platform } from "../oci/index.js";
import type { RegistryContext } from "../registry/context.js";
import { carryOtherImages, CopyEngine, type CopyOptions, type CopyStats } from "./copy.js";
import { openImage } from "./export.js";
import { readConfig } from "./inspect.js";

export interface IndexOptions extends Pick<CopyOptions, "jobs" | "onEvent" | "byteProgress"> {
  /** Annotations of the index itself (added to those it has). */
  annotations?: Record<string, string>;
  /** create: an OCI image index (the default) or a Docker manifest list (every child must be a Docker manifest). */
  mediaType?: "oci" | "docker";
}

export interface IndexChild {
  digest: string;
  mediaType: string;
  platform?: string;
}

export interface IndexResult {
  destination: string;
  digest: string;
  mediaType: string;
  size: number;
  manifests: IndexChild[];
  /** The index this one replaced at the target (add, rm): still there by digest. */
  previous?: string;
  /** add: children that an image of the same platform replaced. */
  replaced: Array<{ platform: string; from: string; to: string }>;
  /** rm: the children taken out. */
  removed: IndexChild[];
  stats: CopyStats;
}

/** The annotation of a BuildKit attestation naming the image it describes. */
const REFERENCE_DIGEST = "vnd.docker.reference.digest";

/** os/arch/variant and os.version: two images with the same key run on the same machines (an attestation has none). */
function platformKey(d: Descriptor): string | undefined {
  const p = d.platform;
  return p && !isAttestation(d) ? `${formatPlatform(p)}${p["os.version"] ? `:${p["os.version"]}` : ""}` : undefined;
}

/** The children without the attestations of images no longer in the index (replaced or removed). */
function withoutOrphans<T>(children: T[], descriptor: (c: T) => Descriptor): T[] {
  const images = new Set(children.map(descriptor).filter((d) => !isAttestation(d)).map((d) => d.digest));
  return children.filter((c) => !isAttestation(descriptor(c)) || images.has(descriptor(c).annotations?.[REFERENCE_DIGEST] ?? ""));
}

function shown(d: Descriptor): IndexChild {
  const platform = platformKey(d) ?? (d.platform ? formatPlatform(d.platform) : undefined);
  return { digest: d.digest, mediaType: d.mediaType, ...(platform ? { platform } : {}) };
}

/** An image's platform as its config gives it (crane and regctl read it there); none for an artifact. */
async function platformOf(source: ImageSource, image: ManifestData, where: string): Promise<Platform | undefined> {
  if (image.parsed.kind !== "image" || isArtifact(image.parsed.manifest)) return undefined;
  const platform = configPlatform((await readConfig(source, image, where)).config);
  if (!platform) throw new RegcliError("registry", `the config of ${where} names no os or architecture`, { hint: "an index child needs its platform" });
  return platform;
}

/** The index entries an image argument gives: the image, or each child of an index (as crane index append flattens). */
async function entriesOf(opened: OpenedSource): Promise<Descriptor[]> {
  const top = await opened.source.getManifest(opened.reference);
  if (top.parsed.kind === "index") {
    return Promise.all(
      top.parsed.index.manifests.map(async (d) => {
        if (d.platform) return d;
        const child = await opened.source.getManifest(d.digest);
        const platform = await platformOf(opened.source, child, `${opened.display}@${d.digest}`);
        return platform ? { ...d, platform } : d;
      }),
    );
  }
  const platform = await platformOf(opened.source, top, opened.display);
  return [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length, ...(platform ? { platform } : {}) }];
}

interface Sourced {
  desc: Descriptor;
  source: ImageSource;
  display: string;
}

/** Open each image argument and list the entries it gives; `opened` collects what must be closed. */
async function gather(ctx: RegistryContext, images: string[], target: LocationSpec, opened: OpenedSource[]): Promise<Sourced[]> {
  const out: Sourced[] = [];
  for (const text of images) {
    // A legacy docker save's uncompressed layers are gzipped for a registry, as copy does.
    const o = await openImage(ctx, text, undefined, { compressLayers: target.kind === "registry" });
    opened.push(o);
    for (const desc of await entriesOf(o)) out.push({ desc, source: o.source, display: o.display });
  }
  return out;
}

/** The index bytes for these children, of the given media type, with annotations. */
function indexDocument(mediaType: string, manifests: Descriptor[], annotations: Record<string, string> | undefined, base: Record<string, unknown> = {}): ManifestData {
  const docker = mediaType === MediaType.DockerManifestList;
  if (docker) {
    const foreign = manifests.find((d) => d.mediaType !== MediaType.DockerManifest);
    if (foreign) {
      throw new RegcliError("unsupported", `a Docker manifest list holds Docker image manifests only, and ${foreign.digest} is ${foreign.mediaType}`, {
        hint: "make an OCI index instead (index create without --media-type docker)",
      });
    }
    if (annotations && Object.keys(annotations).length) throw new RegcliError("usage", "a Docker manifest list has no annotations", { hint: "make an OCI index instead (the default)" });
  }
  const doc: Record<string, unknown> = { ...base, schemaVersion: 2, mediaType, manifests };
  if (annotations && Object.keys(annotations).length) doc.annotations = annotations;
  else delete doc.annotations;
  return parseManifest(Buffer.from(JSON.stringify(doc)), mediaType, "the new index");
}

/**
 * Write the index `build` makes of the children to the target, each child copied there first (kept ones from the
 * target as it was: for an archive, which is written anew, they move too, and so do the other images it held, under
 * their names). An OCI index in a layout or oci-archive gets its Docker children in their OCI form, as copy writes
 * them there (skopeo reads no Docker manifest from a layout).
 */
async function writeIndex(
  ctx: RegistryContext,
  target: LocationSpec,
  existing: OpenedSource | undefined,
  children: Sourced[],
  build: (manifests: Descriptor[]) => ManifestData,
  options: IndexOptions & { ociIndex: boolean },
): Promise<{ destination: string; index: ManifestData; stats: CopyStats; written: Map<string, string> }> {
  const dst = await openDestination(ctx.destination, target, existing?.identity);
  try {
    const convertToOci = options.ociIndex && (target.kind === "oci" || (target.kind === "archive" && target.flavour === "oci-archive"));
    const engine = new CopyEngine({ jobs: options.jobs, onEvent: options.onEvent, byteProgress: options.byteProgress, convertToOci });
    const manifests = await Promise.all(
      children.map(async ({ desc, source }) => {
        const written = await engine.copy(source, desc.digest, dst.destination, desc.digest);
        return written.digest === desc.digest ? desc : { ...desc, digest: written.digest, mediaType: written.mediaType, size: written.size };
      }),
    );
    if (target.kind === "archive" && existing?.source instanceof OciLayout) await carryOtherImages(engine, existing.source, dst.destination, dst.reference);
    const index = build(manifests);
    await dst.destination.putManifest(index, dst.reference);
    await dst.finish();
    const written = new Map(children.map((c, i) => [c.desc.digest, manifests[i]!.digest]));
    return { destination: dst.display, index, stats: engine.stats, written };
  } catch (err) {
    await dst.abort();
    throw err;
  }
}

function result(destination: string, index: ManifestData, stats: CopyStats, extra: Partial<IndexResult> = {}): IndexResult {
  const manifests = index.parsed.kind === "index" ? index.parsed.index.manifests : [];
  return { destination, digest: index.digest, mediaType: index.mediaType, size: index.bytes.length, manifests: manifests.map(shown), replaced: [], removed: [], stats, ...extra };
}

async function closeAll(opened: OpenedSource[]): Promise<void> {
  await Promise.all(opened.map((o) => o.close()));
}

/** Each child once (the same digest named twice is one), and never two for one platform. */
function distinct(children: Sourced[]): Sourced[] {
  const byDigest = new Map<string, Sourced>();
  const byPlatform = new Map<string, Sourced>();
  for (const c of children) {
    if (byDigest.has(c.desc.digest)) continue;
    const key = platformKey(c.desc);
    const other = key ? byPlatform.get(key) : undefined;
    if (other) {
      throw new RegcliError("usage", `two images for ${key}: ${other.display} (${other.desc.digest}) and ${c.display} (${c.desc.digest})`, { hint: "an index has one image per platform: leave one out" });
    }
    byDigest.set(c.desc.digest, c);
    if (key) byPlatform.set(key, c);
  }
  return [...byDigest.values()];
}

/** `regcli index create`: a new index of these images' platforms, written to the target with every child. */
export async function createIndex(ctx: RegistryContext, target: LocationSpec, images: string[], options: IndexOptions = {}): Promise<IndexResult> {
  const opened: OpenedSource[] = [];
  try {
    const children = distinct(await gather(ctx.source, images, target, opened));
    const mediaType = options.mediaType === "docker" ? MediaType.DockerManifestList : MediaType.OciIndex;
    const written = await writeIndex(ctx, target, undefined, children, (m) => indexDocument(mediaType, m, options.annotations), { ...options, ociIndex: mediaType === MediaType.OciIndex });
    return result(written.destination, written.index, written.stats);
  } finally {
    await closeAll(opened);
  }
}

/** The index at the target (add, rm), refused when it is an image or absent. */
async function openIndex(ctx: RegistryContext, target: LocationSpec, command: string): Promise<{ opened: OpenedSource; index: ManifestData & { parsed: { kind: "index" } } }> {
  const absent = (err: unknown) => {
    if (err instanceof RegcliError && err.kind === "not-found") throw new RegcliError("not-found", `${err.message}: index ${command} edits an existing index`, { hint: "make one with regcli index create" });
    throw err;
  };
  const opened = await openSource(ctx.destination, target).catch(absent);
  try {
    const index = await opened.source.getManifest(opened.reference).catch(absent);
    if (index.parsed.kind !== "index") {
      throw new RegcliError("usage", `${opened.display} is an image, not an index`, { hint: `make an index of it and others with regcli index create TARGET ${opened.display} IMAGE...` });
    }
    return { opened, index: index as ManifestData & { parsed: { kind: "index" } } };
  } catch (err) {
    await opened.close();
    throw err;
  }
}

/** How an edited index is made of its new children: the rest of the document (annotations, artifactType, subject) kept, --annotation merged. */
function edited(index: ManifestData, options: IndexOptions): (manifests: Descriptor[]) => ManifestData {
  const base = JSON.parse(index.bytes.toString("utf8")) as Record<string, unknown>;
  const annotations = { ...(base.annotations as Record<string, string> | undefined), ...options.annotations };
  return (manifests) => indexDocument(index.mediaType, manifests, annotations, base);
}

/** `regcli index add`: the images' platforms added to the index at the target; an image replaces a child of its platform. */
export async function addToIndex(ctx: RegistryContext, target: LocationSpec, images: string[], options: IndexOptions = {}): Promise<IndexResult> {
  const { opened: existing, index } = await openIndex(ctx, target, "add");
  const opened: OpenedSource[] = [existing];
  try {
    const added = distinct(await gather(ctx.source, images, target, opened));
    const manifests: Sourced[] = index.parsed.index.manifests.map((desc) => ({ desc, source: existing.source, display: existing.display }));
    const replaced: IndexResult["replaced"] = [];
    for (const child of added) {
      if (manifests.some((m) => m.desc.digest === child.desc.digest)) continue;
      const key = platformKey(child.desc);
      const at = key ? manifests.findIndex((m) => platformKey(m.desc) === key) : -1;
      if (at < 0) manifests.push(child);
      else {
        replaced.push({ platform: key!, from: manifests[at]!.desc.digest, to: child.desc.digest });
        manifests[at] = child;
      }
    }
    const written = await writeIndex(ctx, target, existing, withoutOrphans(manifests, (m) => m.desc), edited(index, options), { ...options, ociIndex: index.mediaType === MediaType.OciIndex });
    // A child converted on the way (a Docker image into a layout's OCI index) is named by what was written.
    const shownReplaced = replaced.map((r) => ({ ...r, to: written.written.get(r.to) ?? r.to }));
    return result(written.destination, written.index, written.stats, { previous: index.digest, replaced: shownReplaced });
  } finally {
    await closeAll(opened);
  }
}

/** A child `rm` takes out: a digest names one, a platform (os/arch[/variant]) every child for it. */
function selects(selector: string, d: Descriptor): boolean {
  if (isDigest(selector)) return d.digest === selector;
  return platformMatches(d.platform, parsePlatform(selector));
}

/** `regcli index rm`: children taken out of the index at the target, by platform or digest; never all of them. */
export async function removeFromIndex(ctx: RegistryContext, target: LocationSpec, selectors: string[], options: IndexOptions = {}): Promise<IndexResult> {
  for (const s of selectors) if (!isDigest(s)) parsePlatform(s); // a usage error before anything is read
  const { opened, index } = await openIndex(ctx, target, "rm");
  try {
    const children = index.parsed.index.manifests;
    for (const s of selectors) {
      if (!children.some((d) => selects(s, d))) {
        throw new RegcliError("not-found", `no child ${s} in ${opened.display}`, { hint: `its children: ${children.map((d) => platformKey(d) ?? d.digest).join(", ")}` });
      }
    }
    const kept = withoutOrphans(children.filter((d) => !selectors.some((s) => selects(s, d))), (d) => d);
    if (kept.length === 0) {
      throw new RegcliError("usage", `removing ${selectors.join(", ")} would leave ${opened.display} an empty index`, { hint: "keep at least one child, or delete the index with regcli delete" });
    }
    const sourced = kept.map((desc) => ({ desc, source: opened.source, display: opened.display }));
    const written = await writeIndex(ctx, target, opened, sourced, edited(index, options), { ...options, ociIndex: index.mediaType === MediaType.OciIndex });
    const removed = children.filter((d) => !kept.includes(d)).map(shown);
    return result(written.destination, written.index, written.stats, { previous: index.digest, removed });
  } finally {
    await opened.close();
  }
}
