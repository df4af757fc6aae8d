// The README and docs/ ship with the repository: every file they point to must be in it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/cli.js";

const documents = ["README.md", ...readdirSync(join(repoRoot, "docs")).filter((f) => f.endsWith(".md")).map((f) => join("docs", f))];

describe("documentation links", () => {
  it.each(documents)("%s points only to files inside the repository", (doc) => {
    const text = readFileSync(join(repoRoot, doc), "utf8");
    const targets = [
      ...[...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t)),
      // Paths written as code that leave the directory (`../x/y.md`).
      ...[...text.matchAll(/`(\.\.\/[^`\s]+)`/g)].map((m) => m[1]!),
    ];
    for (const target of targets) {
      const path = resolve(dirname(join(repoRoot, doc)), target);
      expect(relative(repoRoot, path).startsWith(".."), `${doc}: ${target} is outside the repository`).toBe(false);
      expect(existsSync(path), `${doc}: ${target} does not exist`).toBe(true);
    }
  });
});
