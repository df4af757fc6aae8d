import type { Command } from "commander";
import ora from "ora";
import { RegcliError } from "../../errors.js";
import { registryDestination, registrySource } from "../../locations/registry.js";
import { copyAllTags, CopyEngine, DEFAULT_JOBS, type CopyEvent } from "../../operations/copy.js";
import { manifestReference } from "../../operations/inspect.js";
import { parsePlatform } from "../../oci/index.js";
import { parseReference } from "../../reference/index.js";
import { withContext } from "../context.js";
import { err, humanSize, note, parseFormat, printJson, printLine, shortDigest } from "../output.js";

function progressPrinter(quiet: boolean): { onEvent: (e: CopyEvent) => void; stop: () => void } {
  if (quiet) return { onEvent: () => undefined, stop: () => undefined };
  const spinner = process.stderr.isTTY && !process.env.NO_COLOR ? ora({ stream: process.stderr }).start("Copying") : undefined;
  let blobs = 0;
  let bytes = 0;
  const label: Record<string, string> = { uploaded: "Copied", mounted: "Mounted", exists: "Already exists" };
  return {
    onEvent(e) {
      if (e.type === "blob") {
        blobs++;
        if (e.outcome === "uploaded") bytes += e.size;
        const line = `${label[e.outcome]} ${shortDigest(e.digest)} (${humanSize(e.size)})`;
        if (spinner) spinner.text = `${blobs} blobs, ${humanSize(bytes)} copied: ${line}`;
        else note(line);
      } else if (e.type === "image" && e.skipped) {
        const line = `Up to date ${e.destination} ${shortDigest(e.digest)}`;
        if (spinner) spinner.text = line;
        else note(line);
      }
    },
    stop: () => spinner?.stop(),
  };
}

export function register(program: Command): void {
  program
    .command("copy")
    .alias("cp")
    .description("copy an image (or a whole repository with --all-tags) between registries, keeping digests")
    .argument("<source>", "source image reference")
    .argument("<destination>", "destination image reference (a repository with --all-tags)")
    .option("--platform <os/arch[/variant]>", "copy only this platform of a multi-platform index")
    .option("-a, --all-tags", "copy every tag of the source repository")
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .option("--format <format>", "text or json (the result on stdout)", "text")
    .addHelpText(
      "after",
      "\nExamples:\n  regcli copy docker.io/library/busybox localhost:5000/firstapp\n  regcli copy localhost:5000/app:1.0 registry.example.com/team/app:1.0 --platform linux/amd64\n  regcli copy --all-tags localhost:5000/app localhost:5001/mirror/app",
    )
    .action(async (from: string, to: string, opts: { platform?: string; allTags?: boolean; jobs: string; format: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      const jobs = Number(opts.jobs);
      if (!Number.isInteger(jobs) || jobs < 1) throw new RegcliError("usage", `--jobs must be a positive integer, got "${opts.jobs}"`);
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const quiet = cmd.optsWithGlobals().quiet === true;
      const src = parseReference(from, { defaultTag: !opts.allTags });
      const dst = parseReference(to, { defaultTag: !opts.allTags });
      if (opts.allTags && (src.tag || src.digest || dst.tag || dst.digest)) {
        throw new RegcliError("usage", "--all-tags copies a whole repository: give repositories without tag or digest");
      }
      const progress = progressPrinter(quiet);
      try {
        await withContext(cmd, dst.registry, async (ctx) => {
          const source = registrySource(ctx, src);
          const destination = registryDestination(ctx, dst);
          if (opts.allTags) {
            const result = await copyAllTags(source, destination, { platform, jobs, onEvent: progress.onEvent });
            progress.stop();
            if (format === "json") printJson({ source: src.name, destination: dst.name, ...result });
            else for (const t of result.tags) printLine(`${dst.name}:${t.tag} ${t.digest}`);
            if (!quiet) note(`${err.green("Copied")} ${result.tags.length} tags, ${result.stats.blobsUploaded} blobs (${humanSize(result.stats.bytesUploaded)}) uploaded, ${result.stats.blobsMounted} mounted, ${result.stats.blobsExisting} already present`);
            return;
          }
          const engine = new CopyEngine({ platform, jobs, onEvent: progress.onEvent });
          const result = await engine.copy(source, manifestReference(src), destination, manifestReference(dst));
          progress.stop();
          if (format === "json") printJson({ source: src.full, destination: dst.full, ...result });
          else printLine(result.digest);
          if (!quiet) note(`${err.green("Copied")} ${src.full} -> ${dst.full}: ${result.stats.blobsUploaded} blobs (${humanSize(result.stats.bytesUploaded)}) uploaded, ${result.stats.blobsMounted} mounted, ${result.stats.blobsExisting} already present`);
        });
      } finally {
        progress.stop();
      }
    });
}
