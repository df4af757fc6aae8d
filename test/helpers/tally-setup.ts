// A vitest setup file: after each test file, its suite counters are written out (see tally.ts).
import { afterAll } from "vitest";
import { flushTally } from "./tally.js";

afterAll(() => flushTally());
