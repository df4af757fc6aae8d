#!/usr/bin/env node
"use strict";
// The entry point, in CommonJS: `regcli --version` answers without loading the CLI (start-up time is measured
// against skopeo's), and everything else runs the bundled CLI (dist/regcli.cjs, built by `npm run build`) with the
// code V8 compiled for it at build time (dist/regcli.cjs.v8cache), so a command skips parsing and compiling it.
const BUILTINS_BEFORE_FLAGS = ["node:vm", "node:module", "node:os", "node:process", "node:tty", "node:net", "node:http", "node:diagnostics_channel", "node:timers/promises"];
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${require("../package.json").version}\n`);
} else {
  // undici parses HTTP with a WebAssembly module, which V8 would recompile with its optimizing tier in the
  // background; for a short-lived CLI that costs ~100 ms of CPU and holds up exit until it finishes. The baseline
  // compiler's code parses headers just as well (measured: `regcli ls` 0.37-0.43 s -> 0.26-0.30 s here).
  // Set before the bundle is compiled: V8 accepts a code cache only under the flags it was made with. That holds for
  // Node's own modules too, compiled from code cached at Node's build: those loaded after the flag is set are parsed
  // and compiled from source. So the built-ins every command loads are loaded first (measured with callgrind: a
  // digest executes 39 M instructions fewer, ~8 ms of CPU; node:crypto stays lazy, digest, manifest and ls need none).
  for (const name of BUILTINS_BEFORE_FLAGS) require(name);
  require("node:v8").setFlagsFromString("--liftoff-only");
  let main;
  try {
    main = loadBundle();
  } catch (err) {
    process.stderr.write(`regcli: error: cannot load the CLI (${err && err.message}); run \`npm run build\`\n`);
    process.exitCode = 1;
  }
  if (main) main(process.argv).then((code) => (process.exitCode = code));
}

/** Compile dist/regcli.cjs as Node would a CommonJS module, but with the cached code when V8 accepts it. */
function loadBundle() {
  const fs = require("node:fs");
  const path = require("node:path");
  const vm = require("node:vm");
  const { createRequire, wrap } = require("node:module");
  const file = path.join(__dirname, "..", "dist", "regcli.cjs");
  const source = fs.readFileSync(file, "latin1"); // ASCII (esbuild escapes the rest; the build checks): no UTF-8 decoding
  const cacheFile = `${file}.v8cache`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache (a build that could not make one): compile as usual
  }
  const script = new vm.Script(wrap(source), { filename: file, cachedData });
  // Another Node version or other V8 flags reject the cache; the script is then compiled from source, same result.
  globalThis.__regcliCodeCache = cachedData === undefined ? "absent" : script.cachedDataRejected ? "rejected" : "accepted";
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  const out = process.env.REGCLI_CODE_CACHE_OUT;
  if (!out) return module.exports.main;
  // `npm run build` runs real commands with this set: the cache is written after the command, when V8 has
  // compiled what the command used.
  return async (argv) => {
    const code = await module.exports.main(argv);
    fs.writeFileSync(out, script.createCachedData());
    return code;
  };
}
