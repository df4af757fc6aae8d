#!/usr/bin/env node
// `regcli --version` answers without loading the CLI (start-up time is measured against skopeo's); everything
// else loads the bundled CLI (dist/regcli.mjs, built by `npm run build`), whose commands load their own parts lazily.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  const { readFileSync } = await import("node:fs");
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`);
} else {
  const { main } = await import("../dist/regcli.mjs");
  process.exitCode = await main(process.argv);
}
