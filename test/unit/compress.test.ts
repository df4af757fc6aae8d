// Layer compression (src/oci/compress.ts): gzip, zstd (WebAssembly libzstd) and none, checked against the zstd tool.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Duplex, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { request } from "undici";
import { describe, expect, it } from "vitest";
import { compressor, decompressed, decompressor, detectCompression, layerMediaType } from "../../src/oci/compress.js";
import { RegcliError } from "../../src/errors.js";

const exec = promisify(execFile);
const through = async (data: Buffer[], stream: Duplex) => Buffer.concat(await Readable.from(data).pipe(stream).toArray());
// Half random, half repetitive: something to compress, in chunks like a download's.
const sample = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, "layer text ")]);
const chunks = Array.from({ length: Math.ceil(sample.length / 65536) }, (_, i) => sample.subarray(i * 65536, (i + 1) * 65536));

describe("layer compression", () => {
  it.each(["gzip", "zstd", "none"] as const)("%s round-trips in chunks and is recognised by its first bytes", async (kind) => {
    const packed = await through(chunks, await compressor(kind));
    expect(detectCompression(packed)).toBe(kind === "none" ? "none" : kind);
    expect((await through([packed], await decompressor(kind))).equals(sample)).toBe(true);
    const { stream, compression } = await decompressed(Readable.from([packed]));
    expect(compression).toBe(kind);
    expect(Buffer.concat(await stream.toArray()).equals(sample)).toBe(true);
  });

  it("zstd agrees with the zstd tool both ways, with several frames and a skippable frame", async () => {
    const dir = await mkdtemp(join(tmpdir(), "regcli-zstd-"));
    await writeFile(join(dir, "ours.zst"), await through(chunks, await compressor("zstd")));
    await exec("zstd", ["-d", "-q", join(dir, "ours.zst"), "-o", join(dir, "ours")]);
    expect((await readFile(join(dir, "ours"))).equals(sample)).toBe(true);
    await writeFile(join(dir, "sample"), sample);
    await exec("zstd", ["-q", "-19", join(dir, "sample"), "-o", join(dir, "tool.zst")]);
    const tool = await readFile(join(dir, "tool.zst"));
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    const out = await through([tool.subarray(0, 1000), tool.subarray(1000), skippable, tool], await decompressor("zstd"));
    expect(out.equals(Buffer.concat([sample, sample]))).toBe(true);
  });

  it("streams run side by side without mixing (each its own libzstd instance), many in one process", async () => {
    const input = (i: number) => chunks.map((c) => Buffer.concat([c, Buffer.from([i])]));
    const outputs = await Promise.all(Array.from({ length: 8 }, async (_, i) => through(input(i), await compressor("zstd"))));
    const back = await Promise.all(outputs.map(async (packed) => through([packed], await decompressor("zstd"))));
    for (const [i, data] of back.entries()) expect(data.equals(Buffer.concat(input(i)))).toBe(true);
    for (let i = 0; i < 100; i++) await through([Buffer.from("x")], await compressor("zstd"));
  });

  it("a zstd level beyond the 16 MiB heap is refused as unsupported (exit 7), not a crash", async () => {
    expect(await through([sample], await compressor("zstd", 5)).then((b) => detectCompression(b))).toBe("zstd");
    const err = await compressor("zstd", 19).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegcliError);
    expect((err as RegcliError).exitCode).toBe(7);
  });

  it("corrupt or cut-short zstd fails the stream with Z_DATA_ERROR", async () => {
    const garbage = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(4096, "not zstd at all ")]);
    const packed = await through(chunks, await compressor("zstd"));
    for (const bad of [garbage, packed.subarray(0, packed.length - 100)]) {
      const err = await through([bad], await decompressor("zstd")).catch((e: NodeJS.ErrnoException) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as NodeJS.ErrnoException).code).toBe("Z_DATA_ERROR");
    }
  });

  it("decompresses a frame whose window is larger than the compressor's heap (zstd --long=27, as podman's zstd:chunked declares 32 MiB)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "regcli-zstd-"));
    await writeFile(join(dir, "sample"), sample);
    await exec("sh", ["-c", `cat "$1" | zstd -q --long=27 -c > "$1.zst"`, "sh", join(dir, "sample")]);
    expect((await through([await readFile(join(dir, "sample.zst"))], await decompressor("zstd"))).equals(sample)).toBe(true);
  });

  describe("destroying the decompressed stream destroys its source (a reader that stops ends the read)", () => {
    // Large enough that neither the file read nor the download is done when the reader stops.
    const layer = gzipSync(randomBytes(8 * 1024 * 1024), { level: 1 });
    /** Take a little of the decompressed stream, then destroy it, as a failed tar or a full disk does. */
    const readSomeThenDestroy = async (stream: Readable) => {
      for await (const _ of stream) break;
    };
    const closed = (stream: Readable) => Promise.race([new Promise<boolean>((resolve) => stream.once("close", () => resolve(true))), sleep(2000).then(() => false)]);

    it("a file: its stream is destroyed and its descriptor closed", async () => {
      const dir = await mkdtemp(join(tmpdir(), "regcli-decompressed-"));
      await writeFile(join(dir, "layer.tar.gz"), layer);
      const raw = createReadStream(join(dir, "layer.tar.gz"), { highWaterMark: 64 * 1024 });
      const { stream, compression } = await decompressed(raw);
      expect(compression).toBe("gzip");
      await readSomeThenDestroy(stream);
      expect(await closed(raw)).toBe(true);
      expect(raw.bytesRead).toBeLessThan(layer.length);
      expect((raw as unknown as { fd: number | null }).fd).toBeNull(); // fs.ReadStream's descriptor, closed
    });

    it("a download: the request is aborted", async () => {
      let served: Promise<boolean> | undefined;
      const server = createServer((_req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(layer.length) });
        served = new Promise((resolve) => res.once("close", () => resolve(res.writableFinished)));
        Readable.from([layer.subarray(0, layer.length / 2), layer.subarray(layer.length / 2)]).pipe(res);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const { body } = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/layer`);
        const { stream } = await decompressed(body);
        await readSomeThenDestroy(stream);
        expect(await closed(body)).toBe(true);
        expect(await served).toBe(false); // the server saw the download cut off, not sent to its end
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  it("media types: zstd only under OCI's; Docker's for gzip in a Docker image", () => {
    expect(layerMediaType("zstd", true)).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect(layerMediaType("gzip", true)).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
    expect(layerMediaType("gzip")).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    expect(layerMediaType("none")).toBe("application/vnd.oci.image.layer.v1.tar");
  });
});
