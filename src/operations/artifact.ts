import { createReadStream, createWriteStream } from "node:fs";
import { link, lstat, rename, rm, stat, unlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { localFileError, RegcliError, writingTo } from "../errors.js";
import { openDestination, openSource, withSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { ImageDestination } from "../locations/types.js";
import {
  DEFAULT_FILE_MEDIA_TYPE,
  EMPTY_DESCRIPTOR,
  EMPTY_JSON,
  MediaType,
  parseManifest,
  TITLE_ANNOTATION,
  UNKNOWN_ARTIFACT_TYPE,
  type Descriptor,
  type ImageManifest,
} from "../oci/index.js";
import { withDigest } from "../reference/index.js";
import { crypto } from "../util/builtins.js";
import { bytesBlob, fileBlob } from "./blob-readers.js";
import type { RegistryContext } from "../registry/context.js";
import { makeDirectory } from "../util/files.js";

/** A file to push and the media type of its layer. */
export interface ArtifactFile {
  path: string;
  mediaType: string;
}

const MEDIA_TYPE_RE = /^[A-Za-z0-9][\w.+-]*\/[A-Za-z0-9][\w.+-]*$/;

/**
 * `FILE[:MEDIATYPE]` as oras takes it: the media type follows the last colon, when what follows it is one
 * (type/subtype), so a file name with a colon still works.
 */
export function parseFileArgument(text: string, defaultMediaType = DEFAULT_FILE_MEDIA_TYPE): ArtifactFile {
  const colon = text.lastIndexOf(":");
  if (colon > 0 && MEDIA_TYPE_RE.test(text.slice(colon + 1))) return { path: text.slice(0, colon), mediaType: text.slice(colon + 1) };
  if (colon > 0 && colon === text.length - 1) throw new RegcliError("usage", `${text}: no media type after the colon`, { hint: "give FILE or FILE:TYPE/SUBTYPE" });
  return { path: text, mediaType: defaultMediaType };
}


/** A local file's descriptor, hashed as a stream (never read whole into memory). */
async function describeFile(file: ArtifactFile, annotations?: Record<string, string>): Promise<Descriptor> {
  const info = await stat(file.path).catch((err) => {
    throw localFileError(err, file.path, "read") ?? err;
  });
  if (!info.isFile()) throw new RegcliError("usage", `${file.path} is not a regular file`, { hint: "pack a directory into a tar first" });
  const hash = crypto().createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of createReadStream(file.path, { highWaterMark: 256 * 1024 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (err) {
    throw localFileError(err, file.path, "read") ?? err;
  }
  return { mediaType: file.mediaType, digest: `sha256:${hash.digest("hex")}`, size, ...(annotations ? { annotations } : {}) };
}

/** Upload a hashed file; its bytes are verified again on the way (a file changed since it was hashed fails). */
function putFile(dst: ImageDestination, desc: Descriptor, path: string): Promise<unknown> {
  return dst.putBlob(desc, fileBlob(path, desc));
}

export interface PushArtifactOptions {
  artifactType?: string;
  annotations?: Record<string, string>;
  config?: ArtifactFile;
  /** Where the subject image is: a location, or a digest in the target's own location. */
  subject?: LocationSpec | { digest: string };
  /** Store the manifest under its digest only (attach: no tag). */
  byDigest?: boolean;
}

export interface PushArtifactResult {
  digest: string;
  /** Where it went: the location and the tag or digest. */
  destination: string;
  manifest: ImageManifest;
}

function byDigestDisplay(target: LocationSpec, digest: string): string {
  if (target.kind === "registry") return withDigest(target.ref, digest).full;
  if (target.kind === "oci") return `oci:${target.dir}@${digest}`;
  if (target.kind === "store") return `store:${digest}`;
  return `${target.flavour}:${target.file}@${digest}`;
}

/** Same place? A subject must be where the artifact is, or its referrers cannot be found. */
function samePlace(a: LocationSpec, b: LocationSpec): boolean {
  if (a.kind === "registry" && b.kind === "registry") return a.ref.registry === b.ref.registry && a.ref.repository === b.ref.repository;
  if (a.kind === "oci" && b.kind === "oci") return resolve(a.dir) === resolve(b.dir);
  return a.kind === "store" && b.kind === "store";
}

async function resolveSubject(ctx: RegistryContext, target: LocationSpec, subject: NonNullable<PushArtifactOptions["subject"]>): Promise<Descriptor> {
  let spec: LocationSpec;
  if ("digest" in subject) {
    if (target.kind === "registry") spec = { kind: "registry", ref: withDigest(target.ref, subject.digest) };
    else if (target.kind === "oci") spec = { ...target, tag: subject.digest };
    else if (target.kind === "store") spec = { kind: "store", name: subject.digest };
    else throw new RegcliError("usage", "an archive cannot hold a subject image: push the artifact to a registry, an OCI layout or the store");
  } else {
    spec = subject;
    if (!samePlace(target, spec)) {
      throw new RegcliError("usage", "the subject image must be in the same repository (or layout, or store) as the artifact", { hint: "a registry lists referrers per repository" });
    }
  }
  const desc = await withSource(ctx, spec, (opened) => opened.source.resolve(opened.reference));
  return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
}

/**
 * Push files as one OCI 1.1 artifact (an image manifest with artifactType, each file a layer titled with its base
 * name, the empty config unless one is given) to any writable location, optionally as a referrer of a subject.
 */
export async function pushArtifact(ctx: RegistryContext, target: LocationSpec, files: ArtifactFile[], options: PushArtifactOptions = {}): Promise<PushArtifactResult> {
  if (!options.byDigest && target.kind === "registry" && target.ref.digest) {
    throw new RegcliError("usage", `${target.ref.full}: push an artifact to a tag (its digest is its own)`, { hint: "or use regcli attach to store it by digest as a referrer" });
  }
  const titles = new Set<string>();
  for (const file of files) {
    const title = basename(file.path);
    if (titles.has(title)) throw new RegcliError("usage", `two files are named ${title}: an artifact's file names must differ`);
    titles.add(title);
  }
  const layers = await Promise.all(files.map((f) => describeFile(f, { [TITLE_ANNOTATION]: basename(f.path) })));
  const config = options.config ? await describeFile(options.config) : { ...EMPTY_DESCRIPTOR };
  // Image-spec: an artifact with the empty config MUST say its artifactType; with no files, one empty layer.
  const artifactType = options.artifactType ?? (options.config ? undefined : UNKNOWN_ARTIFACT_TYPE);
  const subject = options.subject ? await resolveSubject(ctx, target, options.subject) : undefined;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    ...(artifactType ? { artifactType } : {}),
    config,
    layers: layers.length ? layers : [{ ...EMPTY_DESCRIPTOR }],
    ...(subject ? { subject } : {}),
    ...(options.annotations && Object.keys(options.annotations).length ? { annotations: options.annotations } : {}),
  };
  const data = parseManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest, "the artifact");
  const opened = await openDestination(ctx, target);
  try {
    const dst = opened.destination;
    const empty = bytesBlob(EMPTY_JSON, EMPTY_DESCRIPTOR, "{}");
    await Promise.all([
      options.config ? putFile(dst, config, options.config.path) : dst.putBlob(config, empty),
      ...layers.map((layer, i) => putFile(dst, layer, files[i]!.path)),
      ...(layers.length ? [] : [dst.putBlob({ ...EMPTY_DESCRIPTOR }, empty)]),
    ]);
    const reference = options.byDigest ? data.digest : opened.reference;
    await dst.putManifest(data, reference);
    await opened.finish();
    return { digest: data.digest, destination: options.byDigest ? byDigestDisplay(target, data.digest) : opened.display, manifest };
  } catch (err) {
    await opened.abort();
    throw err;
  }
}

export interface PulledFile {
  name: string;
  digest: string;
  size: number;
}

export interface PullArtifactResult {
  digest: string;
  source: string;
  files: PulledFile[];
  /** Layers without a title annotation: not written (as oras pull). */
  skipped: Descriptor[];
}

/**
 * The file name an artifact's title may give: one plain name inside the output directory. Absolute paths, `..`,
 * path separators (a title "a/b" could pass through a symlink planted in DIR) and control characters are refused.
 */
export function checkTitle(title: string, where: string): string {
  const bad = title === "" || title === "." || title === ".." || /[/\\]/.test(title) || /[\u0000-\u001f\u007f]/.test(title) || Buffer.byteLength(title) > 255;
  if (bad) {
    throw new RegcliError("integrity", `refusing to write the artifact file ${JSON.stringify(title)} of ${where}: its title must be a plain file name (no path, no .., at most 255 bytes)`);
  }
  return title;
}

/** Place a complete temp file under its name: never over an existing one (a symlink included) unless `force`. */
async function place(temp: string, path: string, force: boolean): Promise<void> {
  if (force) return rename(temp, path); // replaces a symlink itself, never what it points to
  try {
    await link(temp, path); // fails if anything, even a dangling symlink, has that name
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw exists(path);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EXDEV") throw err;
    // A file system without hard links: check, then rename (a race here is the user's own).
    if (await lstat(path).then(() => true, () => false)) throw exists(path);
    return rename(temp, path);
  }
  await unlink(temp);
}

function exists(path: string): RegcliError {
  return new RegcliError("usage", `${path} already exists`, { hint: "remove it, pull into another directory (-o), or give --force to overwrite" });
}

/**
 * Write an artifact's files into `dir`, named by their title annotations. Every blob is verified (digest and size)
 * into a temp file in `dir`, and only when all are complete are they renamed into place: a failed pull leaves no
 * file under an artifact's name.
 */
export async function pullArtifact(ctx: RegistryContext, spec: LocationSpec, dir: string, options: { force?: boolean } = {}): Promise<PullArtifactResult> {
  const opened = await openSource(ctx, spec);
  const temps: string[] = [];
  try {
    const data = await opened.source.getManifest(opened.reference);
    if (data.parsed.kind !== "image") {
      throw new RegcliError("usage", `${opened.display} is an index, not an artifact`, { hint: "pull one of its manifests by digest (see regcli manifest)" });
    }
    const layers = data.parsed.manifest.layers;
    const named: Array<{ desc: Descriptor; name: string }> = [];
    const skipped: Descriptor[] = [];
    for (const desc of layers) {
      const title = desc.annotations?.[TITLE_ANNOTATION];
      if (title === undefined) {
        if (desc.digest !== EMPTY_DESCRIPTOR.digest) skipped.push(desc);
        continue;
      }
      const name = checkTitle(title, opened.display);
      if (named.some((n) => n.name === name)) throw new RegcliError("integrity", `${opened.display} names two files ${JSON.stringify(name)}`);
      named.push({ desc, name });
    }
    if (await stat(dir).then((s) => !s.isDirectory(), () => false)) throw new RegcliError("usage", `${dir} is not a directory`, { hint: "give a directory with -o" });
    await writingTo(dir, () => makeDirectory(dir));
    if (!options.force) {
      for (const { name } of named) if (await lstat(join(dir, name)).then(() => true, () => false)) throw exists(join(dir, name));
    }
    for (const { desc } of named) {
      const temp = join(dir, `.regcli-${crypto().randomBytes(6).toString("hex")}.partial`);
      temps.push(temp);
      const blob = await opened.source.openBlob(desc);
      // "wx": a new file only, so nothing planted under the temp name (a symlink) is followed.
      const sink = createWriteStream(temp, { flags: "wx", mode: 0o644 });
      try {
        await pipeline(blob, sink);
      } catch (err) {
        throw localFileError(sink.errored ?? err, dir) ?? err;
      }
    }
    for (const [i, { name }] of named.entries()) await writingTo(dir, () => place(temps[i]!, join(dir, name), options.force === true));
    return { digest: data.digest, source: opened.display, files: named.map(({ desc, name }) => ({ name, digest: desc.digest, size: desc.size })), skipped };
  } finally {
    await Promise.all(temps.map((t) => rm(t, { force: true }).catch(() => undefined)));
    await opened.close();
  }
}

