import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import bcrypt from "bcryptjs";
import { RegcliError } from "../errors.js";

/**
 * Basic-auth checker for an htpasswd file of bcrypt entries (what `htpasswd -B` writes and Distribution reads).
 * Verified pairs are remembered by hash, so a client's requests do not each pay for bcrypt.
 */
export function htpasswdAuthenticator(path: string): (username: string, password: string) => Promise<boolean> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RegcliError("usage", `cannot read htpasswd file ${path}: ${(err as Error).message}`);
  }
  const users = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const hash = line.slice(colon + 1).trim();
    if (!/^\$2[abxy]\$/.test(hash)) throw new RegcliError("usage", `htpasswd file ${path}: user ${line.slice(0, colon)} is not bcrypt (use htpasswd -B)`);
    users.set(line.slice(0, colon), hash);
  }
  const verified = new Set<string>();
  return async (username, password) => {
    const hash = users.get(username);
    if (!hash) return false;
    const key = createHash("sha256").update(`${username}\0${password}\0${hash}`).digest("hex");
    if (verified.has(key)) return true;
    const ok = await bcrypt.compare(password, hash);
    if (ok) verified.add(key);
    return ok;
  };
}
