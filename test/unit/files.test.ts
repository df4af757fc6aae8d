// Local file helpers (src/util/files.ts) where the kernel's behaviour cannot be had on demand: short writes.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { writeFully } from "../../src/util/files.js";

/** A file whose every write takes at most `most` bytes (as a write on a nearly full file system may), in memory. */
function shortWritingFile(size: number, most: number) {
  const data = Buffer.alloc(size);
  let calls = 0;
  return {
    data,
    calls: () => calls,
    async writev(buffers: Buffer[], position: number) {
      calls++;
      let at = position;
      let taken = 0;
      for (const b of buffers) {
        const n = Math.min(b.length, most - taken);
        b.copy(data, at, 0, n);
        at += n;
        taken += n;
        if (taken === most) break;
      }
      return { bytesWritten: taken };
    },
  };
}

describe("writeFully", () => {
  it("writes every byte, at the right offsets, when each write takes fewer bytes than given", async () => {
    const parts = [randomBytes(1000), Buffer.alloc(0), randomBytes(3), randomBytes(70_000)];
    const whole = Buffer.concat(parts);
    for (const most of [1, 7, 999, 1000, 1001, 65_536, 1 << 20]) {
      const file = shortWritingFile(10 + whole.length, most);
      expect(await writeFully(file, parts, 10)).toBe(whole.length);
      expect(file.data.subarray(10).equals(whole)).toBe(true);
      expect(file.calls()).toBe(Math.ceil(whole.length / most));
    }
  });

  it("fails, not loops, when a write takes nothing; writes nothing for empty buffers", async () => {
    await expect(writeFully(shortWritingFile(10, 0), [Buffer.from("x")], 0)).rejects.toMatchObject({ code: "EIO" });
    const file = shortWritingFile(10, 5);
    expect(await writeFully(file, [Buffer.alloc(0)], 0)).toBe(0);
    expect(file.calls()).toBe(0);
  });
});
