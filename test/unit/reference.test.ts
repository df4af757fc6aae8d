import { describe, expect, it } from "vitest";
import { InvalidReferenceError, RegcliError } from "../../src/errors.js";
import { parseBlobLocation, parseLocation } from "../../src/locations/parse.js";
import {
  apiHost,
  formatReference,
  isLoopbackHost,
  parseListTarget,
  parseReference,
  validateDigest,
  validateRepository,
  validateTag,
  withDigest,
  withTag,
  type Reference,
} from "../../src/reference/index.js";

const H64 = "a".repeat(32) + "0123456789abcdef".repeat(2);
const D256 = `sha256:${H64}`;
const H128 = "0123456789abcdef".repeat(8);
const D512 = `sha512:${H128}`;

/** Runs fn, asserts it throws an InvalidReferenceError of kind "usage" mentioning input, and returns it. */
function refusal(fn: () => unknown, input: string): InvalidReferenceError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${JSON.stringify(input)} to be refused`).toBeInstanceOf(InvalidReferenceError);
  const error = caught as InvalidReferenceError;
  expect(error).toBeInstanceOf(RegcliError);
  expect(error.kind).toBe("usage");
  expect(error.exitCode).toBe(2);
  expect(error.input).toBe(input);
  expect(error.message).toContain(`"${input}"`);
  return error;
}

type Parts = [registry: string, repository: string, tag: string | undefined, digest: string | undefined];

function parts(ref: Reference): Parts {
  return [ref.registry, ref.repository, ref.tag, ref.digest];
}

describe("parseReference: normalization", () => {
  it.each<[string, ...Parts]>([
    ["busybox", "docker.io", "library/busybox", "latest", undefined],
    ["busybox:1.36", "docker.io", "library/busybox", "1.36", undefined],
    ["user/app", "docker.io", "user/app", "latest", undefined],
    ["user/app:1", "docker.io", "user/app", "1", undefined],
    ["user/team/app", "docker.io", "user/team/app", "latest", undefined],
    ["docker.io/busybox", "docker.io", "library/busybox", "latest", undefined],
    ["docker.io/library/busybox", "docker.io", "library/busybox", "latest", undefined],
    ["docker.io/user/app:v2", "docker.io", "user/app", "v2", undefined],
    ["docker.io/library/a/b", "docker.io", "library/a/b", "latest", undefined],
    ["index.docker.io/busybox", "docker.io", "library/busybox", "latest", undefined],
    ["index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", undefined],
    ["index.docker.io/user/app:3", "docker.io", "user/app", "3", undefined],
    // Only index.docker.io folds into docker.io, as in Docker's grammar; other hosts are other registries.
    ["registry-1.docker.io/busybox", "registry-1.docker.io", "busybox", "latest", undefined],
    ["registry-1.docker.io/library/busybox:1", "registry-1.docker.io", "library/busybox", "1", undefined],
    ["registry.hub.docker.com/library/busybox", "registry.hub.docker.com", "library/busybox", "latest", undefined],
    ["INDEX.docker.io/busybox", "INDEX.docker.io", "busybox", "latest", undefined],
    ["library/busybox", "docker.io", "library/busybox", "latest", undefined],
    ["localhost/app", "localhost", "app", "latest", undefined],
    ["localhost/a/b:t", "localhost", "a/b", "t", undefined],
    ["localhost:5000/app", "localhost:5000", "app", "latest", undefined],
    ["localhost:5000/app:1.0", "localhost:5000", "app", "1.0", undefined],
    ["my.reg.io/a/b/c:tag", "my.reg.io", "a/b/c", "tag", undefined],
    ["my.reg.io/app", "my.reg.io", "app", "latest", undefined],
    ["my.reg.io:443/team/app", "my.reg.io:443", "team/app", "latest", undefined],
    ["[::1]:5000/x", "[::1]:5000", "x", "latest", undefined],
    ["[::1]/x", "[::1]", "x", "latest", undefined],
    ["[2001:db8::1]/team/app:v1", "[2001:db8::1]", "team/app", "v1", undefined],
    ["[2001:db8::1]:8443/app", "[2001:db8::1]:8443", "app", "latest", undefined],
    ["127.0.0.1:5000/a", "127.0.0.1:5000", "a", "latest", undefined],
    ["10.0.0.1/a/b", "10.0.0.1", "a/b", "latest", undefined],
    ["registry:5000/app", "registry:5000", "app", "latest", undefined],
    ["ghcr.io/owner/image:sha-abc123", "ghcr.io", "owner/image", "sha-abc123", undefined],
    ["My.Registry.IO/app", "My.Registry.IO", "app", "latest", undefined],
    ["Example.com:5000/team/app", "Example.com:5000", "team/app", "latest", undefined],
    // Docker: a first component that is not all lowercase can only be a registry host.
    ["Registry/app", "Registry", "app", "latest", undefined],
    // Docker compares the Hub's names exactly; other spellings are ordinary hosts.
    ["Docker.io/busybox", "Docker.io", "busybox", "latest", undefined],
    // Without "/" everything is a Docker Hub official repository, even host-like names (Docker's grammar).
    ["localhost:5000", "docker.io", "library/localhost", "5000", undefined],
    ["localhost", "docker.io", "library/localhost", "latest", undefined],
    ["my.reg.io", "docker.io", "library/my.reg.io", "latest", undefined],
    ["docker.io", "docker.io", "library/docker.io", "latest", undefined],
    ["sha256:" + H64, "docker.io", "library/sha256", H64, undefined],
    // A first component without ".", ":" that is not "localhost" is a Docker Hub namespace.
    ["localhostx/app", "docker.io", "localhostx/app", "latest", undefined],
    ["registry/app", "docker.io", "registry/app", "latest", undefined],
  ])("%s", (text, registry, repository, tag, digest) => {
    expect(parts(parseReference(text))).toEqual([registry, repository, tag, digest]);
  });
});

describe("parseReference: tags and digests", () => {
  it.each<[string, ...Parts]>([
    [`busybox@${D256}`, "docker.io", "library/busybox", undefined, D256],
    [`busybox:1@${D256}`, "docker.io", "library/busybox", "1", D256],
    [`busybox:latest@${D512}`, "docker.io", "library/busybox", "latest", D512],
    [`localhost:5000/app@${D256}`, "localhost:5000", "app", undefined, D256],
    [`localhost:5000/app:v1@${D256}`, "localhost:5000", "app", "v1", D256],
    [`my.reg.io/a/b@${D512}`, "my.reg.io", "a/b", undefined, D512],
    ["busybox:Latest", "docker.io", "library/busybox", "Latest", undefined],
    ["busybox:_x", "docker.io", "library/busybox", "_x", undefined],
    ["busybox:1.2.3-rc.1_b", "docker.io", "library/busybox", "1.2.3-rc.1_b", undefined],
    ["busybox:a..b", "docker.io", "library/busybox", "a..b", undefined],
    ["busybox:" + "t".repeat(128), "docker.io", "library/busybox", "t".repeat(128), undefined],
    ["busybox:" + H64, "docker.io", "library/busybox", H64, undefined],
    [`${H64}:latest`, "docker.io", `library/${H64}`, "latest", undefined],
  ])("%s", (text, registry, repository, tag, digest) => {
    expect(parts(parseReference(text))).toEqual([registry, repository, tag, digest]);
  });

  it("adds no tag to a digest-only reference", () => {
    const ref = parseReference(`busybox@${D256}`);
    expect(ref.tag).toBeUndefined();
    expect("tag" in ref).toBe(false);
  });

  it.each<[string, string | undefined]>([
    ["busybox", undefined],
    ["busybox:1", "1"],
    ["localhost:5000/app", undefined],
    [`app@${D256}`, undefined],
  ])("defaultTag:false on %s keeps the tag as given", (text, tag) => {
    expect(parseReference(text, { defaultTag: false }).tag).toBe(tag);
  });

  it("defaultTag:true is the default", () => {
    expect(parseReference("busybox", { defaultTag: true }).tag).toBe("latest");
    expect(parseReference("busybox", {}).tag).toBe("latest");
  });
});

describe("parseReference: full, name and familiar forms", () => {
  it.each<[string, string, string, string]>([
    ["busybox", "docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["busybox:1", "docker.io/library/busybox", "docker.io/library/busybox:1", "busybox:1"],
    ["user/app:1", "docker.io/user/app", "docker.io/user/app:1", "user/app:1"],
    ["docker.io/library/busybox", "docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["index.docker.io/user/app", "docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"],
    ["library/a/b", "docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"],
    ["localhost/app", "localhost/app", "localhost/app:latest", "localhost/app:latest"],
    ["localhost:5000/app", "localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"],
    ["my.reg.io/library/x", "my.reg.io/library/x", "my.reg.io/library/x:latest", "my.reg.io/library/x:latest"],
    ["[::1]:5000/x:y", "[::1]:5000/x", "[::1]:5000/x:y", "[::1]:5000/x:y"],
    [`busybox@${D256}`, "docker.io/library/busybox", `docker.io/library/busybox@${D256}`, `busybox@${D256}`],
    [
      `busybox:1@${D256}`,
      "docker.io/library/busybox",
      `docker.io/library/busybox:1@${D256}`,
      `busybox:1@${D256}`,
    ],
    [`host.io/repo:tag@${D256}`, "host.io/repo", `host.io/repo:tag@${D256}`, `host.io/repo:tag@${D256}`],
    [`host.io/repo@${D512}`, "host.io/repo", `host.io/repo@${D512}`, `host.io/repo@${D512}`],
  ])("%s", (text, name, full, familiar) => {
    const ref = parseReference(text);
    expect(ref.name).toBe(name);
    expect(ref.name).toBe(`${ref.registry}/${ref.repository}`);
    expect(ref.full).toBe(full);
    expect(ref.familiar).toBe(familiar);
  });

  it.each([
    "busybox",
    "user/app:1",
    "localhost:5000/a/b:c",
    `busybox:1@${D256}`,
    `my.reg.io/x@${D512}`,
    "[::1]:5000/x",
    "Registry/app:v",
  ])("full and familiar of %s parse back to the same reference", (text) => {
    const ref = parseReference(text);
    expect(parseReference(ref.full)).toEqual(ref);
    expect(parseReference(ref.familiar)).toEqual(ref);
  });
});

describe("parseReference: repository path rules", () => {
  it.each([
    ["a__b", "library/a__b"],
    ["a---b", "library/a---b"],
    ["a-b", "library/a-b"],
    ["a.b", "library/a.b"],
    ["a_b", "library/a_b"],
    ["a.b-c_d__e---f", "library/a.b-c_d__e---f"],
    ["0", "library/0"],
    ["a/b/c/d/e/f", "a/b/c/d/e/f"],
    ["foo-bar/baz.qux", "foo-bar/baz.qux"],
  ])("accepts %s", (text, repository) => {
    expect(parseReference(text).repository).toBe(repository);
  });

  it.each<[string, string]>([
    ["a..b", "a..b"],
    ["a_.b", "a_.b"],
    ["a._b", "a._b"],
    ["a___b", "a___b"],
    ["a-", "a-"],
    ["-a", "-a"],
    ["a.", "a."],
    [".a", ".a"],
    ["_a", "_a"],
    ["a_", "a_"],
    ["a-.b", "a-.b"],
    ["user/a..b", "a..b"],
    ["localhost:5000/app-", "app-"],
  ])("refuses bad separators in %s", (text, component) => {
    const error = refusal(() => parseReference(text), text);
    expect(error.message).toContain(`component "${component}"`);
    expect(error.message).toContain("separators");
  });

  it.each(["a%2fb", "user/a%2fb", "a+b", "a~b", "a#b", "a!b", "a*b", "a,b"])(
    "refuses illegal characters in %s",
    (text) => {
      expect(refusal(() => parseReference(text), text).message).toMatch(/may only contain lowercase letters/);
    },
  );

  it.each(["/busybox", "user//app", "user/app/", "localhost:5000//app", "localhost:5000/app/", "a/b//c:tag"])(
    "refuses empty path components in %s",
    (text) => {
      expect(refusal(() => parseReference(text), text).message).toContain('must not start or end with "/"');
    },
  );

  it.each(["busybox/..", "../busybox", "a/./b", "a/../b"])("refuses dot components in %s", (text) => {
    refusal(() => parseReference(text), text);
  });

  it.each(["BusyBox", "busybox/App", "user/App:1", "localhost:5000/App", "my.reg.io/a/B/c", "Registry/App", `UPPER@${D256}`])(
    "refuses uppercase in the repository: %s",
    (text) => {
      expect(refusal(() => parseReference(text), text).message).toContain("repository name must be lowercase");
    },
  );

  it("allows uppercase in the registry host and the tag", () => {
    expect(parts(parseReference("MY.REG.IO:5000/app:TAG"))).toEqual(["MY.REG.IO:5000", "app", "TAG", undefined]);
  });
});

describe("parseReference: length limits", () => {
  const path255 = "a/" + "b".repeat(253);

  it("accepts a 255-character repository path on another registry", () => {
    expect(path255).toHaveLength(255);
    expect(parseReference(`my.reg.io/${path255}`).repository).toBe(path255);
  });

  it("does not count a long registry host", () => {
    const host = `${"h".repeat(60)}.${"i".repeat(60)}.${"j".repeat(60)}.example.com:5000`;
    expect(parseReference(`${host}/${path255}`).registry).toBe(host);
  });

  it("refuses a 256-character repository path", () => {
    const text = `my.reg.io/${path255}x`;
    expect(refusal(() => parseReference(text), text).message).toContain(
      "repository path is longer than 255 characters",
    );
  });

  it("accepts a 255-character path on docker.io", () => {
    expect(parseReference(path255).repository).toHaveLength(255);
  });

  it("counts the implied library/ prefix, as Docker does", () => {
    expect(parseReference("c".repeat(247)).repository).toHaveLength(255);
    const text = "c".repeat(248);
    expect(refusal(() => parseReference(text), text).message).toContain("longer than 255");
  });

  it("accepts a 128-character tag and refuses 129", () => {
    expect(parseReference(`busybox:${"t".repeat(128)}`).tag).toHaveLength(128);
    const text = `busybox:${"t".repeat(129)}`;
    expect(refusal(() => parseReference(text), text).message).toContain("tag");
  });
});

describe("parseReference: invalid input", () => {
  it.each<[string, RegExp]>([
    ["", /empty reference/],
    [" ", /whitespace/],
    [" busybox", /whitespace/],
    ["busybox ", /whitespace/],
    ["busy box", /whitespace/],
    ["busybox\t", /whitespace/],
    ["busybox\n", /whitespace/],
    ["busybox:", /missing tag after ":"/],
    ["localhost:5000/app:", /missing tag after ":"/],
    ["busybox@", /missing digest after "@"/],
    ["busybox:1@", /missing digest after "@"/],
    [":tag", /missing repository name/],
    [`@${D256}`, /missing repository name/],
    ["localhost:5000/", /missing repository name after registry "localhost:5000"/],
    ["my.reg.io/", /missing repository name after registry/],
    ["localhost/", /missing repository name after registry/],
    ["docker.io/", /missing repository name/],
    [H64, /looks like an image ID; use NAME@sha256:/],
    ["busybox:-x", /tag must match \[A-Za-z0-9_\]\[A-Za-z0-9_.-\]\{0,127\}/],
    ["busybox:.x", /tag must match/],
    ["busybox:a+b", /tag must match/],
    ["busybox:a:b", /tag must match/],
    ["busybox:a/b", /registry port "a" must be a number/],
    ["busybox@sha256:abc", /sha256 digest must have 64 hex characters \(got 3\)/],
    [`busybox@sha256:${H64}0`, /sha256 digest must have 64 hex characters \(got 65\)/],
    [`busybox@sha256:${H64.toUpperCase()}`, /sha256 digest hex must be lowercase/],
    [`busybox@sha512:${H64}`, /sha512 digest must have 128 hex characters \(got 64\)/],
    [`busybox@md5:${"a".repeat(32)}`, /unsupported digest algorithm "md5"/],
    [`busybox@sha384:${"a".repeat(96)}`, /unsupported digest algorithm "sha384"/],
    [`busybox@SHA256:${H64}`, /digest algorithm "SHA256" must be lowercase/],
    [`busybox@${H64}`, /digest must have the form ALGORITHM:HEX/],
    [`busybox@:${H64}`, /missing its algorithm/],
    ["busybox@sha256:", /sha256 digest is missing its hex value/],
    [`busybox@sha256:${"g".repeat(64)}`, /must contain only hex characters/],
    [`busybox@${D256}@${D256}`, /more than one "@"/],
    ["localhost:abc/app", /registry port "abc" must be a number/],
    ["localhost:/app", /registry port "" must be a number/],
    ["-bad.com/app", /is not a valid registry host/],
    ["bad-.com/app", /is not a valid registry host/],
    ["bad..com/app", /is not a valid registry host/],
    ["my_reg.io/app", /is not a valid registry host/],
    ["reg.io./app", /is not a valid registry host/],
    ["[]/app", /may only contain lowercase letters/],
    ["[::1/app", /is not a valid registry host/],
    ["[::g]:5000/app", /is not a valid registry host/],
    ["Bad_Host/app", /is not a valid registry host/],
    ["https://my.reg.io/app", /no URL scheme; drop "https:\/\/"/],
    ["http://localhost:5000/app:1", /no URL scheme; drop "http:\/\/"/],
    ["localhost:5000:tag", /tag must match/],
  ])("refuses %j", (text, reason) => {
    expect(refusal(() => parseReference(text), text).message).toMatch(reason);
  });

  it("reports the whole input, not just the bad part", () => {
    const text = `my.reg.io/app@sha256:abc`;
    const error = refusal(() => parseReference(text), text);
    expect(error.message).toBe(`invalid reference "${text}": sha256 digest must have 64 hex characters (got 3)`);
  });
});

describe("validateTag", () => {
  it.each(["latest", "1", "_", "A", "v1.2.3", "a-b_c.d", "x".repeat(128), "0.0"])("accepts %j", (tag) => {
    expect(() => validateTag(tag)).not.toThrow();
  });

  it.each<[string, RegExp]>([
    ["", /empty tag/],
    ["-a", /tag must match/],
    [".a", /tag must match/],
    ["a b", /tag must match/],
    ["a@b", /tag must match/],
    ["a:b", /tag must match/],
    ["é", /tag must match/],
    ["x".repeat(129), /longer than 128 characters \(129\)/],
  ])("refuses %j", (tag, reason) => {
    expect(refusal(() => validateTag(tag), tag).message).toMatch(reason);
  });
});

describe("validateDigest", () => {
  it.each([D256, D512, `sha256:${"0".repeat(64)}`, `sha512:${"f".repeat(128)}`])("accepts %s", (digest) => {
    expect(() => validateDigest(digest)).not.toThrow();
  });

  it.each<[string, RegExp]>([
    ["", /empty digest/],
    ["sha256", /ALGORITHM:HEX/],
    [H64, /ALGORITHM:HEX/],
    [`sha256:${"a".repeat(63)}`, /64 hex characters \(got 63\)/],
    [`sha256:${"a".repeat(128)}`, /64 hex characters \(got 128\)/],
    [`sha512:${"a".repeat(127)}`, /128 hex characters \(got 127\)/],
    [`sha256:${"A".repeat(64)}`, /must be lowercase/],
    [`sha512:${"ABCDEF01".repeat(16)}`, /must be lowercase/],
    [`sha256:${"z".repeat(64)}`, /only hex characters/],
    [`sha256:${H64.slice(1)}=`, /only hex characters/],
    [`md5:${"a".repeat(32)}`, /unsupported digest algorithm "md5"/],
    [`sha256+b64:${H64}`, /unsupported digest algorithm "sha256\+b64"/],
    [`blake3:${H64}`, /unsupported digest algorithm "blake3"/],
    [`multihash+base58:${H64}`, /unsupported digest algorithm "multihash\+base58"/],
    [`Sha256:${H64}`, /"Sha256" must be lowercase/],
    [`sha-:${H64}`, /invalid digest algorithm "sha-"/],
    [`sh a:${H64}`, /invalid digest algorithm/],
    [`:${H64}`, /missing its algorithm/],
  ])("refuses %j", (digest, reason) => {
    expect(refusal(() => validateDigest(digest), digest).message).toMatch(reason);
  });
});

describe("validateRepository", () => {
  it.each(["library/busybox", "a", "a/b/c", "a__b/c---d", "x".repeat(255)])("accepts %s", (repo) => {
    expect(() => validateRepository(repo)).not.toThrow();
  });

  it.each<[string, RegExp]>([
    ["", /missing repository name/],
    ["A", /must be lowercase/],
    ["a//b", /must not start or end/],
    ["a/", /must not start or end/],
    ["a..b", /separators/],
    ["a:b", /may only contain/],
    ["x".repeat(256), /longer than 255 characters \(256\)/],
  ])("refuses %j", (repo, reason) => {
    expect(refusal(() => validateRepository(repo), repo).message).toMatch(reason);
  });
});

describe("formatReference", () => {
  it("recomputes name, full and familiar", () => {
    const ref = formatReference({ registry: "localhost:5000", repository: "a/b", tag: "1", digest: D256 });
    expect(ref).toEqual({
      registry: "localhost:5000",
      repository: "a/b",
      tag: "1",
      digest: D256,
      name: "localhost:5000/a/b",
      full: `localhost:5000/a/b:1@${D256}`,
      familiar: `localhost:5000/a/b:1@${D256}`,
    });
  });

  it("does not add a default tag", () => {
    const ref = formatReference({ registry: "my.reg.io", repository: "app" });
    expect(ref.tag).toBeUndefined();
    expect(ref.full).toBe("my.reg.io/app");
  });

  it("folds index.docker.io (only) and official repositories like parseReference", () => {
    const ref = formatReference({ registry: "index.docker.io", repository: "busybox", tag: "1" });
    expect(ref).toEqual(parseReference("busybox:1"));
    expect(formatReference({ registry: "registry-1.docker.io", repository: "user/app" }).registry).toBe("registry-1.docker.io");
    expect(formatReference({ registry: "registry.hub.docker.com", repository: "busybox" }).full).toBe("registry.hub.docker.com/busybox");
  });

  it("ignores stale derived fields of a spread reference", () => {
    const original = parseReference("busybox:1");
    const ref = formatReference({ ...original, tag: "2" });
    expect(ref.full).toBe("docker.io/library/busybox:2");
    expect(ref.familiar).toBe("busybox:2");
  });

  it.each([
    "busybox",
    "user/app:1",
    `localhost:5000/a/b:c@${D256}`,
    `my.reg.io/x@${D512}`,
    "[2001:db8::1]:5000/x:y",
  ])("round-trips %s", (text) => {
    const ref = parseReference(text);
    expect(formatReference(ref)).toEqual(ref);
  });

  it.each<[Parameters<typeof formatReference>[0], string, RegExp]>([
    [{ registry: "bad_host", repository: "app" }, "bad_host/app", /not a valid registry host/],
    [{ registry: "", repository: "app" }, "/app", /empty registry host/],
    [{ registry: "my.reg.io", repository: "App" }, "my.reg.io/App", /must be lowercase/],
    [{ registry: "my.reg.io", repository: "" }, "my.reg.io/", /missing repository name/],
    [{ registry: "my.reg.io", repository: "app", tag: "-x" }, "my.reg.io/app:-x", /tag must match/],
    [{ registry: "my.reg.io", repository: "app", digest: "sha256:1" }, "my.reg.io/app@sha256:1", /64 hex/],
    [{ registry: "docker.io", repository: "x".repeat(248) }, `docker.io/${"x".repeat(248)}`, /longer than 255/],
  ])("refuses %j", (input, shown, reason) => {
    expect(refusal(() => formatReference(input), shown).message).toMatch(reason);
  });
});

describe("withTag / withDigest", () => {
  it("withTag replaces the tag and drops the digest", () => {
    const ref = withTag(parseReference(`localhost:5000/app:1@${D256}`), "2");
    expect(parts(ref)).toEqual(["localhost:5000", "app", "2", undefined]);
    expect(ref.full).toBe("localhost:5000/app:2");
    expect("digest" in ref).toBe(false);
  });

  it("withTag adds a tag to a digest-only reference", () => {
    const ref = withTag(parseReference(`busybox@${D256}`), "stable");
    expect(ref.full).toBe("docker.io/library/busybox:stable");
    expect(ref.familiar).toBe("busybox:stable");
  });

  it("withTag does not modify its argument", () => {
    const original = parseReference("busybox:1");
    withTag(original, "2");
    expect(original.tag).toBe("1");
    expect(original.full).toBe("docker.io/library/busybox:1");
  });

  it.each(["", "-x", "a b", "x".repeat(129), "a@b"])("withTag refuses %j", (tag) => {
    refusal(() => withTag(parseReference("busybox"), tag), tag);
  });

  it("withDigest pins the digest and drops the tag", () => {
    const ref = withDigest(parseReference("my.reg.io/a/b:1"), D512);
    expect(parts(ref)).toEqual(["my.reg.io", "a/b", undefined, D512]);
    expect(ref.full).toBe(`my.reg.io/a/b@${D512}`);
    expect(ref.familiar).toBe(`my.reg.io/a/b@${D512}`);
    expect("tag" in ref).toBe(false);
  });

  it("withDigest gives Docker's familiar form for Hub images", () => {
    expect(withDigest(parseReference("busybox"), D256).familiar).toBe(`busybox@${D256}`);
  });

  it.each(["", "sha256:abc", `md5:${"a".repeat(32)}`, `sha256:${H64.toUpperCase()}`, H64])(
    "withDigest refuses %j",
    (digest) => {
      refusal(() => withDigest(parseReference("busybox"), digest), digest);
    },
  );
});

describe("apiHost", () => {
  it.each([
    ["docker.io", "registry-1.docker.io"],
    ["localhost:5000", "localhost:5000"],
    ["my.reg.io", "my.reg.io"],
    ["ghcr.io", "ghcr.io"],
    ["[::1]:5000", "[::1]:5000"],
    ["registry-1.docker.io", "registry-1.docker.io"],
  ])("%s -> %s", (registry, host) => {
    expect(apiHost(registry)).toBe(host);
  });

  it("maps every parsed Docker Hub reference to registry-1.docker.io", () => {
    for (const text of ["busybox", "user/app", "index.docker.io/x", "docker.io/library/x"]) {
      expect(apiHost(parseReference(text).registry)).toBe("registry-1.docker.io");
    }
  });
});

describe("isLoopbackHost", () => {
  it.each<[string, boolean]>([
    ["localhost", true],
    ["localhost:5000", true],
    ["LOCALHOST:5000", true],
    ["127.0.0.1", true],
    ["127.0.0.1:5000", true],
    ["127.1.2.3:80", true],
    ["127.255.255.255", true],
    ["[::1]:5000", true],
    ["[::1]", true],
    ["::1", true],
    ["[0:0:0:0:0:0:0:1]:443", true],
    ["[::ffff:127.0.0.1]:5000", true],
    ["128.0.0.1", false],
    ["126.255.255.255:5000", false],
    ["127.0.0.256", false],
    ["127.0.0", false],
    ["0127.0.0.1", false],
    ["example.com", false],
    ["example.com:5000", false],
    ["localhost.example.com", false],
    ["mylocalhost", false],
    ["docker.io", false],
    ["10.0.0.1:5000", false],
    ["0.0.0.0", false],
    ["[::2]:5000", false],
    ["[::]", false],
    ["[2001:db8::1]", false],
    ["[::ffff:10.0.0.1]", false],
    ["", false],
  ])("%j -> %s", (registry, loopback) => {
    expect(isLoopbackHost(registry)).toBe(loopback);
  });
});

describe("parseListTarget", () => {
  it.each<[string, string]>([
    ["localhost:5000", "localhost:5000"],
    ["localhost:5000/", "localhost:5000"],
    ["localhost", "localhost"],
    ["localhost/", "localhost"],
    ["my.reg.io", "my.reg.io"],
    ["my.reg.io/", "my.reg.io"],
    ["docker.io", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["registry-1.docker.io/", "registry-1.docker.io"],
    ["registry.hub.docker.com", "registry.hub.docker.com"],
    ["[::1]:5000", "[::1]:5000"],
    ["[::1]", "[::1]"],
    ["[2001:db8::1]:5000/", "[2001:db8::1]:5000"],
    ["127.0.0.1:5000", "127.0.0.1:5000"],
    ["registry:5000", "registry:5000"],
    ["My.Reg.IO", "My.Reg.IO"],
  ])("%s is a registry", (text, registry) => {
    expect(parseListTarget(text)).toEqual({ kind: "registry", registry });
  });

  it.each<[string, string, string]>([
    ["localhost:5000/app", "localhost:5000", "app"],
    ["localhost:5000/a/b", "localhost:5000", "a/b"],
    ["localhost/app", "localhost", "app"],
    ["busybox", "docker.io", "library/busybox"],
    ["user/app", "docker.io", "user/app"],
    ["docker.io/busybox", "docker.io", "library/busybox"],
    ["index.docker.io/user/app", "docker.io", "user/app"],
    ["my.reg.io/a/b/c", "my.reg.io", "a/b/c"],
    ["[::1]:5000/x", "[::1]:5000", "x"],
  ])("%s is a repository", (text, registry, repository) => {
    expect(parseListTarget(text)).toEqual({ kind: "repository", registry, repository });
  });

  it.each<[string, RegExp]>([
    ["", /empty reference/],
    [" ", /whitespace/],
    ["busybox:latest", /cannot include a tag or digest/],
    ["localhost:5000/app:1", /cannot include a tag or digest/],
    [`busybox@${D256}`, /cannot include a tag or digest/],
    [`my.reg.io/app@${D256}`, /cannot include a tag or digest/],
    ["busybox/", /must not start or end with "\/"/],
    ["localhost:5000/app/", /must not start or end with "\/"/],
    ["localhost:5000//", /must not start or end with "\/"/],
    ["localhost:abc", /registry port "abc" must be a number.*cannot include a tag or digest/],
    ["bad_host.io", /not a valid registry host/],
    ["BusyBox", /must be lowercase/],
    ["my.reg.io/App", /must be lowercase/],
    ["/", /must not start or end with "\/"/],
    ["https://my.reg.io", /no URL scheme/],
  ])("refuses %j", (text, reason) => {
    expect(refusal(() => parseListTarget(text), text).message).toMatch(reason);
  });
});

describe("parseLocation / parseBlobLocation: how command lines name images", () => {
  const digest = `sha256:${"ab".repeat(32)}`;

  it("reads every transport, docker:// as a registry, store:NAME as the local store", () => {
    expect(parseLocation("docker://localhost:5000/app:1")).toMatchObject({ kind: "registry", ref: { full: "localhost:5000/app:1" } });
    expect(parseLocation("store:busybox")).toEqual({ kind: "store", name: "busybox" });
    expect(parseLocation("store:")).toEqual({ kind: "store", name: undefined });
    expect(parseLocation("oci:./lay:v1")).toEqual({ kind: "oci", dir: "./lay", tag: "v1" });
    expect(parseLocation(`oci:./lay@${digest}`)).toEqual({ kind: "oci", dir: "./lay", tag: digest });
    expect(parseLocation(`oci:./lay:@${digest}`)).toEqual({ kind: "oci", dir: "./lay", tag: digest });
    expect(parseLocation(`docker-archive:x.tar@${digest}`)).toEqual({ kind: "archive", flavour: "docker-archive", file: "x.tar", name: digest });
    expect(parseLocation("docker-archive:x.tar:busybox:latest")).toEqual({ kind: "archive", flavour: "docker-archive", file: "x.tar", name: "busybox:latest" });
  });

  it("splits the blob digest off any location", () => {
    expect(parseBlobLocation(`oci:./lay@${digest}`)).toEqual({ spec: { kind: "oci", dir: "./lay", tag: undefined }, digest });
    expect(parseBlobLocation(`store:@${digest}`)).toEqual({ spec: { kind: "store", name: undefined }, digest });
    expect(parseBlobLocation(`docker://localhost:5000/app@${digest}`)).toMatchObject({ spec: { kind: "registry", ref: { name: "localhost:5000/app" } }, digest });
    expect(() => parseBlobLocation("oci:./lay")).toThrow(/blob needs a digest/);
    expect(() => parseBlobLocation("localhost:5000/app:1")).toThrow(/blob needs a digest/);
  });
});
