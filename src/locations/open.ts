import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RegcliError } from "../errors.js";
import type { RegistryContext } from "../registry/context.js";
import type { Descriptor } from "../oci/index.js";
import { parseReference } from "../reference/index.js";
import { gzipLayers, unpackArchive } from "./archive-reader.js";
import { ArchiveWriter } from "./archive-writer.js";
import { CONTAINERD_NAME, displayName, familiarName, findEntry, identityOf, isBareTag, normalizeName, withTagName, type ImageIdentity } from "./image-names.js";
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
  /** The image's full name and tag where known: what an archive or layout it is copied to names it by. */
  identity?: ImageIdentity;
  /** Release what opening took (an unpacked archive). */
  close(): Promise<void>;
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

/** The one entry of a layout, or the named one; a clear error listing names otherwise. */
async function pick(layout: OciLayout, wanted: string | undefined, display: string): Promise<Descriptor> {
  const entries = (await layout.readIndex()).manifests;
  const names = () => (entries.length ? `names: ${entries.map(displayName).join(", ")}` : undefined);
  if (wanted) {
    const match = findEntry(entries, wanted, display);
    if (!match) throw new RegcliError("not-found", `no image named ${wanted} in ${display}`, { hint: names() });
    return match;
  }
  if (entries.length !== 1) throw new RegcliError("usage", `${display} holds ${entries.length} images: name one`, { hint: names() });
  return entries[0]!;
}

export async function openSource(ctx: RegistryContext, spec: LocationSpec, options: OpenSourceOptions = {}): Promise<OpenedSource> {
  if (spec.kind === "registry") {
    const ref = spec.ref;
    const identity = { name: normalizeName(ref.full), tag: ref.tag };
    return { source: registrySource(ctx, ref), reference: ref.digest ?? ref.tag ?? "latest", display: ref.full, identity, close: nothing };
  }
  if (spec.kind === "oci") {
    const display = `oci:${spec.dir}`;
    const layout = new OciLayout(resolve(spec.dir), display);
    const entry = await pick(layout, spec.tag, display);
    return { source: layout, reference: entry.digest, display: spec.tag ? `${display}:${spec.tag}` : display, identity: identityOf(entry), close: nothing };
  }
  const dir = await mkdtemp(join(tmpdir(), "regcli-archive-"));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    const display = `${spec.flavour}:${spec.file}`;
    const { layout, synthesized } = await unpackArchive(spec.file, dir);
    const entry = await pick(layout, spec.name, display);
    const reference = options.compressLayers && synthesized.has(entry.digest) ? await gzipLayers(layout, entry.digest) : entry.digest;
    return { source: layout, reference, display: spec.name ? `${display}:${spec.name}` : display, identity: identityOf(entry), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The name an image gets in a layout or archive. A name given in the location is a tag when bare (oci:DIR:TAG, as
 * skopeo reads it; the source's repository completes it) and an image name otherwise, and always an image name in a
 * docker-archive (docker-archive:FILE:busybox is busybox:latest). Without one, the source's full name and tag.
 */
function destinationIdentity(spec: LocationSpec, source: ImageIdentity): ImageIdentity {
  const given = spec.kind === "oci" ? spec.tag : spec.kind === "archive" ? spec.name : undefined;
  if (!given) return source;
  if (isBareTag(given) && !(spec.kind === "archive" && spec.flavour === "docker-archive")) {
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
      reference: spec.ref.digest ?? spec.ref.tag ?? "latest",
      display: spec.ref.full,
      finish: nothing,
      abort: nothing,
    };
  }
  const id = destinationIdentity(spec, source);
  if (spec.kind === "oci") {
    const layout = new OciLayout(resolve(spec.dir), `oci:${spec.dir}`);
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
    return { destination, reference: tag, display: `oci:${spec.dir}:${tag}`, finish: nothing, abort: nothing };
  }
  const writer = new ArchiveWriter(spec.file, spec.flavour);
  const entry = id.name ?? id.tag ?? "latest";
  const shown = id.name ? familiarName(id.name) : entry;
  return { destination: writer, reference: entry, display: `${spec.flavour}:${spec.file}:${shown}`, finish: () => writer.finish(), abort: () => writer.abort() };
}
