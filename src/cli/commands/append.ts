import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import type { LayerCompression } from "../../oci/index.js";
import { createdTime, sourceDateEpoch } from "../../oci/mutate.js";
import { collect, compressOption } from "../context.js";
import { humanSize, plural } from "../output.js";
import { rewriteOptions, runRewrite, type RewriteFlags } from "../rewrite.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => await import("../../operations/append.js");

interface AppendFlags extends RewriteFlags {
  layer?: string[];
  compress: LayerCompression;
  keepOwner?: boolean;
  allowDevices?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command("append")
    .description("add layers (directories, tars or tar.gz files) on top of an image and write the new image, on any location; reproducible with SOURCE_DATE_EPOCH")
    .argument("<base>", "the base image: a registry reference, store:NAME, oci:DIR[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]")
    .option("--layer <path>", "a directory (packed: sorted, owned by 0:0, mtimes clamped to SOURCE_DATE_EPOCH), a tar, tar.gz or tar.zst; repeatable, in order", collect)
    .addOption(compressOption("compression of new layers (zstd: OCI bases only; readers need containerd 1.5+, podman 3+)", "gzip"))
    .option("--keep-owner", "a directory's files keep their uid/gid (default 0:0)")
    .option("--allow-devices", "(root only) pack a directory's device nodes and fifos instead of refusing them");
  rewriteOptions(command, "BASE", "append to", false)
    .addHelpText("after", "\nExamples:\n  regcli append localhost:5000/base:1 --layer ./out -t localhost:5000/app:1\n  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) regcli append gcr.io/distroless/static --layer ./dist -t oci:./app:1\n  regcli append store:app:1 --layer extra.tar.gz --platform linux/arm64 -t store:app:2")
    .action(async (base: string, opts: AppendFlags, cmd: Command) => {
      const { appendLayers } = await load();
      const layers = opts.layer;
      if (!layers?.length) throw new RegcliError("usage", "append needs at least one --layer PATH (a directory, a tar or a tar.gz)");
      if (opts.allowDevices && process.getuid?.() !== 0) throw new RegcliError("usage", "--allow-devices is for root only: device nodes in a layer are made by whoever unpacks it as root");
      const pack = { keepOwner: opts.keepOwner, allowDevices: opts.allowDevices, epoch: sourceDateEpoch() };
      const created = createdTime(undefined);
      await runRewrite(
        cmd,
        base,
        opts,
        `Packing ${plural(layers.length, "layer")}`,
        (ctx, source, target, run) => appendLayers(ctx, source, target, { layers, compress: opts.compress, pack, created, ...run }),
        (result) => ({
          verb: "Appended",
          what: `${plural(result.layers.length, "layer")} (${humanSize(result.layers.reduce((n, l) => n + l.size, 0))})`,
          fields: { layers: result.layers.length },
        }),
        true,
      );
    });
}
