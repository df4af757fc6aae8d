import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RegcliError } from "../errors.js";
import { unpackArchive } from "../locations/archive-reader.js";
import { findEntry, fullName, identityOf, normalizeName } from "../locations/image-names.js";
import { ArchiveWriter, type ArchiveFlavour } from "../locations/archive-writer.js";
import { OciLayout } from "../locations/oci-layout.js";
import { parseSourcePath } from "../locations/parse.js";
import { CopyEngine } from "./copy.js";
import { artifactTypeOf, configPlatformText, isArtifact, type ImageConfig, type ManifestData } from "../oci/index.js";
import { formatReference, parseReference } from "../reference/index.js";
import { LocalStore, ORIGIN_ANNOTATION } from "../store/store.js";

export interface StoredImage {
  name: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  size: number;
  created?: string;
  /** An OCI artifact (an SBOM, a signature...) rather than an image: its type; it has no platform. */
  artifactType?: string;
}

async function describeImage(store: LocalStore, manifest: ManifestData): Promise<{ platforms: string[]; size: number; created?: string; artifactType?: string }> {
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
  const size = m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
  if (isArtifact(m)) return { platforms: [], size, artifactType: artifactTypeOf(m), created: m.annotations?.["org.opencontainers.image.created"] };
  let config: ImageConfig = {};
  try {
    const parsed: unknown = JSON.parse((await store.layout.readBlob(m.config.digest, 8 * 1024 * 1024)).toString("utf8"));
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) config = parsed as ImageConfig;
  } catch {
    /* a config we cannot read leaves platform and created unknown */
  }
  return {
    platforms: [configPlatformText(config)],
    size,
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

/**
 * Does a stored image match a `docker images REPOSITORY[:TAG]` / `--filter reference=` pattern? As Docker's
 * FamiliarMatch: a glob (`*` and `?` within one path component) against the familiar name with its tag
 * (busybox:latest), else without it (busybox); the full name (docker.io/library/busybox) is matched too.
 */
export function matchesReference(image: Pick<StoredImage, "name" | "repository" | "tag">, pattern: string): boolean {
  const glob = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
  const full = parseReference(image.name, { defaultTag: false }).name;
  const tagged = image.tag === "<none>" ? [] : [`${image.repository}:${image.tag}`, `${full}:${image.tag}`];
  return [...tagged, image.repository, full].some((text) => glob.test(text));
}

/** "docker.io/library/busybox:latest" -> "busybox", as `docker images` shows repositories. */
function familiarRepository(name: string): string {
  const ref = parseReference(name, { defaultTag: false });
  return formatReference({ registry: ref.registry, repository: ref.repository }).familiar;
}

/** Give a stored image another name (like `docker tag`); the source is any identifier `images` prints. */
export async function tagImage(sourceText: string, targetText: string, store = new LocalStore()): Promise<{ source: string; target: string; digest: string }> {
  const target = fullName(parseReference(targetText));
  const { name: source, descriptor: desc } = await store.findImage(sourceText);
  const manifest = await store.layout.getManifest(desc.digest);
  const origin = desc.annotations?.[ORIGIN_ANNOTATION];
  await store.layout.putManifest(manifest, target, origin ? { [ORIGIN_ANNOTATION]: origin } : {});
  return { source, target, digest: desc.digest };
}

/**
 * Remove names from the store, then the blobs no remaining image needs. A digest stands for its one name; a
 * digest with several names is refused (which one is meant?), as `docker rmi` does.
 */
export async function removeImages(texts: string[], store = new LocalStore()): Promise<{ removed: string[]; freed: number }> {
  const names: string[] = [];
  const missing: string[] = [];
  for (const text of texts) {
    const found = await store.lookup(text);
    if (!found.length) {
      missing.push(normalizeName(text) ?? text);
      continue;
    }
    if (found.length > 1) {
      throw new RegcliError("usage", `${text} names ${found.length} images in the local store: ${found.map((e) => e.name).join(", ")}`, { hint: "remove them by name" });
    }
    names.push(found[0]!.name);
  }
  await store.layout.init();
  const removed = await store.layout.removeNames(names);
  const { bytes } = await store.gc();
  if (missing.length) {
    throw new RegcliError("not-found", `no image named ${missing.join(", ")} in the local store${removed.length ? ` (removed ${removed.join(", ")})` : ""}`);
  }
  return { removed, freed: bytes };
}

export async function prune(store = new LocalStore()): Promise<{ removed: number; bytes: number }> {
  return store.gc();
}

/** Write stored images into one docker-archive (or oci-archive) tar, each shared blob once; `output` a file or a stream. */
export async function saveImages(texts: string[], output: string | Writable, flavour: ArchiveFlavour = "docker-archive", store = new LocalStore()): Promise<{ names: string[] }> {
  const entries = [];
  for (const text of texts) entries.push(await store.findImage(text));
  const refs = entries.map((e) => parseReference(e.name));
  const writer = new ArchiveWriter(output, flavour);
  try {
    // An oci-archive holds the images' referrers as a layout does (a docker-archive has no place for them).
    const engine = new CopyEngine(flavour === "oci-archive" ? { referrers: {} } : {});
    for (const { name, descriptor } of entries) await engine.copy(store.layout, descriptor.digest, writer, name);
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { names: refs.map((r) => r.familiar) };
}

/** Copy a stream (stdin) into a file, so an archive can be read like any other. */
async function spool(input: Readable, file: string): Promise<string> {
  await pipeline(input, createWriteStream(file, { mode: 0o600 }));
  if ((await stat(file)).size === 0) throw new RegcliError("usage", "standard input is empty: pipe an archive to it, or give -i FILE");
  return file;
}

/**
 * Load every named image of a docker-archive or oci-archive (a file, or a stream such as stdin), or of an OCI
 * layout directory (`DIR` or `oci:DIR[:TAG]`), into the store.
 */
export async function loadImages(input: string | Readable, store = new LocalStore()): Promise<{ loaded: Array<{ name: string; digest: string }> }> {
  const dir = await mkdtemp(join(tmpdir(), "regcli-load-"));
  try {
    let layout: OciLayout;
    let only: string | undefined;
    const spec = typeof input === "string" ? parseSourcePath(input) : undefined;
    const display = typeof input === "string" ? input : "standard input";
    if (spec?.kind === "oci") {
      layout = new OciLayout(resolve(spec.dir), `oci:${spec.dir}`);
      only = spec.tag;
    } else {
      const file = typeof input === "string" ? (spec?.kind === "archive" ? spec.file : input) : await spool(input, join(dir, "stdin.tar"));
      const unpacked = join(dir, "layout");
      await mkdir(unpacked);
      try {
        layout = (await unpackArchive(file, unpacked)).layout;
      } catch (err) {
        // Name what the user gave, not the spooled copy of standard input.
        if (err instanceof RegcliError && file !== display) throw new RegcliError(err.kind, err.message.replaceAll(file, display), { hint: err.hint, cause: err });
        throw err;
      }
    }
    const manifests = await layout.entries();
    const chosen = only ? findEntry(manifests, only, display) : undefined;
    if (only && !chosen) throw new RegcliError("not-found", `${display} holds no image called ${only}`);
    const entries = (chosen ? [chosen] : manifests).map((descriptor) => ({ descriptor, ...identityOf(descriptor) }));
    const named = entries.filter((e) => e.name);
    const tagOnly = entries.filter((e) => !e.name);
    if (!entries.length) throw new RegcliError("usage", `${display} holds no image to load`);
    const engine = new CopyEngine({ referrers: {} }); // the archive's referrers of each image come along
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
      throw new RegcliError("usage", `${display}: ${what} has no repository name, so it was not loaded${loaded.length ? ` (loaded ${loaded.map((l) => l.name).join(", ")})` : ""}`, {
        hint: `push it under a name instead: regcli push ${spec?.kind === "oci" ? "oci" : "oci-archive"}:${spec?.kind === "oci" ? spec.dir : display}:${tagOnly[0]!.tag ?? tagOnly[0]!.descriptor.digest} REGISTRY/REPOSITORY:TAG`,
      });
    }
    return { loaded };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The REPOSITORY:TAG names `images` shows, read from the index alone (for shell completion): a store that does
 *  not exist has none, and is not created. */
export async function imageNames(store = new LocalStore()): Promise<string[]> {
  const names = await store.layout.names().catch(() => []);
  return names.flatMap(({ name }) => {
    const tag = parseReference(name, { defaultTag: false }).tag;
    return tag ? [`${familiarRepository(name)}:${tag}`] : [];
  });
}
