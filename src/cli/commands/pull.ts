import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { copyPlatforms, parsePlatforms } from "../../oci/index.js";
import { parseLocation, registryOf, type LocationSpec } from "../../locations/parse.js";
import { addReferrerOptions, parseJobs, referrerChoice, withContext } from "../context.js";
import { err, humanSize, parseFormat, plural, printJson, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/pull.js")), ...(await import("../progress.js")) });


export function register(program: Command): void {
  const command = program
    .command("pull")
    .description("pull an image (from a registry, a layout or an archive) into the local store (or -o DIR: a standalone OCI layout), no daemon needed")
    .argument("<image>", "a registry reference (docker:// optional), oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--platform <os/arch,...|all>", "of a multi-platform index: one platform (default: this machine's) pulls that image alone; several, the index reduced to them (a new index: its digest changes); all, the whole index")
    .option("--all-platforms", "keep the whole index, every platform (a later push restores the same digest); same as --platform all")
    .option("-o, --output <path>", "write an OCI layout directory, or a docker-archive FILE.tar (docker save format), instead of the local store")
    .option("--preserve-digests", "write Docker manifests into OCI layouts/archives as they are (default: convert to OCI media types, like skopeo)")
    .option("-j, --jobs <n>", "concurrent blob downloads", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text or json (what is printed); docker-archive or oci-archive (what -o writes)").choices(["text", "json", "docker-archive", "oci-archive"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli pull busybox\n  regcli pull localhost:5000/app:1.0 --all-platforms\n  regcli pull localhost:5000/app:1.0 --platform linux/amd64,linux/arm64\n  regcli pull busybox -o ./busybox-layout\n  regcli pull busybox -o busybox.tar\n  regcli pull busybox -o busybox-oci.tar --format oci-archive\n  regcli pull localhost:5000/app:1.0 --referrers     # with its signatures and SBOMs")
    .action(async (text: string, opts: { platform?: string; allPlatforms?: boolean; output?: string; jobs: string; format: string; preserveDigests?: boolean; referrers?: boolean; referrersArtifactType?: string[] }, cmd: Command) => {
      const { pull, progressFor, PULL_VERBS } = await load();
      const archive = opts.format === "docker-archive" || opts.format === "oci-archive" ? opts.format : undefined;
      const format = archive ? "text" : parseFormat(opts.format);
      if (archive && !opts.output) throw new RegcliError("usage", `--format ${archive} writes a file: give it with -o FILE`);
      const output: LocationSpec | undefined = !opts.output
        ? undefined
        : archive || /\.tar(\.gz)?$|\.tgz$/.test(opts.output)
          ? { kind: "archive", flavour: archive ?? "docker-archive", file: opts.output, name: undefined }
          : { kind: "oci", dir: opts.output, tag: undefined };
      if (opts.platform && opts.allPlatforms) throw new RegcliError("usage", "--platform and --all-platforms exclude each other");
      const selection = opts.platform ? parsePlatforms(opts.platform) : opts.allPlatforms ? "all" : undefined;
      const jobs = parseJobs(opts.jobs);
      const spec = parseLocation(text);
      const quiet = cmd.optsWithGlobals().quiet === true;
      const progress = progressFor(cmd, PULL_VERBS, `Resolving ${spec.kind === "registry" ? spec.ref.full : text}`);
      try {
        const result = await withContext(cmd, registryOf(spec), (ctx) =>
          pull(ctx, spec, {
            ...(selection && copyPlatforms(selection)),
            allPlatforms: selection === "all",
            output,
            preserveDigests: opts.preserveDigests,
            referrers: referrerChoice(opts),
            jobs,
            onEvent: progress.onEvent,
            byteProgress: progress.byteProgress,
          }),
        );
        progress.stop();
        if (format === "json") printJson({ reference: result.source, name: result.name, digest: result.digest, mediaType: result.mediaType, stats: result.stats });
        else printLine(result.digest);
        const into = opts.output ? ` into ${opts.output}` : "";
        const { blobsDownloaded, bytesDownloaded, blobsExisting } = result.stats;
        const line = result.skipped
          ? `${err.green("Up to date:")} ${result.source}${into}`
          : `${err.green("Pulled")} ${result.source}${into}: ${plural(blobsDownloaded, "blob")} (${humanSize(bytesDownloaded)}) downloaded, ${blobsExisting} already present`;
        summary(quiet, line, { reference: result.source, name: result.name, digest: result.digest, skipped: result.skipped, ...result.stats });
      } finally {
        progress.stop();
      }
    });
  addReferrerOptions(command);
}
