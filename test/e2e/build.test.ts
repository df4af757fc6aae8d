// Building images without a daemon: append and mutate on every location, single images and indexes, checked by
// outside readers (skopeo inspect, umoci unpack) and regcli export.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, makeIndex, pushImage, pushIndex } from "../helpers/images.js";
import { startRegistry, type RegistryServer, type TestRegistry } from "../helpers/registry.js";

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

interface Config {
  created?: string;
  config: { Env?: string[]; Labels?: Record<string, string>; Entrypoint?: string[] | null; Cmd?: string[] | null; User?: string; WorkingDir?: string; ExposedPorts?: Record<string, unknown> };
  rootfs: { diff_ids: string[] };
  history: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
}

describe.each<RegistryServer>(["docker-registry", "regcli"])("mutate against %s", (server) => {
  let reg: TestRegistry;
  let home: string;
  const cli = (args: string[], env: Record<string, string> = {}) => regcli(["--plain-http", ...args], { env: { REGCLI_HOME: home, ...env } });
  const config = async (ref: string, platform?: string): Promise<Config> => JSON.parse(ok(await cli(["config", ref, ...(platform ? ["--platform", platform] : [])])).stdout) as Config;

  beforeAll(async () => {
    reg = await startRegistry("open", { server });
    home = await tempDir("regcli-home-");
    const amd = await makeImage({ seed: "amd", platform: { os: "linux", architecture: "amd64" } });
    const arm = await makeImage({ seed: "arm", platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    await pushIndex(reg, "build/multi", "1", makeIndex([amd, arm]));
    await pushImage(reg, "build/docker", "1", await makeImage({ seed: "docker", format: "docker" }));
  });
  afterAll(async () => reg?.stop());

  it("changes every platform of an index, keeping layers, merging env by key, one empty_layer history entry", async () => {
    const before = await config(`${reg.host}/build/multi:1`, "linux/arm64");
    const r = ok(await cli(["mutate", `${reg.host}/build/multi:1`, "-t", `${reg.host}/build/multi:2`, "--env", "PATH=/app", "--env", "MODE=prod", "--label", "a=b", "--user", "65532", "--expose", "8080", "--annotation", "org.example=yes", "--created", "2026-01-01T00:00:00Z"]));
    const digest = r.stdout.trim();
    const index = await fetchManifest(reg, "build/multi", "2");
    expect(`sha256:${(await import("node:crypto")).createHash("sha256").update(index.body).digest("hex")}`).toBe(digest);
    const doc = JSON.parse(index.body.toString()) as { annotations?: Record<string, string>; manifests: Array<{ platform: { architecture: string } }> };
    expect(doc.annotations).toEqual({ "org.example": "yes" });
    expect(doc.manifests.map((m) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    for (const platform of ["linux/amd64", "linux/arm64"]) {
      const c = await config(`${reg.host}/build/multi:2`, platform);
      expect(c.config.Env).toEqual(["PATH=/app", "MODE=prod"]);
      expect(c.config.Labels).toEqual({ a: "b" });
      expect(c.config.User).toBe("65532");
      expect(c.config.ExposedPorts).toEqual({ "8080/tcp": {} });
      expect(c.created).toBe("2026-01-01T00:00:00Z");
      expect(c.history.at(-1)).toMatchObject({ created: "2026-01-01T00:00:00Z", empty_layer: true });
      expect(c.history.at(-1)!.created_by).toContain("ENV PATH=/app");
    }
    const after = await config(`${reg.host}/build/multi:2`, "linux/arm64");
    expect(after.rootfs).toEqual(before.rootfs);
  });
});
