#!/usr/bin/env node
// Builds regcli as one executable for machines without Node: a Node single executable application (SEA), i.e. a copy
// of this Node binary with dist/regcli.cjs injected as its main script (https://nodejs.org/api/single-executable-applications.html).
//   node scripts/sea.mjs [--output FILE] [--no-snapshot]   (`npm run build:sea` builds first; default FILE: dist/regcli-<os>-<arch>)
// By default the executable carries a V8 startup snapshot: the bundle's top level (the modules it loads at start) is
// evaluated here at build time, and each start deserializes that heap instead (docs/benchmarks.md, "startup
// snapshot": `regcli version` and `digest` 10-25 ms faster, `--version` ~5 ms slower). --no-snapshot builds the
// executable that evaluates the bundle at each start, with V8's code cache made at build time instead.
// The injector is postject, the one Node's documentation names (a devDependency). The executable runs on machines of
// the same OS and CPU as the Node that built it, and needs only the C/C++ runtime libraries that Node itself links.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bundle = join(root, "dist", "regcli.cjs");
const i = process.argv.indexOf("--output");
const output = resolve(i > 0 ? process.argv[i + 1] : join(root, "dist", `regcli-${process.platform}-${process.arch}`));
const snapshot = !process.argv.includes("--no-snapshot");
if (!existsSync(bundle)) throw new Error("dist/regcli.cjs is missing: run `npm run build` first (or `npm run build:sea`)");
// macOS and Windows need their signature removed before the injection and made again after (codesign, signtool),
// which this script does not do; Linux binaries are not signed.
if (process.platform !== "linux") throw new Error(`build:sea builds on Linux only (this is ${process.platform})`);

const work = mkdtempSync(join(tmpdir(), "regcli-sea-"));
try {
  // The main script: see plainMain and snapshotMain below.
  const main = join(work, "main.cjs");
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const source = readFileSync(bundle, "utf8");
  const versionLine = `if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) process.stdout.write(${JSON.stringify(`${version}\n`)});`;
  writeFileSync(main, (snapshot ? snapshotMain : plainMain)(source, versionLine));
  const blob = join(work, "regcli.blob");
  // useCodeCache: V8's code for the script is made at build time, as dist/regcli.cjs.v8cache is for bin/regcli.cjs
  // (measured: `regcli version` 100 -> 80 ms of CPU, medians of 21 runs). A snapshot holds compiled code already
  // (Node ignores useCodeCache with useSnapshot).
  const config = { main, output: blob, disableExperimentalSEAWarning: true, ...(snapshot ? { useSnapshot: true } : { useCodeCache: true }) };
  writeFileSync(join(work, "sea-config.json"), JSON.stringify(config));
  quiet(process.execPath, ["--experimental-sea-config", join(work, "sea-config.json")]);

  const tmp = `${output}.tmp`;
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  const postject = join(root, "node_modules", "postject", "dist", "cli.js");
  // The fuse is the sentinel string Node's binary carries for this (see the Node documentation above).
  quiet(process.execPath, [postject, tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2"]);
  renameSync(tmp, output);
  console.log(`sea: ${output} (${Math.round(statSync(output).size / 2 ** 20)} MiB, Node ${process.version}${snapshot ? ", startup snapshot" : ""})`);
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(`${output}.tmp`, { force: true });
}

/** Run a build step; its chatter (postject warns about note sections of Node's ELF binary) shows only if it fails. */
function quiet(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: "pipe" });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ""}${err.stderr ?? ""}`);
    throw new Error(`sea: ${[cmd, ...args].join(" ")} failed`);
  }
}

/**
 * bin/regcli.cjs's V8 flag, set as it sets it: after loading the built-ins every command needs (its list, read from
 * there), since Node compiles those loaded after a flag change from source instead of from its own cached code.
 */
function setFlags() {
  const list = readFileSync(join(root, "bin", "regcli.cjs"), "utf8").match(/^const BUILTINS_BEFORE_FLAGS = (\[[^\]]*\]);$/m);
  if (!list) throw new Error("sea: bin/regcli.cjs has no BUILTINS_BEFORE_FLAGS list; update setFlags in scripts/sea.mjs");
  return `for (const name of ${list[1]}) require(name);\nrequire("node:v8").setFlagsFromString("--liftoff-only");`;
}

/**
 * The main script without a snapshot: the bundle run as bin/regcli.cjs runs it (see there): `--version` alone answers
 * without running the CLI, and undici's HTTP parser (WebAssembly) is compiled by V8's baseline tier only. Inside a
 * SEA, require() loads only Node's built-ins (the bundle needs nothing else), __filename is the executable, and the
 * version is baked into the bundle (no package.json beside the executable).
 */
function plainMain(source, versionLine) {
  return [
    "const args = process.argv.slice(2);",
    versionLine,
    // Parenthesized, so that V8 compiles the function with the script and the build-time code cache covers it.
    "else (function () {",
    setFlags(),
    'globalThis.__regcliCodeCache = "built into the executable";',
    source,
    ";module.exports.main(process.argv).then((code) => (process.exitCode = code));",
    "})();",
  ].join("\n");
}

/**
 * The snapshot's main script: run at build time (`node --build-snapshot` semantics), it evaluates the bundle's top
 * level; each start then runs only the function given to setDeserializeMainFunction, with that start's argv and env.
 * What the top level computed from the build machine's terminal stays in the heap: the stderr colours of
 * src/cli/output.ts (`err`, made from process.stderr) are made again for the real stderr. Node 20 cannot load
 * node:http in a snapshot, so the lazily imported request path (undici) is loaded at run time as before.
 */
function snapshotMain(source, versionLine) {
  // esbuild may rename `err` (err2...) when another bundled module has a top-level `err` (fzstd does).
  const found = source.match(/\berr\d*=colorsFor\(process\.stderr\)/g) ?? [];
  if (found.length !== 1) throw new Error(`sea: dist/regcli.cjs should have one \`err=colorsFor(process.stderr)\` (found ${found.length}); update snapshotMain in scripts/sea.mjs`);
  const errColors = found[0];
  return [
    'globalThis.__regcliCodeCache = "in the startup snapshot";',
    "const bundle = { exports: {} };",
    "(function (module, exports) {",
    source,
    ";module.exports.__regcliRestart = () => { " + errColors + "; };",
    "})(bundle, bundle.exports);",
    'require("node:v8").startupSnapshot.setDeserializeMainFunction(() => {',
    "const args = process.argv.slice(2);",
    versionLine,
    "else {",
    setFlags(),
    "bundle.exports.__regcliRestart();",
    "bundle.exports.main(process.argv).then((code) => (process.exitCode = code));",
    "}",
    "});",
  ].join("\n");
}
