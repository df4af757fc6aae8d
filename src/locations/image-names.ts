import { RegcliError } from "../errors.js";
import { isDigest, type Descriptor } from "../oci/index.js";
import { formatReference, parseReference, type Reference } from "../reference/index.js";
import { REF_NAME } from "./oci-layout.js";

/** The full image name (docker.io/library/busybox:latest), as Docker 25 and containerd write it next to REF_NAME. */
export const CONTAINERD_NAME = "io.containerd.image.name";

/**
 * Who an image in a layout or archive is: its full normalized name when one is known (registry/repository:tag, or
 * @digest), and its tag. Either may be unknown.
 */
export interface ImageIdentity {
  name?: string;
  tag?: string;
}

/** A name with neither "/", ":" nor "@" is a tag (an OCI ref.name, a skopeo oci:DIR:TAG), never a repository. */
export function isBareTag(text: string): boolean {
  return !/[/:@]/.test(text);
}

/** A parsed reference's full name (name:tag, or name@digest): what the local store and archives name images by. */
export function fullName(ref: Reference): string {
  return ref.tag ? `${ref.name}:${ref.tag}` : `${ref.name}@${ref.digest}`;
}

/** The full normalized form of an image name (busybox -> docker.io/library/busybox:latest); undefined if invalid. */
export function normalizeName(text: string): string | undefined {
  try {
    return fullName(parseReference(text));
  } catch {
    return undefined;
  }
}

function tagOf(name: string): string | undefined {
  return parseReference(name, { defaultTag: false }).tag;
}

/** A full name under another tag: the repository of `name` with `tag`. */
export function withTagName(name: string, tag: string): string {
  const ref = parseReference(name, { defaultTag: false });
  return `${ref.name}:${tag}`;
}

/** Docker's short form for RepoTags and messages: docker.io/library/busybox:latest -> busybox:latest. */
export function familiarName(name: string): string {
  const ref = parseReference(name, { defaultTag: false });
  return formatReference(ref).familiar;
}

/** Who an index entry names: io.containerd.image.name first, then a ref.name that is a whole reference. */
export function identityOf(desc: Descriptor): ImageIdentity {
  const containerd = desc.annotations?.[CONTAINERD_NAME];
  const refName = desc.annotations?.[REF_NAME];
  const name = (containerd ? normalizeName(containerd) : undefined) ?? (refName && !isBareTag(refName) ? normalizeName(refName) : undefined);
  const tag = refName && isBareTag(refName) ? refName : name ? tagOf(name) : undefined;
  return { ...(name ? { name } : {}), ...(tag ? { tag } : {}) };
}

/**
 * The index annotations for an entry written as `entry`: a full name (it contains "/") gets Docker 25's pair,
 * io.containerd.image.name plus the tag alone in ref.name; a bare tag gets ref.name only.
 */
export function annotationsFor(entry: string): Record<string, string> {
  if (isBareTag(entry)) return { [REF_NAME]: entry };
  const tag = tagOf(entry);
  return { [CONTAINERD_NAME]: entry, ...(tag ? { [REF_NAME]: tag } : {}) };
}

/** How an entry is shown in messages: busybox:latest, or its tag, or its digest. */
export function displayName(desc: Descriptor): string {
  const id = identityOf(desc);
  return id.name ? familiarName(id.name) : (id.tag ?? desc.digest);
}

/**
 * The index entry `wanted` names, skopeo- and docker-style: an exact annotation, a tag, or a name compared in
 * normalized form on both sides (busybox, library/busybox:latest and docker.io/library/busybox:latest are one).
 * Undefined when nothing matches; an error when it matches different images.
 */
export function findEntry(entries: Descriptor[], wanted: string, where: string): Descriptor | undefined {
  const normalized = isDigest(wanted) ? undefined : normalizeName(wanted);
  const stages: Array<(d: Descriptor) => boolean> = [
    (d) => d.digest === wanted || d.annotations?.[REF_NAME] === wanted || d.annotations?.[CONTAINERD_NAME] === wanted,
    (d) => isBareTag(wanted) && identityOf(d).tag === wanted,
    (d) => normalized !== undefined && identityOf(d).name === normalized,
  ];
  for (const stage of stages) {
    const found = entries.filter(stage);
    if (new Set(found.map((d) => d.digest)).size > 1) {
      throw new RegcliError("usage", `${wanted} names ${found.length} different images in ${where}: name one`, { hint: `names: ${found.map(displayName).join(", ")}` });
    }
    if (found.length) return found[0];
  }
  return undefined;
}
