// regcli is also a library: after a build, scripts import its typed functions from "regcli".
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/cli.js";

const run = promisify(execFile);

describe("library entry point", () => {
  it("import { parseReference } from 'regcli' works from the built package", async () => {
    const script = `
      import { parseReference, RegcliError, EXIT_CODES } from "regcli";
      const r = parseReference("busybox");
      let err;
      try { parseReference("UPPER/Case"); } catch (e) { err = e; }
      console.log(JSON.stringify({ full: r.full, familiar: r.familiar, registry: r.registry, repository: r.repository,
        tag: r.tag, errIsRegcli: err instanceof RegcliError, errKind: err.kind, usage: EXIT_CODES.usage }));`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot });
    expect(JSON.parse(stdout)).toEqual({
      full: "docker.io/library/busybox:latest",
      familiar: "busybox:latest",
      registry: "docker.io",
      repository: "library/busybox",
      tag: "latest",
      errIsRegcli: true,
      errKind: "usage",
      usage: 2,
    });
  });
});
