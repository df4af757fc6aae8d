// Prints the plain closing line "N passed, N failed, N skipped" that CI reads, after vitest's own summary.
import { rmSync } from "node:fs";
import type { Reporter, TestModule } from "vitest/node";
import { readTallies, TALLY_DIR_ENV } from "./helpers/tally.js";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      if (mod.state() === "failed" && mod.errors().length > 0) failed++;
    }
    const dir = process.env[TALLY_DIR_ENV];
    if (dir) {
      const counts = readTallies(dir);
      rmSync(dir, { recursive: true, force: true });
      const lines = Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `  ${k}: ${v}`);
      if (lines.length) process.stdout.write(`\nSuite counters (docs/reliability.md):\n${lines.join("\n")}\n`);
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
