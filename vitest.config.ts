import { defineConfig } from "vitest/config";
import { tallyDirForRun } from "./test/helpers/tally.js";

// Set before the worker processes start, so that they inherit it.
tallyDirForRun();

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default", "./test/summary-reporter.ts"],
    setupFiles: ["./test/helpers/tally-setup.ts"],
  },
});
