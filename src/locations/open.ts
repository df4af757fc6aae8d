import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RegcliError } from "../errors.js";
import type { RegistryContext } from "../registry/context.js";
import { matchArchiveName, unpackArchive } from "./archive-reader.js";
import { ArchiveWriter } from "./archive-writer.js";
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

const nothing = async () => undefined;

/** The one entry of a layout, or the named one; a clear error listing names otherwise. */
async function pick(layout: OciLayout, wanted: string | undefined, display: string): Promise<string> {
  const names = (await layout.names()).map((n) => n.name);
  if (wanted) {
    const match = names.includes(wanted) ? wanted : matchArchiveName(names, wanted);
    if (!match) throw new RegcliError("not-found", `no image named ${wanted} in ${display}`, { hint: names.length ? `names: ${names.join(", ")}` : undefined });
    return match;
  }
  const index = await layout.readIndex();
  if (index.manifests.length !== 1) {
    throw new RegcliError("usage", `${display} holds ${index.manifests.length} images: name one`, { hint: names.length ? `names: ${names.join(", ")}` : undefined });
  }
  return index.manifests[0]!.digest;
}

export async function openSource(ctx: RegistryContext, spec: LocationSpec): Promise<OpenedSource> {
  if (spec.kind === "registry") {
    return { source: registrySource(ctx, spec.ref), reference: spec.ref.digest ?? spec.ref.tag ?? "latest", display: spec.ref.full, close: nothing };
  }
  if (spec.kind === "oci") {
    const display = `oci:${spec.dir}`;
    const layout = new OciLayout(resolve(spec.dir), display);
    return { source: layout, reference: await pick(layout, spec.tag, display), display: spec.tag ? `${display}:${spec.tag}` : display, close: nothing };
  }
  const dir = await mkdtemp(join(tmpdir(), "regcli-archive-"));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    const display = `${spec.flavour}:${spec.file}`;
    const { layout } = await unpackArchive(spec.file, dir);
    return { source: layout, reference: await pick(layout, spec.name, display), display: spec.name ? `${display}:${spec.name}` : display, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `defaultName` names the image in an archive or layout when the spec does not (e.g. the source's name). */
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
