// serve's sendFile on a real HTTP server and socket: a client gone before or during the answer, an empty range.
import { randomBytes } from "node:crypto";
import { open, writeFile, type FileHandle } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { request } from "undici";
import { beforeAll, describe, expect, it } from "vitest";
import { sendFile } from "../../src/server/send-file.js";
import { tempDir } from "../helpers/cli.js";

describe("sendFile", () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  let path: string;
  beforeAll(async () => {
    path = join(await tempDir("regcli-send-file-"), "blob");
    await writeFile(path, data);
  });

  /** A server whose one answer is `handle(res)`; its outcome (resolved or the error's code) and the file handle. */
  async function serveOnce(handle: (res: ServerResponse, file: FileHandle) => Promise<void>) {
    let settle!: (v: { outcome: string; file: FileHandle }) => void;
    const done = new Promise<{ outcome: string; file: FileHandle }>((r) => (settle = r));
    const server = createServer((_req, res) => {
      void open(path, "r").then((file) =>
        handle(res, file).then(
          () => settle({ outcome: "sent", file }),
          (err: NodeJS.ErrnoException) => settle({ outcome: err.code ?? err.message, file }),
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { port: (server.address() as AddressInfo).port, done, close: () => new Promise((r) => server.close(r)) };
  }

  it("sends a range whole, and an empty range as an empty body, closing the file", async () => {
    for (const [start, end] of [[5, 2 * 1024 * 1024 + 100], [0, -1]] as const) {
      const s = await serveOnce((res, file) => (res.writeHead(200, { "content-length": String(end + 1 - start) }), sendFile(file, res, start, end)));
      const body = Buffer.from(await (await request(`http://127.0.0.1:${s.port}/`)).body.arrayBuffer());
      expect(body.equals(data.subarray(start, end + 1))).toBe(true);
      const { outcome, file } = await s.done;
      expect(outcome).toBe("sent");
      expect(file.fd).toBe(-1); // closed
      await s.close();
    }
  });

  it("a client gone before the answer starts (an empty range too), or in the middle of it: rejected as a premature close, the file closed, no hang", async () => {
    for (const [when, end] of [["before", data.length - 1], ["before", -1], ["during", data.length - 1]] as const) {
      const s = await serveOnce(async (res, file) => {
        if (when === "before") await new Promise((r) => res.once("close", r));
        res.writeHead(200, { "content-length": String(end + 1) });
        return sendFile(file, res, 0, end);
      });
      const socket = connect(s.port, "127.0.0.1");
      socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      if (when === "before") setTimeout(() => socket.destroy(), 50);
      else socket.once("data", () => socket.destroy());
      const settled = await Promise.race([s.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
      expect(settled, `sendFile settled (client gone ${when}, bytes 0-${end})`).toBeDefined();
      expect(["ERR_STREAM_PREMATURE_CLOSE", "ECONNRESET", "EPIPE", "ERR_STREAM_DESTROYED"]).toContain(settled!.outcome);
      expect(settled!.file.fd).toBe(-1);
      await s.close();
    }
  });

});
