import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { appendToConfig, createdTime, editConfig, familyLayerType, parseCommandLine, parsePort } from "../../src/oci/mutate.js";
import {
  digestOf,
  MAX_MANIFEST_BYTES,
  parseManifest,
  configPlatform,
  configPlatformText,
  copyPlatforms,
  parseOnePlatform,
  parsePlatform,
  parsePlatforms,
  platformMatches,
  selectPlatform,
  VerifyingStream,
  MediaType,
  toOciManifest,
  referrerDescriptor,
  referrersTag,
} from "../../src/oci/index.js";
import { RegcliError } from "../../src/errors.js";

const blob = Buffer.from("hello layer");
const d = digestOf(blob);
const desc = { mediaType: MediaType.OciLayerGzip, digest: d, size: blob.length };
const image = (extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { ...desc, mediaType: MediaType.OciConfig }, layers: [desc], ...extra }));

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(stream, new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }));
  return Buffer.concat(chunks);
}

describe("parseManifest", () => {
  it("parses an OCI image manifest and digests the exact bytes", () => {
    const bytes = image();
    const m = parseManifest(bytes, MediaType.OciManifest, "test");
    expect(m.parsed.kind).toBe("image");
    expect(m.digest).toBe(digestOf(bytes));
    expect(m.mediaType).toBe(MediaType.OciManifest);
  });

  it("takes the media type from Content-Type when the document has none", () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { ...desc, mediaType: MediaType.DockerConfig }, layers: [desc] }));
    expect(parseManifest(bytes, `${MediaType.DockerManifest}; charset=utf-8`, "t").mediaType).toBe(MediaType.DockerManifest);
  });

  it("parses indexes and manifest lists", () => {
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [{ ...desc, mediaType: MediaType.DockerManifest, platform: { os: "linux", architecture: "amd64" } }] }));
    const m = parseManifest(idx, MediaType.DockerManifestList, "t");
    expect(m.parsed.kind).toBe("index");
  });

  it.each([
    ["both manifests and layers", Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [], layers: [], config: desc })), /ambiguous/],
    ["mediaType disagreeing with Content-Type", image(), /disagrees/, MediaType.DockerManifest],
    ["invalid JSON", Buffer.from("{not json"), /not valid JSON/],
    ["an array", Buffer.from("[]"), /not a JSON object/],
    ["schema 1", Buffer.from(JSON.stringify({ schemaVersion: 1 })), /schema 1/],
    ["a bad layer digest", image({ layers: [{ ...desc, digest: "sha256:1234" }] }), /layers\[0\]\.digest/],
    ["a negative size", image({ layers: [{ ...desc, size: -1 }] }), /size/],
    ["an index with image media type", Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, manifests: [] })), /index has mediaType/],
    ["an unknown manifest type", image({ mediaType: "application/x-unknown" }), /unsupported manifest media type/],
  ])("refuses %s", (_name, bytes, pattern, contentType?: string) => {
    expect(() => parseManifest(bytes as Buffer, contentType, "reg.example/app")).toThrow(pattern as RegExp);
  });

  it("refuses a manifest over 4 MiB and accepts one of exactly 4 MiB", () => {
    const base = image();
    const padded = (size: number) => {
      const obj = JSON.parse(base.toString());
      const pad = size - Buffer.byteLength(JSON.stringify({ ...obj, annotations: { p: "" } }));
      return Buffer.from(JSON.stringify({ ...obj, annotations: { p: "x".repeat(pad) } }));
    };
    expect(padded(MAX_MANIFEST_BYTES).length).toBe(MAX_MANIFEST_BYTES);
    expect(() => parseManifest(padded(MAX_MANIFEST_BYTES), undefined, "t")).not.toThrow();
    expect(() => parseManifest(padded(MAX_MANIFEST_BYTES + 1), undefined, "t")).toThrow(/larger than/);
  });
});

