import { describe, expect, it } from "vitest";
import { RegcliError } from "../../src/errors.js";
import { parseDuration, selectTags, tagVersion, type CreatedLookup } from "../../src/operations/tag-filters.js";

const DAY = 86_400_000;
/** A created lookup over a table of ages in days (undefined: the image has no created time). */
function ages(table: Record<string, number | undefined>): CreatedLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (tag: string) => {
    asked.push(tag);
    const days = table[tag];
    return days === undefined ? undefined : new Date(Date.now() - days * DAY);
  };
  return Object.assign(lookup, { asked });
}

describe("include / exclude", () => {
  it("are anchored and compose", async () => {
    const tags = ["1.0", "1.0-alpine", "x1.0", "latest", "dev-1"];
    expect(await selectTags(tags, { include: ["1\\..*"] })).toEqual(["1.0", "1.0-alpine"]);
    expect(await selectTags(tags, { include: ["1\\..*", "latest"], exclude: [".*-alpine"] })).toEqual(["1.0", "latest"]);
    expect(await selectTags(tags, { exclude: ["dev"] })).toEqual(tags);
  });
});

describe("versions", () => {
  it("reads tags as skopeo sync does: v prefix, missing parts, pre-releases; others are not versions", () => {
    expect(tagVersion("v1.2.3")?.version).toBe("1.2.3");
    expect(tagVersion("1.2")?.version).toBe("1.2.0");
    expect(tagVersion("3")?.version).toBe("3.0.0");
    expect(tagVersion("1.2-alpine")?.version).toBe("1.2.0-alpine");
    expect(tagVersion("2.0.0-rc.1+build.5")?.version).toBe("2.0.0-rc.1");
    for (const t of ["latest", "main", "sha-abc123", "1.2.3.4", "v", "1.2.x", "01a"]) expect(tagVersion(t)).toBeUndefined();
  });

  it("semver drops non-versions and pre-releases unless the range names one", async () => {
    const tags = ["latest", "v1.0.0", "1.4", "1.10.2", "2.0.0-rc1", "2.0.0", "2.1-alpine", "edge"];
    expect(await selectTags(tags, { semver: ">=1.2 <2" })).toEqual(["1.4", "1.10.2"]);
    expect(await selectTags(tags, { semver: ">=1.0.0" })).toEqual(["v1.0.0", "1.4", "1.10.2", "2.0.0"]);
    expect(await selectTags(tags, { semver: ">=2.0.0-rc0" })).toEqual(["2.0.0-rc1", "2.0.0"]);
  });

  it("an invalid range is a usage error naming it", async () => {
    await expect(selectTags(["1.0"], { semver: "not a range" })).rejects.toThrow(/invalid semver range "not a range"/);
  });
});

