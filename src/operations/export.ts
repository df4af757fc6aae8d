import { createWriteStream } from "node:fs";
import { readdir, rename, rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import { outputFileError, RegcliError } from "../errors.js";
import { openSource, type OpenedSource, type OpenSourceOptions } from "../locations/open.js";
import { hasLocalTransport, parseLocation } from "../locations/parse.js";
import { catFile, exportToDirectory, exportToTar, type FlattenOptions, type LayerInput } from "../oci/flatten.js";
import { refuseArtifact, type Platform } from "../oci/index.js";
import type { RegistryContext } from "../registry/context.js";
import { LocalStore } from "../store/store.js";
import { makeDirectory } from "../util/files.js";
import { resolveImage } from "./inspect.js";

/**
 * An image named on the command line: a transport location (store:, oci:, docker-archive:, ...), else an image
 * of the local store when one matches (any identifier `images` prints; no network), else the registry.
 */
export async function openImage(ctx: RegistryContext, text: string, store = new LocalStore(), options: OpenSourceOptions = {}): Promise<OpenedSource> {
  // A store that cannot be read (damaged index.json) does not stand between the user and the registry.
  if (!hasLocalTransport(text) && !text.startsWith("docker://") && (await store.lookup(text).catch(() => [])).length) {
    return openSource(ctx, { kind: "store", name: text });
  }
  return openSource(ctx, parseLocation(text), options);
}

async function withLayers<T>(ctx: RegistryContext, text: string, platform: Platform | undefined, action: (layers: LayerInput[]) => Promise<T>): Promise<T> {
  const opened = await openImage(ctx, text);
  try {
    const { image } = await resolveImage(opened.source, opened, platform);
    if (image.parsed.kind !== "image") throw new RegcliError("registry", `${opened.display} is not an image`);
    refuseArtifact(image.parsed.manifest, opened.display);
    const layers = image.parsed.manifest.layers.map((desc) => ({ digest: desc.digest, mediaType: desc.mediaType, open: () => opened.source.openBlob(desc) }));
    return await action(layers);
  } finally {
    await opened.close();
  }
}

/** Flatten an image into one tar file or a new directory; the output appears under its name only when complete. */
export async function exportImage(
  ctx: RegistryContext,
  text: string,
  output: string,
  options: FlattenOptions & { platform?: Platform; toDirectory?: boolean } = {},
): Promise<{ entries: number }> {
  const partial = `${output}.regcli-${process.pid}.partial`;
  if (options.toDirectory) {
    const existing = await readdir(output).catch(() => undefined);
    if (existing && existing.length) throw new RegcliError("usage", `${output} is not empty: export into a new or empty directory`);
  }
  try {
    if (options.toDirectory) await makeDirectory(partial);
    const result = await withLayers(ctx, text, options.platform, (layers) =>
      options.toDirectory ? exportToDirectory(layers, partial, options) : exportToTar(layers, createWriteStream(partial, { mode: 0o644 }), options),
    );
    if (options.toDirectory) await rm(output, { recursive: true, force: true });
    await rename(partial, output);
    return result;
  } catch (err) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw outputFileError(err, output) ?? err;
  }
}

export async function exportImageToStream(ctx: RegistryContext, text: string, out: Writable, options: FlattenOptions & { platform?: Platform } = {}): Promise<void> {
  await withLayers(ctx, text, options.platform, async (layers) => {
    await exportToTar(layers, out, options);
  });
}

/** Print one file of an image: the version in the topmost layer that has it. */
export async function cat(ctx: RegistryContext, text: string, path: string, out: Writable, platform?: Platform): Promise<void> {
  await withLayers(ctx, text, platform, (layers) => catFile(layers, path, out));
}

