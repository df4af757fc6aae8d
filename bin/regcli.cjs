#!/usr/bin/env node
"use strict";
// A CommonJS entry: `regcli --version` answers without starting Node's ES module loader (about 15 ms) or loading the
// CLI (start-up time is measured against skopeo's); everything else imports the bundled CLI (dist/regcli.mjs, built
// by `npm run build`), whose commands load their own parts lazily.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`${require("../package.json").version}\n`);
} else {
  // undici parses HTTP with a WebAssembly module, which V8 would recompile with its optimizing tier in the
  // background; for a short-lived CLI that costs ~100 ms of CPU and holds up exit until it finishes. The baseline
  // compiler's code parses headers just as well (measured: `regcli ls` 0.37-0.43 s -> 0.26-0.30 s here).
  require("node:v8").setFlagsFromString("--liftoff-only");
  import("../dist/regcli.mjs").then(
    async ({ main }) => {
      process.exitCode = await main(process.argv);
    },
    (err) => {
      process.stderr.write(`regcli: error: cannot load the CLI (${err && err.message}); run \`npm run build\`\n`);
      process.exitCode = 1;
    },
  );
}
