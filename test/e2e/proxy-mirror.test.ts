// `regcli serve --proxy` as the docker.io mirror of real clients: podman (registries.conf [[registry.mirror]]),
// containerd's ctr (hosts.toml, the resolver Docker's containerd image store uses) and what the Docker daemon sends
// to a registry-mirrors entry. The loopback "docker.io" upstream is a docker-registry holding library/ images.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { podman, tempDir } from "../helpers/cli.js";
import { startContainerd } from "../helpers/containerd.js";
import { makeImage, makeIndex, pushIndex, type TestImage, type TestIndex } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/** The Accept headers the Docker daemon's distribution client sends for a manifest by tag (one header per type). */
const DOCKERD_ACCEPT = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, SCHEMA1, "application/json"];
/** containerd's resolver (Docker's containerd image store, nerdctl, Kubernetes): one header, then any type. */
const CONTAINERD_ACCEPT = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"].join(", ");

async function call(url: string, method: "GET" | "HEAD", accept?: string | string[]) {
  const res = await request(url, { method, headers: accept ? { accept } : {} });
  const body = method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await res.body.arrayBuffer());
  if (method === "HEAD") await res.body.dump();
  const h = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, body, type: h("content-type"), digest: h("docker-content-digest"), length: h("content-length") };
}

