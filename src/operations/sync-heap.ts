import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Heap growth (bytes) since the last full collection that triggers the next one. */
const GROWTH_BYTES = 4 * 1024 * 1024;
/** V8's default (Node 20): the young generation doubles when survivors add up to its size. */
const DEFAULT_SEMI_SPACE_GROWTH = 2;

export interface HeapPacer {
  /** Called as work settles (each image): collects when the heap has grown by GROWTH_BYTES since the last time. */
  check(): void;
  stop(): void;
}

/**
 * Keeps a long sync's memory flat. A sync allocates steadily (requests, responses, manifests) and keeps little
 * (about 10 MiB on the 500-repository bench), but V8 sizes its heap by how long a process has run: the young
 * generation doubles each time survivors add up to its size (16 to 32 MiB there), and garbage piles up in the old
 * generation to several times the live size before a full collection. Peak RSS then grew with the number of
 * repositories (85 MiB at 100, 110 MiB at 500) although the retained heap did not. The pacer keeps the young
 * generation at its initial size and collects fully whenever the heap has grown by 4 MiB since the last time
 * (a few milliseconds every few seconds; the sync waits on round trips, not on the CPU).
 */
export function heapPacer(): HeapPacer {
  const gc = collector();
  if (!gc) return { check() {}, stop() {} };
  setFlagsFromString("--semi-space-growth-factor=1");
  const used = () => getHeapStatistics().used_heap_size;
  let base = used();
  return {
    check() {
      if (used() < base + GROWTH_BYTES) return;
      gc();
      base = used();
    },
    stop() {
      setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_SEMI_SPACE_GROWTH}`);
    },
  };
}

/** V8's gc(): the global one under --expose-gc, else one taken from a fresh context with the flag set for that moment. */
function collector(): (() => void) | undefined {
  const global = (globalThis as { gc?: () => void }).gc;
  if (typeof global === "function") return global;
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}
