import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parsePlatforms } from "../../oci/index.js";
import { createdTime, describeEdit, parseCommandLine, parseKeyValues, parsePort, type ConfigEdit } from "../../oci/mutate.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { collect, parseJobs, withContext } from "../context.js";
import { err, note, parseFormat, printJson, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/mutate.js")), ...(await import("../progress.js")) });

interface MutateFlags {
  tag?: string;
  label?: string[];
  env?: string[];
  entrypoint?: string;
  cmd?: string;
  user?: string;
  workdir?: string;
  expose?: string[];
  annotation?: string[];
  created?: string;
  platform?: string;
  jobs: string;
  format: string;
}

/** The config edit the flags ask for, or undefined when they leave the config alone. */
function configEdit(opts: MutateFlags): ConfigEdit | undefined {
  const edit: ConfigEdit = {
    ...(opts.label ? { labels: Object.fromEntries(parseKeyValues(opts.label, "--label")) } : {}),
    ...(opts.env ? { env: parseKeyValues(opts.env, "--env").map(([k, v]) => `${k}=${v}`) } : {}),
    ...(opts.entrypoint !== undefined ? { entrypoint: parseCommandLine(opts.entrypoint, "--entrypoint") } : {}),
    ...(opts.cmd !== undefined ? { cmd: parseCommandLine(opts.cmd, "--cmd") } : {}),
    ...(opts.user !== undefined ? { user: opts.user } : {}),
    ...(opts.workdir !== undefined ? { workdir: opts.workdir } : {}),
    ...(opts.expose ? { expose: opts.expose.map(parsePort) } : {}),
  };
  return describeEdit(edit) === "" && opts.created === undefined ? undefined : edit;
}

/** Where a command that makes a new image writes it: -t, else back under the source's own tag (said on stderr). */
export function targetOf(image: string, tag: string | undefined, quiet: boolean): string {
  if (tag !== undefined) return tag;
  const spec = parseLocation(image);
  if (spec.kind === "registry" && !spec.ref.tag) throw new RegcliError("usage", `${image} names no tag to write the new image back to`, { hint: "give the target with -t" });
  if (!quiet) note(`No -t given: the new image replaces ${image}`);
  return image;
}

export function register(program: Command): void {
  program
    .command("mutate")
    .description("change an image's config (labels, env, entrypoint, cmd, user, workdir, ports, created) or annotations and write it as a new image, on any location; history entries as Docker writes them")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("-t, --tag <target>", "where to write the new image (any location); default: back under IMAGE's own tag")
    .option("--label <key=value>", "set a label (repeatable)", collect)
    .option("--env <KEY=VALUE>", "set an environment variable, replacing one of that name (repeatable)", collect)
    .option("--entrypoint <command>", "the entrypoint: a JSON array (exec form) or a command line (run by /bin/sh -c, as Docker); \"\" clears it. Without --cmd, clears the inherited cmd (as Docker)")
    .option("--cmd <command>", "the default arguments: a JSON array or a command line (run by /bin/sh -c); \"\" clears them")
    .option("--user <user>", "the user (name, uid, or uid:gid) the container runs as")
    .option("--workdir <dir>", "the working directory")
    .option("--expose <port[/proto]>", "expose a port, e.g. 8080 or 53/udp (repeatable)", collect)
    .option("--annotation <key=value>", "a manifest annotation, on the index of a multi-platform image (repeatable)", collect)
    .option("--created <time>", "the created time: RFC 3339 or seconds since the epoch (default: SOURCE_DATE_EPOCH, else now)")
    .option("--platform <os/arch,...>", "of an index: the platforms to change (default all; the others are kept as they are)")
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text (the new digest) or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli mutate localhost:5000/app:1.0 -t localhost:5000/app:1.1 --env LOG=debug --label org.opencontainers.image.version=1.1\n  regcli mutate oci:./layout:1.0 --entrypoint '[\"/app\"]' --user 65532\n  SOURCE_DATE_EPOCH=0 regcli mutate store:app:1.0 -t store:app:repro --workdir /srv")
    .action(async (image: string, opts: MutateFlags, cmd: Command) => {
      const { mutateImage, progressFor, blobCounts, COPY_VERBS } = await load();
      const format = parseFormat(opts.format);
      const quiet = cmd.optsWithGlobals().quiet === true;
      const edit = configEdit(opts);
      const annotations = Object.fromEntries(parseKeyValues(opts.annotation, "--annotation"));
      if (!edit && !Object.keys(annotations).length) throw new RegcliError("usage", "nothing to change: give --label, --env, --entrypoint, --cmd, --user, --workdir, --expose, --annotation or --created");
      const created = createdTime(opts.created);
      const selection = opts.platform ? parsePlatforms(opts.platform) : "all";
      const jobs = parseJobs(opts.jobs);
      const source = parseLocation(image);
      const target = parseLocation(targetOf(image, opts.tag, quiet));
      const progress = progressFor(cmd, COPY_VERBS, `Resolving ${image}`);
      try {
        const result = await withContext(cmd, registryOf(target), (ctx) =>
          mutateImage(ctx, source, target, { edit, created, annotations, platforms: selection === "all" ? undefined : selection, jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress }),
        );
        progress.stop();
        if (format === "json") printJson(result);
        else printLine(result.digest);
        summary(quiet, `${err.green("Mutated")} ${result.source} -> ${result.destination} (${result.images.length} image${result.images.length === 1 ? "" : "s"}): ${blobCounts(result.stats)}`, { source: result.source, destination: result.destination, digest: result.digest, images: result.images.length, ...result.stats });
      } finally {
        progress.stop();
      }
    });
}
