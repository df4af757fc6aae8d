// Node built-ins that many commands never use, loaded synchronously on first use rather than at start-up
// (node:tls, node:child_process and node:crypto each cost start-up milliseconds; a registry digest or ls hashes
// nothing). A plain require: the CLI bundle is CommonJS, where an import() of a built-in would not load inside the
// script bin/regcli.cjs compiles.
import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

export const childProcess = (): typeof import("node:child_process") => load("node:child_process") as typeof import("node:child_process");
export const crypto = (): typeof import("node:crypto") => load("node:crypto") as typeof import("node:crypto");
export const tls = (): typeof import("node:tls") => load("node:tls") as typeof import("node:tls");
export const zlib = (): typeof import("node:zlib") => load("node:zlib") as typeof import("node:zlib");