describe("regcli serve --proxy as a docker.io mirror", () => {
  let upstream: TestRegistry;
  let cache: TestRegistry;
  let list: TestIndex;
  let oci: TestIndex;
  let amd64: TestImage;
  beforeAll(async () => {
    upstream = await startRegistry("open");
    [amd64] = await Promise.all([makeImage({ format: "docker", seed: "mirror-amd64", layerSize: 256 * 1024 })]);
    const arm64 = await makeImage({ format: "docker", seed: "mirror-arm64", platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    list = makeIndex([amd64, arm64], "docker");
    oci = makeIndex([await makeImage({ seed: "mirror-oci-amd64" }), await makeImage({ seed: "mirror-oci-arm64", platform: { os: "linux", architecture: "arm64" } })], "oci");
    await pushIndex(upstream, "library/tiny", "latest", list);
    await pushIndex(upstream, "library/ociapp", "1", oci);
    cache = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy", upstream.url] });
  });
  let upstreamDown = false;
  afterAll(async () => Promise.all([cache?.stop(), upstreamDown ? undefined : upstream?.stop()]));

  /** podman with a registries.conf that sends docker.io to the cache, and its own storage under `dir/name`. */
  async function podmanPull(name: string) {
    const dir = await tempDir("regcli-mirror-");
    const conf = join(dir, "registries.conf");
    writeFileSync(conf, `[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "${cache.host}"\ninsecure = true\n`);
    const env = { CONTAINERS_REGISTRIES_CONF: conf, HOME: dir };
    const pull = await podman(join(dir, "storage"), ["pull", "-q", `docker.io/library/${name}`], { env });
    const digest = await podman(join(dir, "storage"), ["image", "inspect", "--format", "{{.Digest}}", `docker.io/library/${name}`], { env });
    return { pull, digest: digest.stdout.trim() };
  }

  it("podman pulls docker.io/library/NAME through a registries.conf mirror", async () => {
    // docker.io is not reachable from here: a pull that works can only have come through the mirror.
    const { pull, digest } = await podmanPull("tiny:latest");
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(amd64.config.digest.slice(7));
    expect(digest).toBe(list.manifestDigest);
    for (const b of [amd64.config, ...amd64.layers]) expect(existsSync(join(cache.root, "blobs", "sha256", b.digest.slice(7))), `${b.digest} cached`).toBe(true);
  }, 120_000);

  it("answers the Docker daemon's manifest GET by tag (its Accept headers) and containerd's HEAD by tag (?ns=docker.io) as the upstream does", async () => {
    const base = `${cache.url}/v2/library/tiny/manifests`;
    expect((await call(`${cache.url}/v2/`, "GET")).status).toBe(200);

    const head = await call(`${base}/latest?ns=docker.io`, "HEAD", CONTAINERD_ACCEPT);
    expect([head.status, head.type, head.digest, head.length]).toEqual([200, DOCKER_LIST, list.manifestDigest, String(list.manifest.length)]);

    const get = await call(`${base}/latest`, "GET", DOCKERD_ACCEPT);
    expect([get.status, get.type, get.digest]).toEqual([200, DOCKER_LIST, list.manifestDigest]);
    expect(get.body.equals(list.manifest)).toBe(true);

    // Then the platform's manifest and its blobs by digest, as both clients go on.
    const child = await call(`${base}/${amd64.manifestDigest}?ns=docker.io`, "GET", CONTAINERD_ACCEPT);
    expect([child.status, child.type, child.digest]).toEqual([200, DOCKER_MANIFEST, amd64.manifestDigest]);
    for (const b of [amd64.config, ...amd64.layers]) {
      const blob = await call(`${cache.url}/v2/library/tiny/blobs/${b.digest}?ns=docker.io`, "GET");
      expect([blob.status, blob.body.equals(b.data)]).toEqual([200, true]);
    }
  });

  it("negotiates Accept as the upstream does, cold and warm: a client that takes no index gets what the upstream gives it", async () => {
    // The first request fills the cache with the index; the later ones, each with a narrower Accept, must not be
    // handed a type they did not ask for.
    const accepts = [[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", "), OCI_MANIFEST, DOCKER_MANIFEST, `${OCI_INDEX}, ${OCI_MANIFEST}`];
    for (const [repo, tag] of [["library/ociapp", "1"], ["library/tiny", "latest"]] as const) {
      for (const accept of accepts) {
        for (const method of ["HEAD", "GET"] as const) {
          const direct = await call(`${upstream.url}/v2/${repo}/manifests/${tag}`, method, accept);
          const proxied = await call(`${cache.url}/v2/${repo}/manifests/${tag}`, method, accept);
          const what = `${method} ${repo}:${tag} Accept: ${accept}`;
          // Distribution rewrites a list for a client that takes neither lists nor schema 2 into a Docker schema 1
          // manifest, which regcli does not handle (deprecated); the cache must not pass anything else off for it.
          if (direct.type === SCHEMA1) {
            expect(proxied.status, what).toBe(404);
            continue;
          }
          expect(proxied.status, what).toBe(direct.status);
          if (direct.status !== 200) continue;
          expect([proxied.type, proxied.digest], what).toEqual([direct.type, direct.digest]);
          if (method === "GET") expect(proxied.body.equals(direct.body), what).toBe(true);
        }
      }
    }
  });

  it("containerd (ctr, hosts.toml mirror for docker.io) pulls through it", async () => {
    const hosts = await tempDir("regcli-hosts-");
    mkdirSync(join(hosts, "docker.io"));
    writeFileSync(join(hosts, "docker.io", "hosts.toml"), `server = "https://registry-1.docker.io"\n\n[host."http://${cache.host}"]\n  capabilities = ["pull", "resolve"]\n`);
    const containerd = await startContainerd();
    try {
      const pull = await containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", "--platform", "linux/amd64", "docker.io/library/tiny:latest"]);
      expect(pull.code, pull.stderr).toBe(0);
      const ls = await containerd.ctr(["images", "ls", "-q"]);
      expect(ls.stdout.trim()).toBe("docker.io/library/tiny:latest");
      const check = await containerd.ctr(["images", "check"]);
      expect(check.stdout).toContain(list.manifestDigest);
      expect(check.stdout).toMatch(/complete/);
    } finally {
      await containerd.stop();
    }
  }, 120_000);

  // Last: it stops the upstream.
  it("with the upstream down, podman still pulls what the cache holds; what it does not hold fails with 503", async () => {
    upstreamDown = true;
    await upstream.stop();
    const { pull, digest } = await podmanPull("tiny:latest");
    expect(pull.code, pull.stderr).toBe(0);
    expect(digest).toBe(list.manifestDigest);
    const missing = await call(`${cache.url}/v2/library/never-pulled/manifests/latest`, "GET", DOCKERD_ACCEPT);
    expect(missing.status).toBe(503);
    const failed = await podmanPull("never-pulled:latest");
    expect(failed.pull.code).not.toBe(0);
  }, 120_000);
});
