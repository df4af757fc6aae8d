// Suite-wide counters (faults injected, bytes relayed, regcli runs and how they ended), summed across the test
// worker processes: each test file's counts go to a file of their own when it ends (test/helpers/tally-setup.ts); the summary reporter reads them all.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const TALLY_DIR_ENV = "REGCLI_TEST_TALLY_DIR";

const counts = new Map<string, number>();
let flushes = 0;

export function tally(key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** Write this process's counts so far to the run's directory and start again from zero (after each test file). */
export function flushTally(): void {
  const dir = process.env[TALLY_DIR_ENV];
  if (!dir || counts.size === 0) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${process.pid}-${flushes++}.json`), JSON.stringify(Object.fromEntries(counts)));
  counts.clear();
}

/** For vitest.config.ts: one directory per test run, inherited by the worker processes through the environment. */
export function tallyDirForRun(): string {
  return (process.env[TALLY_DIR_ENV] ??= join(tmpdir(), `regcli-test-tally-${process.pid}-${Date.now()}`));
}

/** Every worker's counts, summed. */
export function readTallies(dir: string): Record<string, number> {
  const sum: Record<string, number> = {};
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return sum;
  }
  for (const f of files) {
    const part = JSON.parse(readFileSync(join(dir, f), "utf8")) as Record<string, number>;
    for (const [k, v] of Object.entries(part)) sum[k] = (sum[k] ?? 0) + v;
  }
  return sum;
}
