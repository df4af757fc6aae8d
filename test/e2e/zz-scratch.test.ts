import { request } from "undici";
import { it } from "vitest";
import { makeImage, makeIndex, pushIndex } from "../helpers/images.js";
import { startRegistry } from "../helpers/registry.js";
it("schema1 probe", async () => {
  const up = await startRegistry("open");
  const dproxy = await startRegistry("open", { proxyRemoteUrl: up.url });
  const rproxy = await startRegistry("open", { server: "regcli", serveArgs: ["--proxy", up.url] });
  const amd64 = await makeImage({ seed: "s1-amd64", format: "docker" });
  const arm64 = await makeImage({ seed: "s1-arm64", format: "docker", platform: { os: "linux", architecture: "arm64" } });
  await pushIndex(up, "team/list", "1.0", makeIndex([amd64, arm64], "docker"));
  for (const [n, r] of [["up", up], ["dproxy", dproxy], ["rproxy", rproxy]] as const) {
    for (const method of ["GET", "HEAD"] as const) {
      const res = await request(`${r.url}/v2/team/list/manifests/1.0`, { method, headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
      const body = method === "GET" ? (await res.body.text()).slice(0, 300) : "";
      console.log(n, method, res.statusCode, res.headers["content-type"], res.headers["docker-content-digest"], body);
    }
  }
  await Promise.all([up.stop(), dproxy.stop(), rproxy.stop()]);
}, 60000);
