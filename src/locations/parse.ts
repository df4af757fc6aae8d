import { statSync } from "node:fs";
import { RegcliError } from "../errors.js";
import { parseReference, type Reference } from "../reference/index.js";

/** Where an image is, as a command line names it (skopeo-style transports; a plain reference is a registry). */
export type LocationSpec =
  | { kind: "registry"; ref: Reference }
  | { kind: "oci"; dir: string; tag: string | undefined }
  | { kind: "archive"; flavour: "docker-archive" | "oci-archive"; file: string; name: string | undefined };

/** skopeo's rule: the path ends at the first colon; what follows names the image inside. */
function splitPath(rest: string, transport: string): { path: string; name: string | undefined } {
  const colon = rest.indexOf(":");
  const path = colon >= 0 ? rest.slice(0, colon) : rest;
  const name = colon >= 0 ? rest.slice(colon + 1) : undefined;
  if (!path) throw new RegcliError("usage", `${transport}: needs a path, e.g. ${transport}:./image${transport === "oci" ? "" : ".tar"}`);
  return { path, name: name || undefined };
}

export function parseLocation(text: string, options: { defaultTag?: boolean } = {}): LocationSpec {
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
      hint: "use a registry reference, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]",
    });
  }
  return { kind: "registry", ref: parseReference(text.replace(/^docker:\/\//, ""), options) };
}

/**
 * A push source as users type it: a transport-prefixed location, or a plain path that exists on disk (a
 * directory is an OCI layout, a file an archive whose kind is found when it is read).
 */
export function parseSourcePath(text: string): LocationSpec | undefined {
  if (/^(oci|docker-archive|oci-archive):/.test(text)) return parseLocation(text);
  let isDir: boolean;
  try {
    isDir = statSync(text).isDirectory();
  } catch {
    return undefined;
  }
  return isDir ? { kind: "oci", dir: text, tag: undefined } : { kind: "archive", flavour: "docker-archive", file: text, name: undefined };
}
