import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RegcliError } from "../errors.js";
import type { RegistryContext } from "../registry/context.js";
import { parseReference } from "../reference/index.js";
import { LocalStore, storeName, storeNameOf } from "../store/store.js";
import { matchArchiveName, unpackArchive } from "./archive-reader.js";
import { ArchiveWriter } from "./archive-writer.js";
import { isDigestRef, OciLayout, REF_NAME } from "./oci-layout.js";
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
  /** The image's full name where the location knows one (registry, store, a named layout entry). */
  name?: string;
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

const nothing = async () => undefined;

/** A name in a layout is an image name when it says more than a tag (skopeo's oci: names are tags: "v1"). */
function imageName(name: string | undefined): string | undefined {
  return name && /[:/@]/.test(name) ? storeNameOf(name) : undefined;
}

/** The one entry of a layout, or the named one (by name or manifest digest); a clear error listing names otherwise. */
async function pick(layout: OciLayout, wanted: string | undefined, display: string): Promise<{ reference: string; name?: string }> {
  const entries = await layout.names();
  const names = entries.map((n) => n.name);
  const hint = names.length ? `names: ${names.join(", ")}` : undefined;
  const digest = wanted && /(?:^|@)((?:sha256|sha512):[a-f0-9]+)$/.exec(wanted)?.[1];
  if (digest && isDigestRef(digest)) {
    const desc = await layout.resolve(digest).catch(() => undefined);
    if (!desc) throw new RegcliError("not-found", `no image with digest ${digest} in ${display}`, { hint });
    return { reference: digest, name: imageName(entries.find((e) => e.descriptor.digest === digest)?.name) };
  }
  if (wanted) {
    const match = names.includes(wanted) ? wanted : matchArchiveName(names, wanted);
    if (!match) throw new RegcliError("not-found", `no image named ${wanted} in ${display}`, { hint });
    return { reference: entries.find((e) => e.name === match)!.descriptor.digest, name: imageName(match) };
  }
  const index = await layout.readIndex();
  if (index.manifests.length !== 1) throw new RegcliError("usage", `${display} holds ${index.manifests.length} images: name one`, { hint });
  const only = index.manifests[0]!;
  return { reference: only.digest, name: imageName(only.annotations?.[REF_NAME]) };
}

/** Open a location for reading without choosing an image in it. */
export async function openLocation(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedLocation & { layout?: OciLayout }> {
  if (spec.kind === "registry") return { source: registrySource(ctx, spec.ref), display: spec.ref.name, close: nothing };
  if (spec.kind === "store") {
    const layout = new LocalStore().layout;
    await layout.init();
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
    const { layout } = await unpackArchive(spec.file, dir);
    return { source: layout, layout, display: `${spec.flavour}:${spec.file}`, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Open one image of a location: the only way commands reach an image. */
export async function openSource(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedSource> {
  if (spec.kind === "registry") {
    return { source: registrySource(ctx, spec.ref), reference: spec.ref.digest ?? spec.ref.tag ?? "latest", display: spec.ref.full, name: storeName(spec.ref), close: nothing };
  }
  if (spec.kind === "store") {
    const store = new LocalStore();
    const entry = spec.name ? await store.findImage(spec.name) : undefined;
    if (!entry) return { ...(await openLocation(ctx, spec)), ...(await pick(store.layout, undefined, "the local store")) };
    // The store as a source carries the image's origin, so a copy to that registry mounts its blobs.
    return { source: await store.sourceFor(entry.name), reference: entry.descriptor.digest, display: `store:${entry.name}`, name: entry.name, close: nothing };
  }
  const opened = await openLocation(ctx, spec);
  try {
    const wanted = spec.kind === "oci" ? spec.tag : spec.name;
    const picked = await pick(opened.layout!, wanted, opened.display);
    return { ...opened, ...picked, display: wanted ? `${opened.display}:${wanted}` : opened.display };
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

/** `defaultName` names the image in an archive, layout or the store when the spec does not (e.g. the source's name). */
export async function openDestination(ctx: RegistryContext, spec: LocationSpec, defaultName = "latest"): Promise<OpenedDestination> {
  if (spec.kind === "registry") {
    return {
      destination: registryDestination(ctx, spec.ref),
      reference: spec.ref.digest ?? spec.ref.tag ?? "latest",
      display: spec.ref.full,
      finish: nothing,
      abort: nothing,
    };
  }
  if (spec.kind === "store") {
    const name = spec.name ? storeName(parseReference(spec.name)) : imageName(defaultName);
    if (!name) throw new RegcliError("usage", "name the image in the local store: store:NAME[:TAG]");
    const store = new LocalStore();
    await store.layout.init();
    const end = await store.beginIngest();
    return { destination: store.layout, reference: name, display: `store:${name}`, finish: end, abort: end };
  }
  if (spec.kind === "oci") {
    const layout = new OciLayout(resolve(spec.dir), `oci:${spec.dir}`);
    await layout.init();
    const tag = spec.tag ?? defaultName;
    return { destination: layout, reference: tag, display: `oci:${spec.dir}:${tag}`, finish: nothing, abort: nothing };
  }
  const writer = new ArchiveWriter(spec.file, spec.flavour);
  const name = spec.name ?? defaultName;
  return { destination: writer, reference: name, display: `${spec.flavour}:${spec.file}:${name}`, finish: () => writer.finish(), abort: () => writer.abort() };
}
