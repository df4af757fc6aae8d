// Bundles the CLI into dist/regcli.mjs (plus lazily loaded chunks) so start-up reads a few files instead of
// resolving hundreds of modules. `tsc` still builds dist/ for the library exports and type declarations.
import { rmSync } from "node:fs";
import { build } from "esbuild";

// Chunk names carry content hashes: clear the old ones so dist/ holds only what this build references.
rmSync("dist/chunks", { recursive: true, force: true });

await build({
  entryPoints: { regcli: "src/cli/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "linked",
  // CommonJS dependencies (commander, tar-stream) call require() for Node built-ins.
  banner: { js: "import { createRequire as __regcliCreateRequire } from 'node:module'; const require = __regcliCreateRequire(import.meta.url);" },
  logLevel: "warning",
});