describe("VerifyingStream", () => {
  it("passes bytes that match digest and size", async () => {
    const out = await drain(Readable.from([blob.subarray(0, 3), blob.subarray(3)]).pipe(new VerifyingStream(d, blob.length, "here")));
    expect(out.equals(blob)).toBe(true);
  });

  it("fails on a digest mismatch, naming digest and host", async () => {
    const other = Buffer.from("hello layeR");
    await expect(drain(Readable.from([other]).pipe(new VerifyingStream(d, other.length, "reg.example")))).rejects.toThrow(
      new RegExp(`digest mismatch from reg.example: expected ${d}`),
    );
  });

  it("fails on truncation and on extra bytes", async () => {
    await expect(drain(Readable.from([blob.subarray(0, 5)]).pipe(new VerifyingStream(d, blob.length, "h")))).rejects.toThrow(/truncated: got 5 of 11/);
    await expect(drain(Readable.from([blob, Buffer.from("!")]).pipe(new VerifyingStream(d, blob.length, "h")))).rejects.toThrow(/larger than its declared size/);
  });

  it("errors are integrity errors (exit code of a registry failure)", async () => {
    try {
      await drain(Readable.from([Buffer.from("x")]).pipe(new VerifyingStream(d, undefined, "h")));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RegcliError);
      expect((err as RegcliError).kind).toBe("integrity");
      expect((err as RegcliError).exitCode).toBe(5);
    }
  });

  it("verifies sha512 digests", async () => {
    const d512 = digestOf(blob, "sha512");
    expect(d512).toMatch(/^sha512:[a-f0-9]{128}$/);
    expect((await drain(Readable.from([blob]).pipe(new VerifyingStream(d512, undefined, "h")))).equals(blob)).toBe(true);
  });
});

