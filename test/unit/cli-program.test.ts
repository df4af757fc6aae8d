// Which commands the CLI builds for a command line (src/cli/main.ts): only the one that runs, everything for help,
// completion and anything it cannot name. The output of each path is checked end to end in test/e2e.
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";

const names = (args?: string[]) => buildProgram(args).commands.map((c) => c.name());

describe("the program built for a command line", () => {
  const all = names();

  it("every command (and alias) builds alone, with the commands of its own module only", () => {
    for (const cmd of buildProgram().commands) {
      for (const name of [cmd.name(), ...cmd.aliases()]) {
        const built = names([name, "x"]);
        expect(built, name).toContain(cmd.name());
        if (name !== "help") expect(built.length, name).toBeLessThan(all.length);
      }
    }
  });

  it("global options before the command, with or without their values, still build one command", () => {
    for (const args of [["--plain-http", "digest", "x"], ["--timeout", "5", "-q", "digest", "x"], ["--timeout=5", "digest"], ["--ca-file", "digest", "ls", "x"]]) {
      const built = names(args);
      expect(built, args.join(" ")).toContain(args.includes("ls") ? "ls" : "digest");
      expect(built.length, args.join(" ")).toBeLessThan(all.length);
    }
  });

  it("help, unknown names and unknown options build every command", () => {
    for (const args of [[], ["-h"], ["digest", "x", "--help"], ["digest", "-h"], ["help", "digest"], ["nosuch"], ["--nosuch", "digest"], ["-qv", "digest"], ["--", "digest"]]) {
      expect(names(args), args.join(" ")).toEqual(all);
    }
  });
});
