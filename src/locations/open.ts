import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RegcliError } from "../errors.js";
import type { RegistryContext } from "../registry/context.js";
import { isDigest } from "../oci/index.js";
import { manifestReference, parseReference } from "../reference/index.js";
import { LocalStore } from "../store/store.js";
import { CONTAINERD_NAME, displayName, familiarName, findEntry, fullName, identityOf, isBareTag, normalizeName, withTagName, type ImageIdentity } from "./image-names.js";
import { OciLayout } from "./oci-layout.js";
import type { ArchiveFlavour, ArchiveWriter } from "./archive-writer.js";
import type { LocationSpec } from "./parse.js";
import { registryDestination, registrySource } from "./registry.js";
import type { ImageDestination, ImageSource } from "./types.js";

/** A location opened for reading, before an image in it is chosen: `ls` lists it, `blob` reads from it. */
export interface OpenedLocation {
  source: ImageSource;
  /** For messages. */
  display: string;
  /** Release what opening took (an unpacked archive). */
  close(): Promise<void>;
}

/** One image in an opened location. */
export interface OpenedSource extends OpenedLocation {
  /** What to read in it: a tag, a name, or a digest. */
  reference: string;
  /**
   * The image's full name (registry/repository:tag or @digest) and tag where the location knows them: what the
   * store, an archive or a layout it is copied to names it by.
   */
  identity?: ImageIdentity;
}

export interface OpenedDestination {
  destination: ImageDestination;
  reference: string;
  display: string;
  /** Make the written result visible (archives are renamed into place only now). */
  finish(): Promise<void>;
  /** Undo a partial write. */
  abort(): Promise<void>;
}

export interface OpenSourceOptions {
  /**
   * Gzip the uncompressed layers of a legacy docker save archive (whose manifest regcli made up), as docker push
   * does: for registry destinations, unless the exact bytes are asked for.
   */
  compressLayers?: boolean;
}

const nothing = async () => undefined;

// The archive reader and writer (tar-stream, node:zlib) load only when an archive is opened: a one-shot registry
// command (digest, manifest, ls) never needs them, and loading them is start-up time (docs/benchmarks.md).
const archiveReader = () => import("./archive-reader.js");
const archiveWriter = async (file: string, flavour: ArchiveFlavour): Promise<ArchiveWriter> => new (await import("./archive-writer.js")).ArchiveWriter(file, flavour);

/**
 * The one entry of a layout, or the named one (by name, or by the digest of an entry or of any manifest in the
 * layout, e.g. an index's child: oci:DIR@sha256:...); a clear error listing names otherwise.
 */
async function pick(layout: OciLayout, wanted: string | undefined, display: string): Promise<{ reference: string; identity: ImageIdentity }> {
  const entries = await layout.entries();
  const names = () => (entries.length ? `names: ${entries.map(displayName).join(", ")}` : undefined);
  const digest = wanted && /(?:^|@)((?:sha256|sha512):[a-f0-9]+)$/.exec(wanted)?.[1];
  if (digest && isDigest(digest)) {
    const desc = await layout.resolve(digest).catch(() => undefined);
    if (!desc) throw new RegcliError("not-found", `no image with digest ${digest} in ${display}`, { hint: names() });
    const entry = entries.find((e) => e.digest === digest);
    return { reference: digest, identity: entry ? identityOf(entry) : {} };
  }
  if (wanted) {
    const match = findEntry(entries, wanted, display);
    if (!match) throw new RegcliError("not-found", `no image named ${wanted} in ${display}`, { hint: names() });
    return { reference: match.digest, identity: identityOf(match) };
  }
  if (entries.length !== 1) throw new RegcliError("usage", `${display} holds ${entries.length} images: name one`, { hint: names() });
  return { reference: entries[0]!.digest, identity: identityOf(entries[0]!) };
}

/** The identity of a store entry: its name is a full reference. */
function storeIdentity(name: string): ImageIdentity {
  const ref = parseReference(name, { defaultTag: false });
  return { name, ...(ref.tag ? { tag: ref.tag } : {}) };
}