describe("latest", () => {
  it("by version order (not text order) when every tag is a version; keeps the original order", async () => {
    const lookup = ages({});
    const tags = ["1.9.0", "1.10.0", "v1.2", "1.10.0-rc1", "0.9"];
    expect(await selectTags(tags, { latest: 1 }, lookup)).toEqual(["1.10.0"]);
    // A pre-release ranks below its release and above older releases (add a semver range to leave them out).
    expect(await selectTags(tags, { latest: 2 }, lookup)).toEqual(["1.10.0", "1.10.0-rc1"]);
    expect(await selectTags(tags, { latest: 3 }, lookup)).toEqual(["1.9.0", "1.10.0", "1.10.0-rc1"]);
    expect(await selectTags(tags, { semver: "*", latest: 2 }, lookup)).toEqual(["1.9.0", "1.10.0"]);
    expect(lookup.asked).toEqual([]);
  });

  it("breaks version ties by the tag's text, greater first", async () => {
    expect(await selectTags(["1.2", "v1.2.0", "1.2.0", "1.1"], { latest: 1 })).toEqual(["v1.2.0"]);
    expect(await selectTags(["1.2", "v1.2.0", "1.2.0", "1.1"], { latest: 2 })).toEqual(["v1.2.0", "1.2.0"]);
  });

  it("after a semver filter, ranks only what it kept", async () => {
    expect(await selectTags(["latest", "1.0", "1.1", "1.2", "2.0"], { semver: "^1", latest: 2 })).toEqual(["1.1", "1.2"]);
  });

  it("by created time when a tag is not a version; undated images count as the oldest; equal times by text", async () => {
    const lookup = ages({ latest: 0, "1.0": 10, "1.1": 5, main: 5, nightly: undefined });
    const tags = ["nightly", "1.0", "1.1", "main", "latest"];
    expect(await selectTags(tags, { latest: 1 }, lookup)).toEqual(["latest"]);
    expect(await selectTags(tags, { latest: 2 }, lookup)).toEqual(["main", "latest"]);
    expect(await selectTags(tags, { latest: 4 }, lookup)).toEqual(["1.0", "1.1", "main", "latest"]);
    expect(await selectTags(tags, { latest: 0 }, lookup)).toEqual([]);
  });

  it("asks nothing when there are no more tags than N", async () => {
    const lookup = ages({});
    expect(await selectTags(["a", "b"], { latest: 5 }, lookup)).toEqual(["a", "b"]);
    expect(lookup.asked).toEqual([]);
  });

  it("rejects a negative or fractional count", async () => {
    await expect(selectTags(["a"], { latest: -1 })).rejects.toThrow(RegcliError);
    await expect(selectTags(["a"], { latest: 1.5 })).rejects.toThrow(/invalid latest count/);
  });
});

describe("newerThan", () => {
  it("keeps images created within the duration; undated ones are dropped unless asked to keep them", async () => {
    const lookup = ages({ old: 40, recent: 2, edge: 29.9, artifact: undefined });
    const tags = ["old", "recent", "edge", "artifact"];
    expect(await selectTags(tags, { newerThan: "30d" }, lookup)).toEqual(["recent", "edge"]);
    expect(await selectTags(tags, { newerThan: "30d", undated: "keep" }, lookup)).toEqual(["recent", "edge", "artifact"]);
    expect(await selectTags(tags, { newerThan: "1w" }, lookup)).toEqual(["recent"]);
  });

  it("only looks up the tags the other filters left, and combines with latest", async () => {
    const lookup = ages({ "1.0": 40, "1.1": 3, "1.2": 2, "1.3": 1, dev: 0 });
    expect(await selectTags(["1.0", "1.1", "1.2", "1.3", "dev"], { semver: "*", newerThan: "30d", latest: 2 }, lookup)).toEqual(["1.2", "1.3"]);
    expect(lookup.asked.sort()).toEqual(["1.0", "1.1", "1.2", "1.3"]);
  });
});

describe("parseDuration", () => {
  it("reads minutes, hours, days and weeks", () => {
    expect(parseDuration("90m")).toBe(90 * 60_000);
    expect(parseDuration("12h")).toBe(12 * 3_600_000);
    expect(parseDuration("30d")).toBe(30 * DAY);
    expect(parseDuration("2w")).toBe(14 * DAY);
  });

  it("rejects anything else as a usage error naming the value", () => {
    for (const bad of ["30", "1.5d", "-3d", "0d", "3y", "d", "30 days", ""]) {
      let caught: unknown;
      try {
        parseDuration(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(RegcliError);
      expect((caught as RegcliError).kind).toBe("usage");
      expect((caught as RegcliError).message).toContain(`"${bad}"`);
    }
  });

  it("an invalid newerThan fails before any lookup", async () => {
    const lookup = ages({ a: 1 });
    await expect(selectTags(["a"], { newerThan: "soon" }, lookup)).rejects.toThrow(/invalid duration "soon"/);
    expect(lookup.asked).toEqual([]);
  });
});
