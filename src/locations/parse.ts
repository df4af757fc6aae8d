import { RegcliError } from "../errors.js";
import { parseReference, validateTag, type Reference } from "../reference/index.js";

/** Where an image is, as a command line names it (skopeo-style transports; a plain reference is a registry). */
export type LocationSpec =
  | { kind: "registry"; ref: Reference }
  | { kind: "oci"; dir: string; tag: string | undefined };

/** `oci:DIR[:TAG]`: the tag is what follows the last colon when it is a valid tag and the rest is a path. */
function splitPathAndTag(rest: string, transport: string): { path: string; tag: string | undefined } {
  const colon = rest.lastIndexOf(":");
  if (colon > 0) {
    const tag = rest.slice(colon + 1);
    if (tag && !tag.includes("/")) {
      validateTag(tag);
      return { path: rest.slice(0, colon), tag };
    }
  }
  if (!rest) throw new RegcliError("usage", `${transport}: needs a path, e.g. ${transport}:./dir:tag`);
  return { path: rest, tag: undefined };
}

export function parseLocation(text: string, options: { defaultTag?: boolean } = {}): LocationSpec {
  if (text.startsWith("oci:")) {
    const { path, tag } = splitPathAndTag(text.slice(4), "oci");
    return { kind: "oci", dir: path, tag };
  }
  if (/^(docker-archive|oci-archive|dir|docker-daemon|containers-storage):/.test(text)) {
    throw new RegcliError("usage", `the ${text.split(":")[0]}: transport is not supported yet`, { hint: "use a registry reference or oci:DIR[:TAG]" });
  }
  return { kind: "registry", ref: parseReference(text.replace(/^docker:\/\//, ""), options) };
}