describe("platforms", () => {
  it("parses os/arch[/variant] and refuses other shapes", () => {
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(parsePlatform("linux/amd64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(() => parsePlatform("linux")).toThrow(/os\/arch/);
    expect(() => parsePlatform("a/b/c/d")).toThrow(/os\/arch/);
  });

  it("parses a --platform list (each once) or all, and says what a copy does with it", () => {
    const [amd, arm] = [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64", variant: "v8" }];
    expect(parsePlatforms("linux/amd64, linux/arm64/v8,linux/amd64")).toEqual([amd, arm]);
    expect(parsePlatforms("all")).toBe("all");
    expect(() => parsePlatforms("linux/amd64,,linux/arm64")).toThrow(/invalid platform ""/);
    expect(copyPlatforms("all")).toEqual({});
    expect(copyPlatforms([amd])).toEqual({ platform: amd });
    expect(copyPlatforms([amd, arm])).toEqual({ platforms: [amd, arm] });
    expect(parseOnePlatform("linux/amd64", "why")).toEqual(amd);
    for (const text of ["all", "linux/amd64,linux/arm64"]) expect(() => parseOnePlatform(text, "one filesystem")).toThrow(/one filesystem/);
  });

  it("reads a config's platform: os, architecture, variant, os.version and os.features, none without os and architecture", () => {
    const windows = { os: "windows", architecture: "amd64", "os.version": "10.0.20348.2113", "os.features": ["win32k"], rootfs: { type: "layers", diff_ids: [] } };
    expect(configPlatform(windows)).toEqual({ os: "windows", architecture: "amd64", "os.version": "10.0.20348.2113", "os.features": ["win32k"] });
    expect(configPlatform({ os: "linux", architecture: "arm", variant: "v7", "os.features": [] })).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    for (const config of [{}, { os: "linux" }, { os: "linux", architecture: "" }, { os: 1, architecture: "amd64" }]) expect(configPlatform(config)).toBeUndefined();
    expect(configPlatform({ os: "linux", architecture: "amd64", variant: 8, "os.features": [1] })).toEqual({ os: "linux", architecture: "amd64" });
    // As inspect and images show it: the part a config lacks is "unknown", the other stays.
    expect([{ os: "linux" }, { architecture: "amd64" }, {}, { os: "linux", architecture: "arm", variant: "v7" }].map(configPlatformText)).toEqual(["linux/unknown", "unknown/amd64", "unknown/unknown", "linux/arm/v7"]);
  });

  it("matches variants, defaulting arm64 to v8", () => {
    expect(platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" })).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm", variant: "v7" })).toBe(false);
    expect(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm" })).toBe(true);
    expect(platformMatches(undefined, { os: "linux", architecture: "amd64" })).toBe(false);
  });

  it("selectPlatform names the available platforms when one is missing", () => {
    const index = { schemaVersion: 2 as const, manifests: [{ ...desc, platform: { os: "linux", architecture: "amd64" } }] };
    expect(selectPlatform(index, { os: "linux", architecture: "amd64" }, "x").digest).toBe(d);
    try {
      selectPlatform(index, { os: "linux", architecture: "s390x" }, "x");
      expect.unreachable();
    } catch (err) {
      expect((err as RegcliError).toLine()).toBe("no linux/s390x image in x; available platforms: linux/amd64");
      expect((err as RegcliError).exitCode).toBe(4);
    }
  });
});

describe("toOciManifest", () => {
  const dockerImage = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: d, size: blob.length },
      layers: [{ mediaType: MediaType.DockerLayerGzip, digest: d, size: blob.length }],
    }),
  );

  it("rewrites media types only, keeping blobs", () => {
    const m = parseManifest(dockerImage, MediaType.DockerManifest, "t");
    const oci = toOciManifest(m);
    const doc = JSON.parse(oci.bytes.toString());
    expect(doc.mediaType).toBe(MediaType.OciManifest);
    expect(doc.config).toEqual({ mediaType: MediaType.OciConfig, digest: d, size: blob.length });
    expect(doc.layers[0].mediaType).toBe(MediaType.OciLayerGzip);
    expect(oci.digest).toBe(digestOf(oci.bytes));
    expect(oci.digest).not.toBe(m.digest);
  });

  it("points a converted list at its converted children", () => {
    const child = parseManifest(dockerImage, MediaType.DockerManifest, "t");
    const converted = toOciManifest(child);
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [{ mediaType: MediaType.DockerManifest, digest: child.digest, size: dockerImage.length, platform: { os: "linux", architecture: "amd64" } }] }));
    const out = toOciManifest(parseManifest(list, undefined, "t"), new Map([[child.digest, { mediaType: converted.mediaType, digest: converted.digest, size: converted.bytes.length, platform: { os: "linux", architecture: "amd64" } }]]));
    expect(JSON.parse(out.bytes.toString()).manifests).toEqual([{ mediaType: MediaType.OciManifest, digest: converted.digest, size: converted.bytes.length, platform: { os: "linux", architecture: "amd64" } }]);
    expect(out.mediaType).toBe(MediaType.OciIndex);
  });

  it("leaves OCI documents untouched", () => {
    const m = parseManifest(image(), MediaType.OciManifest, "t");
    expect(toOciManifest(m)).toBe(m);
  });
});

describe("referrers", () => {
  it("the tag schema's tag is <alg>-<ref>, the encoded part cut to 64 characters (sha512)", () => {
    expect(referrersTag(d)).toBe(d.replace(":", "-"));
    const long = digestOf("x", "sha512");
    expect(referrersTag(long)).toBe(`sha512-${long.slice(7, 71)}`);
  });

  it("an index entry carries the manifest's artifactType, else its config's media type, and its annotations", () => {
    const subject = { ...desc, mediaType: MediaType.OciManifest };
    const typed = parseManifest(image({ artifactType: "application/spdx+json", subject, annotations: { a: "b" } }), undefined, "test");
    expect(referrerDescriptor(typed)).toEqual({ mediaType: MediaType.OciManifest, digest: typed.digest, size: typed.bytes.length, artifactType: "application/spdx+json", annotations: { a: "b" } });
    const untyped = parseManifest(image({ subject }), undefined, "test");
    expect(referrerDescriptor(untyped)).toEqual({ mediaType: MediaType.OciManifest, digest: untyped.digest, size: untyped.bytes.length, artifactType: MediaType.OciConfig });
  });
});

