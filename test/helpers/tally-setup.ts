// A vitest setup file: after each test file, its suite counters are written out (see tally.ts) and its temporary
// directories removed. Registered before the file's own hooks, so these run after them (hooks run as a stack).
import { afterAll } from "vitest";
import { removeTempDirs } from "./cli.js";
import { flushTally } from "./tally.js";

afterAll(() => {
  flushTally();
  removeTempDirs();
});
