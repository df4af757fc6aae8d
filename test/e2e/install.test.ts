// regcli as users get it: the npm package installed offline into an empty prefix, npx, and the standalone executable.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onTerminal, regcli, repoRoot, tempDir, type CliResult } from "../helpers/cli.js";
import { fetchManifest, makeImage, pushImage, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const exec = promisify(execFile);
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

function ok(r: CliResult): CliResult {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** Every kind of command through `bin`, from docker-registry (`src`, holding app:1 = `image`) to `dst`. */
async function everyCommand(bin: string, src: TestRegistry, dst: TestRegistry, image: TestImage, dir: string): Promise<void> {
  const run = async (...args: string[]) => ok(await regcli(args, { bin, env: { REGCLI_HOME: join(dir, "home") } })).stdout;
  expect(await run("ls", `${src.host}/app`)).toBe("1\n");
  expect((await run("digest", `${src.host}/app:1`)).trim()).toBe(image.manifestDigest);
  expect(await run("manifest", `${src.host}/app:1`)).toBe(image.manifest.toString());
  expect(await run("inspect", "--format", "json", `${src.host}/app:1`)).toContain(image.manifestDigest);
  await run("copy", `${src.host}/app:1`, `${dst.host}/copied:1`);
  expect((await fetchManifest(dst, "copied", "1")).digest).toBe(image.manifestDigest);
  await run("tag", `${dst.host}/copied:1`, "2");
  await run("sync", `${src.host}/app`, `${dst.host}/mirror`);
  expect((await fetchManifest(dst, "mirror", "1")).digest).toBe(image.manifestDigest);
  expect(await run("ls", dst.host)).toMatch(/copied[\s\S]*mirror/);
  const layout = join(dir, "layout");
  await run("pull", `${dst.host}/copied:2`, "-o", layout);
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  expect(index.manifests.map((m) => m.digest)).toEqual([image.manifestDigest]);
  await run("push", `oci:${layout}@${image.manifestDigest}`, `${dst.host}/pushed:1`);
  expect((await fetchManifest(dst, "pushed", "1")).digest).toBe(image.manifestDigest);
  await run("pull", `${dst.host}/pushed:1`);
  expect(await run("images")).toContain(`${dst.host}/pushed`);
  await run("export", `${dst.host}/pushed:1`, "-o", join(dir, "rootfs.tar"));
  expect(readFileSync(join(dir, "rootfs.tar")).includes("layer1/data.bin")).toBe(true);
}

describe("npm pack, installed offline from the tarball", () => {
  let work: string;
  let tarball: string;
  let prefix: string;
  let bin: string;
  let image: TestImage;
  let src: TestRegistry;
  let serve: TestRegistry;
  // npm, isolated: an empty cache and --offline, so anything the package still needed from the registry fails here.
  // The npm_* variables `npm test` passes down (its prefix, its cache...) are left out; the prefix is the test's.
  const npm = (args: string[], cwd = work, tool: "npm" | "npx" = "npm") => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const flags = ["--offline", "--cache", join(work, "npm-cache"), "--no-audit", "--no-fund", "--no-update-notifier"];
    const argv = tool === "npx" ? [...flags, ...args] : [args[0]!, ...flags, ...args.slice(1)];
    return exec(tool, argv, { cwd, env: { ...env, npm_config_prefix: prefix } });
  };

  beforeAll(async () => {
    work = await tempDir("regcli-install-");
    prefix = join(work, "prefix");
    mkdirSync(prefix);
    // prepack would run `npm run build`, which the test command has just done (pretest); a second build would
    // rewrite dist/ under the other test files, so the pack takes the build as it is.
    const packed = await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], repoRoot);
    tarball = join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
    await npm(["install", "--global", "--prefix", prefix, tarball]);
    bin = join(prefix, "bin", "regcli");
    image = await makeImage({ layers: 2, layerSize: 16 * 1024, seed: "install" });
    src = await startRegistry("open");
    await pushImage(src, "app", "1", image);
    serve = await startRegistry("open", { server: "regcli", regcliBin: bin });
  }, 180_000);
  afterAll(async () => {
    await src?.stop();
    await serve?.stop();
    rmSync(work, { recursive: true, force: true }); // now: tempDir's removal at exit does not run in a vitest fork
  });

  it("the package needs nothing from the registry: no dependencies (the bundles inline them), a prepack that builds", () => {
    const pkg = JSON.parse(readFileSync(join(prefix, "lib", "node_modules", "regcli", "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.scripts?.prepack).toContain("npm run build");
    expect(pkg.bin).toEqual({ regcli: "bin/regcli.cjs" });
  });

  it("the installed bin answers --version, version (through the CLI, with the shipped code cache) and --help", async () => {
    expect(ok(await regcli(["--version"], { bin })).stdout).toBe(`${version}\n`);
    const full = ok(await regcli(["--debug", "version"], { bin }));
    expect(full.stdout).toBe(`regcli ${version}\n`);
    expect(full.stderr).toContain("code cache accepted"); // the packed dist/regcli.cjs.v8cache works where npm put it
    const help = ok(await regcli(["--help"], { bin })).stdout;
    for (const command of ["ls", "copy", "pull", "push", "sync", "serve", "login"]) expect(help).toMatch(new RegExp(`^  ${command}\\b`, "m"));
  });

  it("ls, digest, manifest, inspect, copy, tag, sync, pull, push, images, export run from the installed bin, between docker-registry and the installed `regcli serve`", async () => {
    await everyCommand(bin, src, serve, image, join(work, "run"));
  }, 180_000); // 13 commands, each a process start: slow on a loaded machine

  // npx finds a package in the global prefix (here the test's, through npm_config_prefix); `npx --prefix DIR` would
  // look in DIR/node_modules, where a global install is not.
  it("npx regcli runs the globally installed package offline, and npx --package runs the tarball itself", async () => {
    // `--` ends npx's options: it takes `--no-update-notifier regcli` as an option with a value.
    expect((await npm(["--", "regcli", "--version"], work, "npx")).stdout).toBe(`${version}\n`);
    expect((await npm(["--yes", "--package", tarball, "--", "regcli", "version"], work, "npx")).stdout).toBe(`regcli ${version}\n`);
  });

  it("the library entry point imports from the installed package without its dependencies", async () => {
    const script = `import { parseReference } from "regcli"; console.log(parseReference("busybox").full);`;
    const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", script], { cwd: join(prefix, "lib") });
    expect(stdout).toBe("docker.io/library/busybox:latest\n");
  });
});

describe("the standalone executable (npm run build:sea)", () => {
  let work: string;
  let sea: string;
  let noNode: string;
  let image: TestImage;
  let serve: TestRegistry;
  let dst: TestRegistry;

  beforeAll(async () => {
    work = await tempDir("regcli-sea-test-");
    sea = join(work, "regcli");
    await exec(process.execPath, [join(repoRoot, "scripts", "sea.mjs"), "--output", sea], { cwd: repoRoot });
    noNode = join(work, "empty-path"); // PATH for the executable's runs: no node to fall back on
    mkdirSync(noNode);
    image = await makeImage({ layers: 2, layerSize: 16 * 1024, seed: "sea" });
    serve = await startRegistry("open", { server: "regcli", regcliBin: sea });
    await pushImage(serve, "app", "1", image);
    dst = await startRegistry("open");
  }, 180_000);
  afterAll(async () => {
    await serve?.stop();
    await dst?.stop();
    rmSync(work, { recursive: true, force: true }); // the executable is 96 MiB
  });

  it("a TLS registry: node:tls, which the CLI loads on first use through createRequire, loads inside the executable", async () => {
    const tls = await startRegistry("tls");
    try {
      await pushImage(tls, "app", "1", image);
      expect(ok(await regcli(["ls", "--ca-file", tls.caFile!, `${tls.host}/app`], { bin: sea, env: { PATH: noNode } })).stdout).toBe("1\n");
    } finally {
      await tls.stop();
    }
  });

  it("--version and version print the package's version (baked in: no package.json beside the executable)", async () => {
    expect(ok(await regcli(["--version"], { bin: sea, env: { PATH: noNode } })).stdout).toBe(`${version}\n`);
    expect(ok(await regcli(["version"], { bin: sea, env: { PATH: noNode } })).stdout).toBe(`regcli ${version}\n`);
  });

  // The executable's startup snapshot holds what the CLI's top level computed at build time (no terminal there); the
  // colours of stderr must still follow the terminal and NO_COLOR of the run.
  it("errors are coloured on a terminal and not with NO_COLOR or on a pipe, although the CLI was loaded at build time", async () => {
    const missing = ["digest", `${serve.host}/missing:1`];
    const tty = await onTerminal(missing, "", false, { NO_COLOR: "" }, sea);
    expect(tty.code).toBe(4);
    expect(tty.screen).toMatch(/^\x1b\[31mregcli: error:\x1b\[39m /);
    const noColor = await onTerminal(missing, "", false, { NO_COLOR: "1" }, sea);
    expect(noColor.screen).toMatch(/^regcli: error: /);
    const piped = await regcli(missing, { bin: sea, env: { PATH: noNode } });
    expect(piped.code).toBe(4);
    expect(piped.stderr).toMatch(/^regcli: error: /);
  });

  it("ls and copy run against the executable's own `regcli serve`, without Node on PATH", async () => {
    expect(ok(await regcli(["ls", `${serve.host}/app`], { bin: sea, env: { PATH: noNode } })).stdout).toBe("1\n");
    ok(await regcli(["copy", `${serve.host}/app:1`, `${serve.host}/copied:1`], { bin: sea, env: { PATH: noNode } }));
    expect((await fetchManifest(serve, "copied", "1")).digest).toBe(image.manifestDigest);
    ok(await regcli(["copy", `${serve.host}/app:1`, `${dst.host}/app:1`], { bin: sea, env: { PATH: noNode } }));
    expect((await fetchManifest(dst, "app", "1")).digest).toBe(image.manifestDigest);
  });
});
