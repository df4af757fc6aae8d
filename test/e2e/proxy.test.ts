// regcli serve --proxy: a pull-through cache in front of a real Distribution registry (token auth, through the fault
// proxy to count and break upstream requests), with skopeo and regcli as its clients.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, skopeo, tempDir } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { makeImage, makeIndex, pushImage, pushIndex, type TestImage, type TestIndex } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const ALL_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

async function call(url: string, method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE" = "GET", headers: Record<string, string> = {}) {
  const res = await request(url, { method, headers });
  const body = method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await res.body.arrayBuffer());
  const h = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, body, text: body.toString("utf8"), h, headers: res.headers };
}

/** Upstream GETs of blobs (not HEADs), by digest, as the fault proxy in front of upstream saw them. */
function blobGets(fp: FaultProxy): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of fp.log) {
    const m = /\/blobs\/(sha256:[a-f0-9]{64})/.exec(e.path);
    if (m && e.method === "GET") counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

const blobsOf = (img: TestImage) => [img.config, ...img.layers];

describe("regcli serve --proxy: a pull-through cache of a token-auth registry", () => {
  let upstream: TestRegistry;
  let fp: FaultProxy;
  let cache: TestRegistry;
  let image: TestImage;
  let index: TestIndex;
  beforeAll(async () => {
    upstream = await startRegistry("token");
    fp = await startFaultProxy(upstream.url);
    image = await makeImage({ layers: 3, layerSize: 256 * 1024, seed: "proxy-cold" });
    index = makeIndex([await makeImage({ seed: "proxy-amd64" }), await makeImage({ seed: "proxy-arm64", platform: { os: "linux", architecture: "arm64" } })]);
    await pushImage(upstream, "team/app", "1.0", image);
    await pushIndex(upstream, "team/multi", "1.0", index);
    cache = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy", fp.url, "--proxy-ttl", "2s"] });
  });
  afterAll(async () => {
    await cache?.stop();
    await fp?.close();
    await upstream?.stop();
  });

  it("a cold pull fetches every blob once from upstream; a warm pull none", async () => {
    fp.reset();
    const dir = await tempDir();
    const cold = await skopeo(["copy", "--src-tls-verify=false", `docker://${cache.host}/team/app:1.0`, `oci:${join(dir, "cold")}:1.0`]);
    expect(cold.code, cold.stderr).toBe(0);
    const gets = blobGets(fp);
    for (const b of blobsOf(image)) expect(gets.get(b.digest)).toBe(1);
    fp.reset();
    const warm = await regcli(["copy", `${cache.host}/team/app:1.0`, `oci:${join(dir, "warm")}:1.0`]);
    expect(warm.code, warm.stderr).toBe(0);
    expect(blobGets(fp).size).toBe(0);
    const layer = image.layers[0]!;
    expect(readFileSync(join(dir, "warm", "blobs", "sha256", layer.digest.slice(7)))).toEqual(layer.data);
  });
});
