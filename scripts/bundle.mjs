// Bundles the CLI into one CommonJS file, dist/regcli.cjs, and records V8's compiled code for it in
// dist/regcli.cjs.v8cache, so that a command neither resolves hundreds of modules, nor starts Node's ES module
// loader, nor parses and compiles the CLI again at every start (bin/regcli.cjs loads both).
// Measured on the 2-core machine, time to a copy's first request: 263 ms median with the earlier ES module bundle
// in chunks, 191 ms with this file and a cache warmed by `--help` alone, 164 ms with one warmed by a real copy.
// So the cache is warmed by real commands against a throwaway `regcli serve` on loopback.
// `tsc` still builds dist/ for the type declarations; the library entry, dist/index.js, is bundled here too (below).
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { freePort, registryUp } from "./lib/loopback.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const bundle = join(root, "dist", "regcli.cjs");
const cache = `${bundle}.v8cache`;
const bin = join(root, "bin", "regcli.cjs");
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;

// What earlier builds left: the ES module bundle and its chunks.
for (const old of ["dist/chunks", "dist/regcli.mjs", "dist/regcli.mjs.LEGAL.txt", cache]) rmSync(join(root, old), { recursive: true, force: true });

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

// Built-ins that a registry digest, manifest or ls never calls but modules evaluated at start import: commander
// (node:child_process, for executable subcommands, which regcli has none of), the confirmation prompt
// (node:readline), the store, layout and credential code (node:fs/promises, where the registry path only reads
// synchronously). Each import of these is a module of functions that require the built-in at their first call.
// Measured after node:net and node:stream (which HTTP loads anyway): 0.9 + 0.5 + 1.2 ms at every start.
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(b) {
    b.onResolve({ filter: /^(node:)?(child_process|fs\/promises|readline)$/ }, (args) =>
      args.namespace === "lazy-builtins" ? undefined : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtins" },
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-builtins" }, (args) => {
      // Only functions (an import of anything else fails the build, so it cannot go unnoticed); `new` for classes.
      const builtin = createRequire(import.meta.url)(`node:${args.path}`);
      const names = Object.keys(builtin).filter((k) => typeof builtin[k] === "function" && /^[A-Za-z_$][\w$]*$/.test(k));
      const wrappers = names.map((k) => `export function ${k}(...a) { const f = load().${k}; return new.target ? new f(...a) : f.apply(this, a); }`);
      return { contents: [`const load = () => require("node:${args.path}");`, ...wrappers].join("\n"), loader: "js" };
    });
  },
};

// chalk's supports-color, evaluated at every start, takes node:process, node:os and node:tty as default imports,
// which esbuild wraps in a copy with a getter per property (process has ~100): 0.8 ms of CPU. Here a default import
// of them is the built-in itself.
const defaultBuiltins = {
  name: "default-builtins",
  setup(b) {
    b.onResolve({ filter: /^node:(process|os|tty)$/ }, (args) =>
      /[\\/]node_modules[\\/]chalk[\\/]/.test(args.importer) ? { path: args.path, namespace: "default-builtins" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "default-builtins" }, (args) => ({ contents: `export default require("${args.path}");`, loader: "js" }));
  },
};

// undici's modules require node:assert (0.8 ms to load, after node:stream) only to call assert(condition): a passing
// check needs nothing loaded, a failing one throws node:assert's own error.
const undiciAssert = {
  name: "undici-assert",
  setup(b) {
    b.onResolve({ filter: /^(node:)?assert$/ }, (args) =>
      /[\\/]node_modules[\\/]undici[\\/]/.test(args.importer) ? { path: "assert", namespace: "undici-assert" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "undici-assert" }, () => ({
      contents: `module.exports = function assert(value, message) { if (!value) require("node:assert")(value, message); };`,
      loader: "js",
    }));
  },
};

