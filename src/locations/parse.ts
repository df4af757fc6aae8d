import { statSync } from "node:fs";
import { RegcliError } from "../errors.js";
import { parseReference, type Reference } from "../reference/index.js";

/** Where an image is, as a command line names it (skopeo-style transports; a plain reference is a registry). */
export type LocationSpec =
  | { kind: "registry"; ref: Reference }
  | { kind: "oci"; dir: string; tag: string | undefined }
  | { kind: "archive"; flavour: "docker-archive" | "oci-archive"; file: string; name: string | undefined }
  /** The local image store; `name` is anything `images` prints: name:tag, name@digest, a digest or its short form. */
  | { kind: "store"; name: string | undefined };

const TRANSPORT_RE = /^(oci|docker-archive|oci-archive|store):/;
const DIGEST_SUFFIX_RE = /^(.*?)@((?:sha256|sha512):[a-f0-9]+)$/;

/** A registry reference as users type it: skopeo's `docker://` transport prefix is accepted and ignored. */
export function withoutDockerTransport(text: string): string {
  return text.replace(/^docker:\/\//, "");
}

/** True when the text names a local location (a transport other than a registry's). */
export function hasLocalTransport(text: string): boolean {
  return TRANSPORT_RE.test(text);
}

/**
 * skopeo's rule: the path ends at the first colon; what follows names the image inside. `PATH@DIGEST` (or
 * `PATH:@DIGEST`) picks an image by its manifest digest.
 */
function splitPath(rest: string, transport: string): { path: string; name: string | undefined } {
  const byDigest = DIGEST_SUFFIX_RE.exec(rest);
  if (byDigest && !byDigest[1]!.includes(":")) return { path: byDigest[1]!, name: byDigest[2] };
  const colon = rest.indexOf(":");
  const path = colon >= 0 ? rest.slice(0, colon) : rest;
  const name = colon >= 0 ? rest.slice(colon + 1).replace(/^@/, "") : undefined;
  if (!path) throw new RegcliError("usage", `${transport}: needs a path, e.g. ${transport}:./image${transport === "oci" ? "" : ".tar"}`);
  return { path, name: name || undefined };
}

export function parseLocation(text: string, options: { defaultTag?: boolean } = {}): LocationSpec {
  if (text.startsWith("store:")) return { kind: "store", name: text.slice(6) || undefined };
  if (text.startsWith("oci:")) {
    const { path, name } = splitPath(text.slice(4), "oci");
    return { kind: "oci", dir: path, tag: name };
  }
  for (const flavour of ["docker-archive", "oci-archive"] as const) {
    if (text.startsWith(`${flavour}:`)) {
      const { path, name } = splitPath(text.slice(flavour.length + 1), flavour);
      return { kind: "archive", flavour, file: path, name };
    }
  }
  if (/^(dir|docker-daemon|containers-storage):/.test(text)) {
    throw new RegcliError("usage", `the ${text.split(":")[0]}: transport is not supported`, {
      hint: "use a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]",
    });
  }
  return { kind: "registry", ref: parseReference(withoutDockerTransport(text), options) };
}

/**
 * What `blob` reads: a registry REPOSITORY@DIGEST, or a local location followed by @DIGEST (oci:DIR@sha256:...,
 * docker-archive:FILE@..., store:@...), the digest naming a blob there.
 */
export function parseBlobLocation(text: string): { spec: LocationSpec; digest: string } {
  if (hasLocalTransport(text)) {
    const m = DIGEST_SUFFIX_RE.exec(text);
    if (!m) throw new RegcliError("usage", `blob needs a digest: ${text} has none`, { hint: "add @sha256:... to the location" });
    return { spec: parseLocation(m[1]!), digest: m[2]! };
  }
  const ref = parseReference(withoutDockerTransport(text), { defaultTag: false });
  if (!ref.digest) throw new RegcliError("usage", `blob needs a digest: ${ref.familiar} has none`, { hint: "use REPOSITORY@sha256:..." });
  return { spec: { kind: "registry", ref }, digest: ref.digest };
}

/**
 * A push source as users type it: a transport-prefixed location, or a plain path that exists on disk (a
 * directory is an OCI layout, a file an archive whose kind is found when it is read).
 */
export function parseSourcePath(text: string): LocationSpec | undefined {
  if (hasLocalTransport(text)) return parseLocation(text);
  let isDir: boolean;
  try {
    isDir = statSync(text).isDirectory();
  } catch {
    return undefined;
  }
  return isDir ? { kind: "oci", dir: text, tag: undefined } : { kind: "archive", flavour: "docker-archive", file: text, name: undefined };
}

/** The registry a command's --username/--password-stdin apply to: the location's, when it is a registry. */
export function registryOf(spec: LocationSpec): string | undefined {
  return spec.kind === "registry" ? spec.ref.registry : undefined;
}
