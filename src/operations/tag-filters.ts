import semver from "semver";
import { RegcliError } from "../errors.js";
import { parseDuration } from "../util/duration.js";

export { parseDuration };

/**
 * Which tags of a repository a sync or a retention run keeps: composable filters as people think of them
 * (anchored regexes, a semver range, the latest N, newer than a duration). Pure apart from the `created`
 * lookup, which is asked only when a filter needs an image's creation time.
 *
 * The filters apply in this order, each to what the previous ones left: include, exclude, semver, newerThan,
 * latest. So `{ semver: "^1", latest: 3 }` keeps the 3 highest 1.x versions, and `{ newerThan: "30d", latest: 5 }`
 * keeps at most 5 of the images created in the last 30 days.
 *
 * Versions (as skopeo sync, through Masterminds/semver, reads them): a tag is a version when it is `MAJOR`,
 * `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`, with an optional leading `v`, an optional `-PRERELEASE` and `+BUILD`;
 * missing parts are 0 (`v1.2` is 1.2.0). So `1.2-alpine` is the pre-release 1.2.0-alpine, and `latest`, `main`
 * or `sha-abc123` are not versions. Ranges are node-semver ranges: a pre-release matches only a range that names
 * a pre-release of the same MAJOR.MINOR.PATCH (`>=1.0.0` does not keep `2.0.0-rc1`; `>=2.0.0-rc0` does).
 */
export interface TagFilterSpec {
  /** Anchored regular expressions: a tag must match one of them (all tags when absent). */
  include?: string[];
  /** Anchored regular expressions: a tag matching any of them is dropped. */
  exclude?: string[];
  /** A semver range (e.g. ">=1.2 <2"); tags that are not versions are dropped. */
  semver?: string;
  /**
   * Keep only the newest N of what is left: by version order (highest first) when every remaining tag is a
   * version, else by the image's creation time (newest first; an image without a created time counts as the
   * oldest). Ties (1.2 and v1.2.0, or equal times) are broken by the tag's text, greater first, so a run is
   * deterministic.
   */
  latest?: number;
  /** Keep only images created within this duration ("90m", "12h", "30d", "2w"; see parseDuration). */
  newerThan?: string;
  /**
   * What newerThan does with an image whose created time is unknown (no `created` in its config, or an
   * artifact): "drop" (the default: it is not known to be newer) or "keep" (retention: not known to be older).
   */
  undated?: "keep" | "drop";
}

/** Creation time of the image a tag names, when a filter needs it (latest by time, newer-than). */
export type CreatedLookup = (tag: string) => Promise<Date | undefined>;

const VERSION = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** The version a tag names (see TagFilterSpec), or undefined when it is not one. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  const m = VERSION.exec(tag);
  if (!m) return undefined;
  return semver.parse(`${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}${m[4] ?? ""}${m[5] ?? ""}`) ?? undefined;
}

function checkSpec(spec: TagFilterSpec): void {
  if (spec.semver !== undefined && semver.validRange(spec.semver) === null) {
    throw new RegcliError("usage", `invalid semver range "${spec.semver}"`, { hint: 'e.g. ">=1.2 <2", "^1.4" or "~2.0"' });
  }
  if (spec.latest !== undefined && !(Number.isInteger(spec.latest) && spec.latest >= 0)) {
    throw new RegcliError("usage", `invalid latest count "${spec.latest}"`, { hint: "give a whole number, 0 or more" });
  }
  if (spec.newerThan !== undefined) parseDuration(spec.newerThan);
  for (const p of [...(spec.include ?? []), ...(spec.exclude ?? [])]) {
    try {
      new RegExp(p);
    } catch (err) {
      throw new RegcliError("usage", `invalid tag pattern "${p}": ${(err as Error).message}`);
    }
  }
}

const byText = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);

/** The tags `spec` keeps, in their original order. Invalid filters are usage errors, checked before any lookup. */
export async function selectTags(tags: string[], spec: TagFilterSpec, created?: CreatedLookup): Promise<string[]> {
  checkSpec(spec);
  const anchored = (patterns: string[]) => patterns.map((p) => new RegExp(`^(?:${p})$`));
  const include = spec.include?.length ? anchored(spec.include) : undefined;
  const exclude = anchored(spec.exclude ?? []);
  let kept = tags.filter((t) => (!include || include.some((r) => r.test(t))) && !exclude.some((r) => r.test(t)));

  if (spec.semver !== undefined) {
    const range = spec.semver;
    kept = kept.filter((t) => {
      const v = tagVersion(t);
      return v !== undefined && semver.satisfies(v, range);
    });
  }

  const times = new Map<string, Date | undefined>();
  const timeOf = async (list: string[]) => {
    if (!created) throw new RegcliError("general", "selectTags: a filter needs creation times but no lookup was given");
    const missing = list.filter((t) => !times.has(t));
    const found = await Promise.all(missing.map((t) => created(t)));
    missing.forEach((t, i) => times.set(t, found[i]));
  };

  if (spec.newerThan !== undefined) {
    const since = Date.now() - parseDuration(spec.newerThan);
    await timeOf(kept);
    const keepUndated = spec.undated === "keep";
    kept = kept.filter((t) => {
      const at = times.get(t);
      return at === undefined || Number.isNaN(at.getTime()) ? keepUndated : at.getTime() >= since;
    });
  }

  if (spec.latest !== undefined && kept.length > spec.latest) {
    const versions = new Map(kept.map((t) => [t, tagVersion(t)]));
    let order: (a: string, b: string) => number;
    if ([...versions.values()].every((v) => v !== undefined)) {
      order = (a, b) => semver.compare(versions.get(b)!, versions.get(a)!) || byText(a, b);
    } else {
      await timeOf(kept);
      const ms = (t: string) => {
        const v = times.get(t)?.getTime();
        return v === undefined || Number.isNaN(v) ? -Infinity : v;
      };
      order = (a, b) => (ms(a) === ms(b) ? byText(a, b) : ms(b) - ms(a));
    }
    const newest = new Set([...kept].sort(order).slice(0, spec.latest));
    kept = kept.filter((t) => newest.has(t));
  }
  return kept;
}

/** How `ls` orders names: versions (see TagFilterSpec) ascending then the other names, by text, or as listed. */
export type NameOrder = "semver" | "alpha" | "none";

export function sortNames(names: string[], order: NameOrder): string[] {
  const byTextUp = (a: string, b: string) => -byText(a, b);
  if (order === "alpha") return [...names].sort(byTextUp);
  if (order === "none") return names;
  const versions = new Map(names.map((n) => [n, tagVersion(n)]));
  return [...names].sort((a, b) => {
    const [va, vb] = [versions.get(a), versions.get(b)];
    if (va && vb) return semver.compare(va, vb) || byTextUp(a, b);
    if (va || vb) return va ? -1 : 1;
    return byTextUp(a, b);
  });
}
