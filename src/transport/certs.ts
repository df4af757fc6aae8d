// Per-registry TLS files the way Docker and podman keep them (containers-certs.d(5)): a directory named after the
// registry's HOST[:PORT] holding CA certificates (*.crt) and client certificate pairs (NAME.cert + NAME.key).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { localFileError, RegcliError } from "../errors.js";

/** What one registry's certificate directory holds. */
export interface HostCertificates {
  dir: string;
  /** PEM CA certificates (*.crt), trusted for this host on top of the system roots and --ca-file. */
  ca: string[];
  /** The client certificate and key for mutual TLS: the first NAME.cert (by name) with its NAME.key. */
  client?: { cert: string; key: string; certFile: string };
}

/**
 * The roots searched for a HOST[:PORT] subdirectory, in containers/image's order; the first that has one is the
 * registry's (the others are not merged in). Docker itself reads only /etc/docker/certs.d.
 */
export function certsDirRoots(): string[] {
  return [join(homedir(), ".config", "containers", "certs.d"), "/etc/containers/certs.d", "/etc/docker/certs.d"];
}

/** The certificate directory of `host` (HOST[:PORT], as in the URL), or undefined when no root has one. */
export function findHostCertDir(host: string, roots = certsDirRoots()): string | undefined {
  for (const root of roots) {
    const dir = join(root, host);
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // Missing or not readable (containers/image skips a root it may not read, too).
    }
  }
  return undefined;
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw localFileError(err, file, "read") ?? new RegcliError("usage", `cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/**
 * Read a certificate directory; undefined when it holds no certificates. `explicit` (--cert-dir): a missing
 * directory is a usage error instead of "nothing configured".
 */
export function readCertDir(dir: string, explicit = false): HostCertificates | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    if (!explicit) return undefined;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new RegcliError("usage", `--cert-dir ${dir} is not a directory`, { hint: "give a directory holding *.crt, *.cert and *.key files" });
    throw localFileError(err, dir, "read") ?? err;
  }
  const has = new Set(names);
  const found: HostCertificates = { dir, ca: [] };
  for (const name of names) {
    const file = join(dir, name);
    if (name.endsWith(".crt")) {
      found.ca.push(readPem(file, "CA certificate"));
    } else if (name.endsWith(".cert")) {
      const keyName = `${name.slice(0, -".cert".length)}.key`;
      if (!has.has(keyName)) {
        throw new RegcliError("usage", `missing key ${join(dir, keyName)} for client certificate ${file}`, { hint: "CA certificates must use the extension .crt" });
      }
      found.client ??= { cert: readPem(file, "client certificate"), key: readPem(join(dir, keyName), "client key"), certFile: file };
    } else if (name.endsWith(".key")) {
      const certName = `${name.slice(0, -".key".length)}.cert`;
      if (!has.has(certName)) throw new RegcliError("usage", `missing client certificate ${join(dir, certName)} for key ${file}`);
    }
  }
  return found.ca.length || found.client ? found : undefined;
}
