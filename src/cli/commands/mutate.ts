import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import { createdTime, describeEdit, parseCommandLine, parseKeyValues, parsePort, type ConfigEdit } from "../../oci/mutate.js";
import { collect } from "../context.js";
import { rewriteOptions, runRewrite, type RewriteFlags } from "../rewrite.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => await import("../../operations/mutate.js");

interface MutateFlags extends RewriteFlags {
  label?: string[];
  env?: string[];
  entrypoint?: string;
  cmd?: string;
  user?: string;
  workdir?: string;
  expose?: string[];
  created?: string;
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

export function register(program: Command): void {
  const command = program
    .command("mutate")
    .description("change an image's config (labels, env, entrypoint, cmd, user, workdir, ports, created) or annotations and write it as a new image, on any location; history entries as Docker writes them")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--label <key=value>", "set a label (repeatable)", collect)
    .option("--env <KEY=VALUE>", "set an environment variable, replacing one of that name (repeatable)", collect)
    .option("--entrypoint <command>", "the entrypoint: a JSON array (exec form) or a command line (run by /bin/sh -c, as Docker); \"\" clears it. Without --cmd, clears the inherited cmd (as Docker)")
    .option("--cmd <command>", "the default arguments: a JSON array or a command line (run by /bin/sh -c); \"\" clears them")
    .option("--user <user>", "the user (name, uid, or uid:gid) the container runs as")
    .option("--workdir <dir>", "the working directory")
    .option("--expose <port[/proto]>", "expose a port, e.g. 8080 or 53/udp (repeatable)", collect)
    .option("--created <time>", "the created time: RFC 3339 or seconds since the epoch (default: SOURCE_DATE_EPOCH, else now)");
  rewriteOptions(command, "IMAGE", "change")
    .addHelpText("after", "\nExamples:\n  regcli mutate localhost:5000/app:1.0 -t localhost:5000/app:1.1 --env LOG=debug --label org.opencontainers.image.version=1.1\n  regcli mutate oci:./layout:1.0 --entrypoint '[\"/app\"]' --user 65532\n  SOURCE_DATE_EPOCH=0 regcli mutate store:app:1.0 -t store:app:repro --workdir /srv")
    .action(async (image: string, opts: MutateFlags, cmd: Command) => {
      const { mutateImage } = await load();
      const edit = configEdit(opts);
      if (!edit && !opts.annotation?.length) throw new RegcliError("usage", "nothing to change: give --label, --env, --entrypoint, --cmd, --user, --workdir, --expose, --annotation or --created");
      const created = createdTime(opts.created);
      await runRewrite(cmd, image, opts, `Resolving ${image}`, (ctx, source, target, run) => mutateImage(ctx, source, target, { edit, created, ...run }), () => ({ verb: "Mutated" }));
    });
}
