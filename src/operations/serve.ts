import { htpasswdAuthenticator } from "../server/htpasswd.js";
import { RegistryServer, type ServeOptions } from "../server/server.js";
import { RegistryStorage } from "../server/storage.js";

export interface ServeSettings extends Omit<ServeOptions, "authenticate"> {
  htpasswd?: string;
}

export async function serve(settings: ServeSettings): Promise<{ server: RegistryServer; url: string }> {
  const server = new RegistryServer({ ...settings, authenticate: settings.htpasswd ? htpasswdAuthenticator(settings.htpasswd) : undefined });
  const address = await server.start();
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { server, url: `${settings.tlsCert ? "https" : "http"}://${host}:${address.port}` };
}

/** Blobs no manifest references; removed unless `dryRun`. */
export async function garbageCollect(root: string, dryRun: boolean): Promise<{ blobs: string[]; bytes: number }> {
  const storage = new RegistryStorage(root);
  const blobs = await storage.unreferencedBlobs();
  let bytes = 0;
  for (const digest of blobs) bytes += dryRun ? 0 : await storage.removeBlob(digest);
  return { blobs, bytes };
}
