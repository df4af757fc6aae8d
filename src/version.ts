import { readFileSync } from "node:fs";

// Set by scripts/bundle.mjs in the bundles: the standalone executable (npm run build:sea) has no package.json beside it.
declare const __REGCLI_VERSION__: string | undefined;

/** The package version: baked into the bundles at build time, else read from package.json next to dist/ (one source of truth). */
export function regcliVersion(): string {
  if (typeof __REGCLI_VERSION__ === "string") return __REGCLI_VERSION__;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}
