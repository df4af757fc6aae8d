// Progress output for real: bars on a pseudo-terminal (util-linux `script`), JSON events, --quiet.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir } from "../helpers/cli.js";
import { makeImage, pushImage, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const run = promisify(execFile);

describe("progress", () => {
  let reg: TestRegistry;
  let img: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open");
    img = await makeImage({ layers: 2, layerSize: 8 * 1024 * 1024, seed: "progress" });
    await pushImage(reg, "progress/app", "1", img);
  });
  afterAll(async () => reg?.stop());

  it("draws per-blob bars and a total line on a terminal, stdout still carries only the digest", async () => {
    const home = await tempDir("regcli-tty-");
    const typescript = join(home, "typescript");
    const command = `stty cols 120 rows 40; REGCLI_HOME=${home} ${process.execPath} ${join(repoRoot, "bin", "regcli.cjs")} --plain-http pull ${reg.host}/progress/app:1`;
    const env = { ...process.env, TERM: "xterm-256color" };
    delete env.NO_COLOR;
    await run("script", ["-qfec", command, typescript], { env, timeout: 60_000 });
    const screen = await readFile(typescript, "utf8");
    expect(screen).toMatch(/Resolving 127\.0\.0\.1:\d+\/progress\/app:1/); // ora while the manifest resolves
    for (const layer of img.layers) expect(screen).toContain(`${layer.digest.slice(0, 19)}: \x1b[32mPull complete`);
    expect(screen).toMatch(/Total: 3\/3 blobs {2}\d+(\.\d)? MiB/);
    expect(screen).toContain("\x1b[0J"); // the live region is redrawn in place
    expect(screen).toContain(img.manifestDigest);
  });

  it("--progress json prints one JSON event per line on stderr; --quiet prints only the result", async () => {
    const home = await tempDir("regcli-json-");
    const r = await regcli(["--plain-http", "--progress", "json", "pull", `${reg.host}/progress/app:1`], { env: { REGCLI_HOME: home } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(img.manifestDigest);
    const events = r.stderr.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const done = events.filter((e) => e.type === "blob");
    expect(done.map((e) => e.digest).sort()).toEqual([img.config.digest, ...img.layers.map((l) => l.digest)].sort());
    expect(events.some((e) => e.type === "blob-progress" && e.bytes > 0)).toBe(true);
    expect(events.find((e) => e.type === "image")).toMatchObject({ digest: img.manifestDigest });
    const quiet = await regcli(["--plain-http", "-q", "pull", `${reg.host}/progress/app:1`], { env: { REGCLI_HOME: await tempDir("regcli-q-") } });
    expect(quiet.code).toBe(0);
    expect(quiet.stdout.trim()).toBe(img.manifestDigest);
    expect(quiet.stderr).toBe("");
  });
});
