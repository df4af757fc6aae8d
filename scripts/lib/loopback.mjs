// Helpers the scripts share for registries they start on loopback (bench, demo, the bundle's cache warm-up).
import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Wait until `GET http://ADDR/v2/` answers 200; false after `tries` attempts `everyMs` apart. */
export async function registryUp(addr, { tries = 200, everyMs = 50 } = {}) {
  for (let i = 0; i < tries; i++) {
    if (await fetch(`http://${addr}/v2/`).then((r) => r.status === 200, () => false)) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}