await build({
  entryPoints: [join(root, "src/cli/main.ts")],
  outfile: bundle,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "linked",
  // The sources are ES modules; in one CommonJS file, import.meta.url is the bundle's own URL.
  define: { "import.meta.url": "__regcliBundleUrl", __REGCLI_VERSION__: JSON.stringify(version) },
  banner: { js: "var __regcliBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [noHttp2, lazyBuiltins, defaultBuiltins, undiciAssert],
  logLevel: "warning",
});

// The library entry ("regcli" in an import) as one ES module with its dependencies inside, over tsc's dist/index.js:
// like the CLI bundle, the installed package then needs nothing from the registry (package.json lists no
// dependencies, so `npm i -g ./regcli-*.tgz --offline` works on a machine with an empty npm cache).
// The CommonJS dependencies (undici, commander...) require Node built-ins, which an ES module does through createRequire.
await build({
  entryPoints: [join(root, "src/index.ts")],
  outfile: join(root, "dist", "index.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minifySyntax: true,
  legalComments: "linked",
  define: { __REGCLI_VERSION__: JSON.stringify(version) },
  banner: { js: "import { createRequire as __regcliCreateRequire } from 'node:module'; const require = __regcliCreateRequire(import.meta.url);" },
  plugins: [noHttp2],
  logLevel: "warning",
});
rmSync(join(root, "dist", "index.js.map"), { force: true }); // tsc's map, for the file just replaced

// bin/regcli.cjs reads the bundle as latin1 (no UTF-8 decoding at every start), which is right only for ASCII.
if (/[^\x00-\x7f]/.test(readFileSync(bundle, "latin1"))) throw new Error("bundle: dist/regcli.cjs is not ASCII (esbuild's charset option?); bin/regcli.cjs reads it as latin1");

await warmCodeCache();

/**
 * Run real commands through bin/regcli.cjs with REGCLI_CODE_CACHE_OUT set, so the cache it writes holds the code
 * that pushing, copying, listing and inspecting compile, not only the top level. Commands run against a
 * `regcli serve` on a free loopback port with an image made here; nothing leaves the machine. A cache that could
 * not be made only costs start-up time: the loader compiles without it.
 */
async function warmCodeCache() {
  const work = mkdtempSync(join(tmpdir(), "regcli-warm-"));
  const env = { ...process.env, REGCLI_HOME: join(work, "home"), DOCKER_CONFIG: join(work, "docker"), NO_COLOR: "1" };
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) delete env[name];
  let server;
  try {
    const layout = makeLayout(join(work, "layout"));
    const port = await freePort();
    server = spawn(process.execPath, [bin, "serve", "--addr", `127.0.0.1:${port}`, "--root", join(work, "registry")], { env, stdio: "ignore" });
    const host = `127.0.0.1:${port}`;
    if (!(await registryUp(host))) throw new Error(`regcli serve did not answer on ${host}`);
    const run = (args, out) => execFileSync(process.execPath, [bin, "--plain-http", "-q", ...args], { env: { ...env, REGCLI_CODE_CACHE_OUT: out ?? "" }, stdio: "ignore" });
    run(["push", `oci:${layout}:warm`, `${host}/warm/app:1`]);
    run(["copy", "--all-tags", `${host}/warm/app`, `${host}/warm/copy`]);
    run(["ls", `${host}/warm/copy`]);
    // The one that writes: one more copy (the hot path), after which V8 serializes everything compiled so far.
    run(["copy", `${host}/warm/app:1`, `${host}/warm/again:1`], cache);
  } catch (err) {
    console.warn(`bundle: no code cache (${err.message.split("\n")[0]}); start-up will compile the CLI each time`);
    rmSync(cache, { force: true });
  } finally {
    server?.kill();
    rmSync(work, { recursive: true, force: true });
  }
  if (existsSync(cache)) console.log(`bundle: dist/regcli.cjs ${kib(bundle)} KiB, code cache ${kib(cache)} KiB`);
}

function kib(file) {
  return Math.round(statSync(file).size / 1024);
}

function makeLayout(dir) {
  const sha256 = (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const put = (b) => {
    writeFileSync(join(dir, "blobs", "sha256", sha256(b).slice(7)), b);
    return sha256(b);
  };
  const layer = randomBytes(256 * 1024);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: put(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: put(layer), size: layer.length }],
    }),
  );
  const index = { schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: put(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "warm" } }] };
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify(index));
  return dir;
}
