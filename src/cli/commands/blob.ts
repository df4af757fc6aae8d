import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { outputFileError } from "../../errors.js";
import { refuseBinaryOnTerminal } from "../output.js";
import { parseBlobLocation, registryOf } from "../../locations/parse.js";
import { withContext } from "../context.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/blob.js")) });


export function register(program: Command): void {
  program
    .command("blob")
    .description("stream one blob to stdout or a file, verified against its digest")
    .argument("<image@digest>", "a location and a blob digest: localhost:5000/app@sha256:..., oci:DIR@sha256:..., docker-archive:FILE@sha256:..., store:@sha256:...")
    .option("-o, --output <file>", "write to this file (complete only when verified) instead of stdout")
    .addHelpText("after", "\nExample:\n  regcli blob localhost:5000/app@sha256:4b1c... -o layer.tar.gz")
    .action(async (text: string, opts: { output?: string }, cmd: Command) => {
      const { openBlob } = await load();
      const { spec, digest } = parseBlobLocation(text);
      if (!opts.output) refuseBinaryOnTerminal("a blob");
      await withContext(cmd, registryOf(spec), async (ctx) => {
        const { stream, close } = await openBlob(ctx, spec, digest);
        try {
          if (!opts.output) {
            await pipeline(stream, process.stdout, { end: false });
            return;
          }
          // Written beside the target and renamed only once verified: a failed download never looks complete.
          const temp = `${opts.output}.regcli-${process.pid}.partial`;
          try {
            await pipeline(stream, createWriteStream(temp, { mode: 0o644 }));
            await rename(temp, opts.output);
          } catch (err) {
            await rm(temp, { force: true }).catch(() => undefined);
            throw outputFileError(err, opts.output) ?? err;
          }
        } finally {
          await close();
        }
      });
    });
}