describe("config edits (oci/mutate.ts)", () => {
  const base = { architecture: "amd64", os: "linux", config: { Env: ["PATH=/usr/bin", "HOME=/root"], Cmd: ["sh"], Labels: { a: "1" } }, rootfs: { type: "layers", diff_ids: ["sha256:aa"] }, history: [{ created_by: "base" }], extra: { kept: true } };

  it("merges env by key in place and labels over the base's, keeps unknown fields, adds one empty_layer entry", () => {
    const out = editConfig(base, { env: ["HOME=/home/app", "NEW=1"], labels: { b: "2" } }, "2026-01-01T00:00:00Z");
    expect(out.config).toMatchObject({ Env: ["PATH=/usr/bin", "HOME=/home/app", "NEW=1"], Labels: { a: "1", b: "2" }, Cmd: ["sh"] });
    expect(out.extra).toEqual({ kept: true });
    expect(out.history).toEqual([{ created_by: "base" }, { created: "2026-01-01T00:00:00Z", created_by: "regcli mutate LABEL b=2 ENV HOME=/home/app ENV NEW=1", comment: "regcli", empty_layer: true }]);
    expect(base.config.Env).toEqual(["PATH=/usr/bin", "HOME=/root"]); // the base is not changed
  });

  it("a new entrypoint clears the inherited cmd unless a cmd is given, as Docker", () => {
    expect(editConfig(base, { entrypoint: ["/app"] }, "t").config).toMatchObject({ Entrypoint: ["/app"], Cmd: null });
    expect(editConfig(base, { entrypoint: ["/app"], cmd: ["-v"] }, "t").config).toMatchObject({ Entrypoint: ["/app"], Cmd: ["-v"] });
    expect(parseCommandLine('["/app", "--x"]', "--cmd")).toEqual(["/app", "--x"]);
    expect(parseCommandLine("echo $HOME", "--cmd")).toEqual(["/bin/sh", "-c", "echo $HOME"]);
    expect(parseCommandLine("", "--cmd")).toBeNull();
    expect(() => parseCommandLine("[1, 2]", "--cmd")).toThrow(/array of strings/);
  });

  it("appends diff_ids with one non-empty history entry per layer", () => {
    const out = appendToConfig(base, [{ diffId: "sha256:bb", createdBy: "regcli append" }], "2026-01-01T00:00:00Z");
    expect(out.rootfs).toEqual({ type: "layers", diff_ids: ["sha256:aa", "sha256:bb"] });
    expect(out.history!.at(-1)).toEqual({ created: "2026-01-01T00:00:00Z", created_by: "regcli append" });
  });

  it("created: --created, else SOURCE_DATE_EPOCH, else now; ports; layer types per family", () => {
    expect(createdTime("2026-02-03T04:05:06+01:00", {})).toBe("2026-02-03T03:05:06Z");
    expect(createdTime(undefined, { SOURCE_DATE_EPOCH: "0" })).toBe("1970-01-01T00:00:00Z");
    expect(createdTime(undefined, {}, new Date(1500))).toBe("1970-01-01T00:00:01.500Z");
    expect(() => createdTime("yesterday", {})).toThrow(/RFC 3339/);
    expect(parsePort("8080")).toBe("8080/tcp");
    expect(parsePort("53/UDP")).toBe("53/udp");
    expect(() => parsePort("70000")).toThrow();
    expect(familyLayerType("docker", "gzip")).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
    expect(familyLayerType("oci", "none")).toBe("application/vnd.oci.image.layer.v1.tar");
    expect(() => familyLayerType("docker", "zstd")).toThrow(/no zstd layer type/);
  });
});
