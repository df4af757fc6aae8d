import type { Command } from "commander";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { withoutDockerTransport, type LocationSpec } from "../../locations/parse.js";
import { parseReference } from "../../reference/index.js";
import type { LayerCompression } from "../../oci/media-types.js";
import { addReferrerOptions, compressChoice, compressOption, parseJobs, referrerChoice, withContext } from "../context.js";
import { err, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../locations/parse.js")), ...(await import("../../operations/pull.js")), ...(await import("../progress.js")) });


export function register(program: Command): void {
  const command = program
    .command("push")
    .description("push a local image to its registry, or push an OCI layout or archive (docker-archive, oci-archive, gzipped or not) to a reference")
    .argument("<image-or-source>", "a name in the local store, or a source location when a target follows")
    .argument("[target]", "registry reference to push the source to")
    .option("-j, --jobs <n>", "concurrent blob uploads", String(DEFAULT_JOBS))
    .option("--preserve-digests", "push the uncompressed layers of a legacy docker-archive as they are (default: gzip them, like docker push)")
    .addOption(compressOption())
    .addHelpText("after", "\nExamples:\n  regcli push localhost:5000/firstapp\n  regcli push oci:./layout:1.0 localhost:5000/app:1.0\n  regcli push busybox.tar localhost:5000/firstapp\n  regcli push --referrers localhost:5000/app:1.0     # with the signatures and SBOMs pulled along")
    .action(async (first: string, second: string | undefined, opts: { jobs: string; preserveDigests?: boolean; compress?: LayerCompression; referrers?: boolean; referrersArtifactType?: string[] }, cmd: Command) => {
      const { parseSourcePath, push, pushSourceError, progressFor, blobCounts, PUSH_VERBS } = await load();
      const jobs = parseJobs(opts.jobs);
      const compress = compressChoice(opts);
      const target = parseReference(withoutDockerTransport(second ?? first));
      let from: { kind: "store" } | { kind: "location"; spec: LocationSpec } = { kind: "store" };
      if (second) {
        const spec = parseSourcePath(first);
        if (!spec) throw await pushSourceError(first, second);
        from = { kind: "location", spec };
      }
      const quiet = cmd.optsWithGlobals().quiet === true;
      const progress = progressFor(cmd, PUSH_VERBS, `Preparing ${target.full}`);
      try {
        const result = await withContext(cmd, target.registry, (ctx) => push(ctx, target, from, { jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress, preserveDigests: opts.preserveDigests, compress, referrers: referrerChoice(opts) }));
        progress.stop();
        printLine(result.digest);
        const line = result.skipped ? `${err.green("Up to date:")} ${target.full} already has this image` : `${err.green("Pushed")} ${target.full}: ${blobCounts(result.stats)}`;
        summary(quiet, line, { reference: target.full, digest: result.digest, skipped: result.skipped, ...result.stats });
      } finally {
        progress.stop();
      }
    });
  addReferrerOptions(command);
}
