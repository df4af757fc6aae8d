// zstd-codec's Emscripten build of libzstd (WebAssembly inlined in the file); see src/oci/compress.ts.
declare module "zstd-codec/lib/zstd-codec-binding-wasm.js" {
  const instantiate: (module: Record<string, unknown>) => void;
  export default instantiate;
}
