import type { Command } from "commander";
import { rewriteOptions, runRewrite, type RewriteFlags } from "../rewrite.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => await import("../../operations/rebase.js");

export function register(program: Command): void {
  const command = program
    .command("rebase")
    .description("put an image's own layers on another base (crane rebase): the old base's layers must be the start of the image's; each platform of an index on the bases' image of that platform; on any location")
    .argument("<image>", "the image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--old-base <image>", "the base the image was built on (default: its org.opencontainers.image.base.name@base.digest annotations)")
    .option("--new-base <image>", "the base to put under it (default: its org.opencontainers.image.base.name annotation, as that tag is now)");
  rewriteOptions(command, "IMAGE", "rebase")
    .addHelpText("after", "\nExamples:\n  regcli rebase localhost:5000/app:1.0 --old-base localhost:5000/base:1 --new-base localhost:5000/base:2 -t localhost:5000/app:1.0-base2\n  regcli rebase localhost:5000/app:1.0 -t localhost:5000/app:1.0-rebased   # bases from the image's annotations")
    .action(async (image: string, opts: RewriteFlags & { oldBase?: string; newBase?: string }, cmd: Command) => {
      const { rebaseImage } = await load();
      await runRewrite(cmd, image, opts, `Rebasing ${image}`, (ctx, source, target, run) => rebaseImage(ctx, source, target, { oldBase: opts.oldBase, newBase: opts.newBase, ...run }), () => ({ verb: "Rebased" }));
    });
}
