import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegcliError } from "../errors.js";
import { unpackArchive } from "../locations/archive-reader.js";
import { identityOf } from "../locations/image-names.js";
import { ArchiveWriter, type ArchiveFlavour } from "../locations/archive-writer.js";
import { CopyEngine } from "./copy.js";
import { formatPlatform, type ImageConfig, type ManifestData } from "../oci/index.js";
import { formatReference, parseReference } from "../reference/index.js";
import { LocalStore, ORIGIN_ANNOTATION } from "../store/store.js";
import { storeName } from "./pull.js";

export interface StoredImage {
  name: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  size: number;
  created?: string;
}

async function describeImage(store: LocalStore, manifest: ManifestData): Promise<{ platforms: string[]; size: number; created?: string }> {
  if (manifest.parsed.kind === "index") {
    const out = { platforms: [] as string[], size: manifest.bytes.length, created: undefined as string | undefined };
    for (const child of manifest.parsed.index.manifests) {
      if (!(await store.layout.hasBlob(child.digest))) continue;
      const sub = await describeImage(store, await store.layout.getManifest(child.digest));
      out.platforms.push(...sub.platforms);
      out.size += sub.size;
      out.created ??= sub.created;
    }
    return out;
  }
  const m = manifest.parsed.manifest;
  let config: ImageConfig = {};
  try {
    config = JSON.parse((await store.layout.readBlob(m.config.digest, 8 * 1024 * 1024)).toString("utf8"));
  } catch {
    /* a config we cannot read leaves platform and created unknown */
  }
  return {
    platforms: [formatPlatform({ os: config.os ?? "unknown", architecture: config.architecture ?? "unknown", variant: config.variant })],
    size: m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
    created: config.created,
  };
}

export async function listImages(store = new LocalStore()): Promise<StoredImage[]> {
  await store.layout.init();
  const out: StoredImage[] = [];
  for (const { name, descriptor } of await store.layout.names()) {
    const manifest = await store.layout.getManifest(descriptor.digest);
    const info = await describeImage(store, manifest);
    const ref = parseReference(name, { defaultTag: false });
    out.push({
      name,
      repository: familiarRepository(name),
      tag: ref.tag ?? "<none>",
      digest: descriptor.digest,
      mediaType: manifest.mediaType,
      ...info,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** "docker.io/library/busybox:latest" -> "busybox", as `docker images` shows repositories. */
function familiarRepository(name: string): string {
  const ref = parseReference(name, { defaultTag: false });
  return formatReference({ registry: ref.registry, repository: ref.repository }).familiar;
}

/** Give a stored image another name (like `docker tag`). */
export async function tagImage(sourceText: string, targetText: string, store = new LocalStore()): Promise<{ source: string; target: string; digest: string }> {
  const source = storeName(parseReference(sourceText));
  const target = storeName(parseReference(targetText));
  const desc = await store.layout.find(source).catch(() => undefined);
  if (!desc) throw new RegcliError("not-found", `no image named ${source} in the local store`, { hint: "see regcli images" });
  const manifest = await store.layout.getManifest(desc.digest);
  const origin = desc.annotations?.[ORIGIN_ANNOTATION];
  await store.layout.putManifest(manifest, target, origin ? { [ORIGIN_ANNOTATION]: origin } : {});
  return { source, target, digest: desc.digest };
}

/** Remove names from the store, then the blobs no remaining image needs. */
export async function removeImages(texts: string[], store = new LocalStore()): Promise<{ removed: string[]; freed: number }> {
  const names = texts.map((t) => storeName(parseReference(t)));
  await store.layout.init();
  const removed = await store.layout.removeNames(names);
  const missing = names.filter((n) => !removed.includes(n));
  const { bytes } = await store.gc();
  if (missing.length) {
    throw new RegcliError("not-found", `no image named ${missing.join(", ")} in the local store${removed.length ? ` (removed ${removed.join(", ")})` : ""}`);
  }
  return { removed, freed: bytes };
}

export async function prune(store = new LocalStore()): Promise<{ removed: number; bytes: number }> {
  return store.gc();
}

/** Write stored images into one docker-archive (or oci-archive) tar, each shared blob once. */
export async function saveImages(texts: string[], file: string, flavour: ArchiveFlavour = "docker-archive", store = new LocalStore()): Promise<{ names: string[] }> {
  const refs = texts.map((t) => parseReference(t));
  const writer = new ArchiveWriter(file, flavour);
  try {
    const engine = new CopyEngine();
    for (const ref of refs) {
      const name = storeName(ref);
      if (!(await store.layout.find(name).catch(() => undefined))) {
        throw new RegcliError("not-found", `no image named ${name} in the local store`, { hint: "pull it first, or see regcli images" });
      }
      await engine.copy(store.layout, name, writer, name);
    }
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { names: refs.map((r) => r.familiar) };
}

/** Load every named image of a docker-archive or oci-archive into the store. */
export async function loadImages(file: string, store = new LocalStore()): Promise<{ loaded: Array<{ name: string; digest: string }> }> {
  const dir = await mkdtemp(join(tmpdir(), "regcli-load-"));
  try {
    const { layout } = await unpackArchive(file, dir);
    const entries = (await layout.readIndex()).manifests.map((descriptor) => ({ descriptor, ...identityOf(descriptor) }));
    const named = entries.filter((e) => e.name);
    const tagOnly = entries.filter((e) => !e.name);
    if (!named.length && !tagOnly.length) throw new RegcliError("usage", `${file} holds no image to load`);
    const engine = new CopyEngine();
    const loaded: Array<{ name: string; digest: string }> = [];
    await store.withIngest(async () => {
      for (const { name, descriptor } of named) {
        await engine.copy(layout, descriptor.digest, store.layout, name!);
        loaded.push({ name: name!, digest: descriptor.digest });
      }
    });
    if (tagOnly.length) {
      // A ref.name alone is a tag: taking it for a repository would load "latest" as docker.io/library/latest.
      const what = tagOnly.map((e) => (e.tag ? `tag ${e.tag} (${e.descriptor.digest})` : e.descriptor.digest)).join(", ");
      throw new RegcliError("usage", `${file}: ${what} has no repository name, so it was not loaded${loaded.length ? ` (loaded ${loaded.map((l) => l.name).join(", ")})` : ""}`, {
        hint: `push it under a name instead: regcli push oci-archive:${file}:${tagOnly[0]!.tag ?? tagOnly[0]!.descriptor.digest} REGISTRY/REPOSITORY:TAG`,
      });
    }
    return { loaded };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
