// Bundles the CLI into dist/regcli.mjs (plus lazily loaded chunks) so start-up reads a few files instead of
// resolving hundreds of modules. `tsc` still builds dist/ for the library exports and type declarations.
import { rmSync } from "node:fs";
import { build } from "esbuild";

// Chunk names carry content hashes: clear the old ones so dist/ holds only what this build references.
rmSync("dist/chunks", { recursive: true, force: true });

// undici's HTTP/1.1 client module requires node:http2 at load time (costing ~20 ms of every start-up, with
// node:tls behind it) although regcli never enables HTTP/2 (measured: no gain against Distribution, see
// docs/benchmarks.md). The stub throws, and undici already handles a Node without http2 by falling back.
const noHttp2 = {
  name: "no-http2",
  setup(b) {
    b.onResolve({ filter: /^(node:)?http2$/ }, (args) =>
      /[\\/]node_modules[\\/]undici[\\/]/.test(args.importer) ? { path: "http2", namespace: "no-http2" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "no-http2" }, () => ({
      contents: "throw new Error('HTTP/2 is not part of the regcli bundle');",
      loader: "js",
    }));
  },
};

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
  plugins: [noHttp2],
  logLevel: "warning",
});