/** Open a location for reading without choosing an image in it. */
export async function openLocation(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedLocation & { layout?: OciLayout; synthesized?: Set<string> }> {
  if (spec.kind === "registry") return { source: registrySource(ctx, spec.ref), display: spec.ref.name, close: nothing };
  if (spec.kind === "store") {
    // Reading never creates the store (a read-only or fresh home stays as it is).
    const layout = new LocalStore().layout;
    return { source: layout, layout, display: "store:", close: nothing };
  }
  if (spec.kind === "oci") {
    const display = `oci:${spec.dir}`;
    const layout = new OciLayout(resolve(spec.dir), display);
    return { source: layout, layout, display, close: nothing };
  }
  const dir = await mkdtemp(join(tmpdir(), "regcli-archive-"));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    const { layout, synthesized } = await (await archiveReader()).unpackArchive(spec.file, dir);
    return { source: layout, layout, synthesized, display: `${spec.flavour}:${spec.file}`, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Open one image of a location: the only way commands reach an image. */
export async function openSource(ctx: RegistryContext, spec: LocationSpec, options: OpenSourceOptions = {}): Promise<OpenedSource> {
  if (spec.kind === "registry") {
    const ref = spec.ref;
    return { source: registrySource(ctx, ref), reference: manifestReference(ref), display: ref.full, identity: storeIdentity(fullName(ref)), close: nothing };
  }
  if (spec.kind === "store") {
    const store = new LocalStore();
    // A full digest may also name a manifest the store holds without a name (a referrer, attached by digest).
    const byDigest = spec.name && isDigest(spec.name) ? spec.name : undefined;
    const entry = spec.name ? await store.findImage(spec.name).catch((err) => (byDigest && err instanceof RegcliError && err.kind === "not-found" ? undefined : Promise.reject(err))) : undefined;
    if (!entry) return { ...(await openLocation(ctx, spec)), ...(await pick(store.layout, byDigest, "the local store")), ...(byDigest && { display: `store:${byDigest}` }) };
    // The store as a source carries the image's origin, so a copy to that registry mounts its blobs.
    return { source: await store.sourceFor(entry.name), reference: entry.descriptor.digest, display: `store:${entry.name}`, identity: storeIdentity(entry.name), close: nothing };
  }
  const opened = await openLocation(ctx, spec);
  try {
    const wanted = spec.kind === "oci" ? spec.tag : spec.name;
    const picked = await pick(opened.layout!, wanted, opened.display);
    // Legacy docker save layers are gzipped for registries, as docker push does (see OpenSourceOptions).
    const reference = options.compressLayers && opened.synthesized?.has(picked.reference) ? await (await archiveReader()).gzipLayers(opened.layout!, picked.reference) : picked.reference;
    return { source: opened.source, close: opened.close, reference, identity: picked.identity, display: wanted ? `${opened.display}:${wanted}` : opened.display };
  } catch (err) {
    await opened.close();
    throw err;
  }
}

/** Open one image, run `action`, release what opening took. */
export async function withSource<T>(ctx: RegistryContext, spec: LocationSpec, action: (opened: OpenedSource) => Promise<T>): Promise<T> {
  const opened = await openSource(ctx, spec);
  try {
    return await action(opened);
  } finally {
    await opened.close();
  }
}

/**
 * The name an image gets in a layout or archive. A name given in the location is a tag when bare (oci:DIR:TAG, as
 * skopeo reads it; the source's repository completes it) and an image name otherwise, and always an image name in a
 * docker-archive (docker-archive:FILE:busybox is busybox:latest). Without one, the source's full name and tag.
 */
function destinationIdentity(spec: LocationSpec, source: ImageIdentity): ImageIdentity {
  const given = spec.kind === "oci" ? spec.tag : spec.kind === "archive" || spec.kind === "store" ? spec.name : undefined;
  if (!given) return source;
  // In a docker-archive and the store a name is an image name (busybox is busybox:latest), as docker reads it.
  if (isBareTag(given) && (spec.kind === "oci" || (spec.kind === "archive" && spec.flavour === "oci-archive"))) {
    return { tag: given, ...(source.name ? { name: withTagName(source.name, given) } : {}) };
  }
  const ref = parseReference(given);
  return { name: normalizeName(ref.full), tag: ref.tag };
}

/** `source` names the image in an archive or layout when the spec does not (see destinationIdentity). */
export async function openDestination(ctx: RegistryContext, spec: LocationSpec, source: ImageIdentity = {}): Promise<OpenedDestination> {
  if (spec.kind === "registry") {
    return {
      destination: registryDestination(ctx, spec.ref),
      reference: manifestReference(spec.ref),
      display: spec.ref.full,
      finish: nothing,
      abort: nothing,
    };
  }
  const id = destinationIdentity(spec, source);
  if (spec.kind === "store") {
    if (!id.name) throw new RegcliError("usage", "name the image in the local store: store:NAME[:TAG]");
    const store = new LocalStore();
    await store.layout.init();
    const end = await store.beginIngest();
    return { destination: store.layout, reference: id.name, display: `store:${id.name}`, finish: end, abort: end };
  }
  if (spec.kind === "oci") {
    const dir = resolve(spec.dir);
    const created = !(await stat(dir).catch(() => undefined));
    const layout = new OciLayout(dir, `oci:${spec.dir}`);
    await layout.init();
    // ref.name as skopeo writes it (the given name, else the tag), and the full name beside it as Docker 25 does.
    const tag = spec.tag ?? id.tag ?? "latest";
    const extra: Record<string, string> = id.name ? { [CONTAINERD_NAME]: id.name } : {};
    const destination: ImageDestination = {
      description: layout.description,
      putBlob: (desc, open) => layout.putBlob(desc, open),
      manifestDigest: (reference) => layout.manifestDigest(reference),
      putManifest: (manifest, reference) => layout.putManifest(manifest, reference, reference === tag ? extra : {}),
    };
    // A layout this write created and could not complete is removed, not left as an empty or partial skeleton.
    const abort = created ? () => rm(dir, { recursive: true, force: true }) : nothing;
    return { destination, reference: tag, display: `oci:${spec.dir}:${tag}`, finish: nothing, abort };
  }
  const writer = await archiveWriter(spec.file, spec.flavour);
  const entry = id.name ?? id.tag ?? "latest";
  const shown = id.name ? familiarName(id.name) : entry;
  return { destination: writer, reference: entry, display: `${spec.flavour}:${spec.file}:${shown}`, finish: () => writer.finish(), abort: () => writer.abort() };
}
