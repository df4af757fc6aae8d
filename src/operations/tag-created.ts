import type { ImageSource } from "../locations/types.js";
import { hostPlatform, MediaType, platformMatches } from "../oci/index.js";
import { limiter } from "../util/limit.js";
import { readConfig } from "./inspect.js";
import type { CreatedLookup } from "./tag-filters.js";

const LOOKUPS_AT_ONCE = 8;

/**
 * The `created` time of the image each tag of `source` names, for the tag filters: the image config's `created`;
 * for an index, that of the child for this machine's platform, else of its first child. Undefined for an image
 * without a (valid) created time and for an artifact (its config is not an image config). At most 8 lookups run at
 * once (2-3 requests each); each tag is looked up once however often it is asked.
 */
export function createdLookup(source: ImageSource, concurrency = LOOKUPS_AT_ONCE): CreatedLookup {
  const limit = limiter(concurrency);
  const seen = new Map<string, Promise<Date | undefined>>();
  const lookup = async (tag: string): Promise<Date | undefined> => {
    const where = `${source.description}:${tag}`;
    let image = await source.getManifest(tag);
    if (image.parsed.kind === "index") {
      const children = image.parsed.index.manifests;
      const child = children.find((d) => platformMatches(d.platform, hostPlatform())) ?? children[0];
      if (!child) return undefined;
      image = await source.getManifest(child.digest);
    }
    if (image.parsed.kind !== "image") return undefined;
    const type = image.parsed.manifest.config.mediaType;
    if (type !== MediaType.OciConfig && type !== MediaType.DockerConfig) return undefined;
    const { config } = await readConfig(source, image, where);
    const at = typeof config.created === "string" ? new Date(config.created) : undefined;
    return at && !Number.isNaN(at.getTime()) ? at : undefined;
  };
  return (tag) => {
    let found = seen.get(tag);
    if (!found) seen.set(tag, (found = limit(() => lookup(tag))));
    return found;
  };
}
