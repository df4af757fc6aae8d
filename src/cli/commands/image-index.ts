import { Option, type Command } from "commander";
import { parseKeyValues } from "../../oci/mutate.js";
import { DEFAULT_JOBS } from "../../operations/defaults.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { collect, parseJobs, withContext } from "../context.js";
import { err, note, parseFormat, plural, printJson, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/image-index.js")), ...(await import("../../operations/artifact.js")), ...(await import("../progress.js")) });

type IndexResult = Awaited<ReturnType<Awaited<ReturnType<typeof load>>["createIndex"]>>;

interface IndexFlags {
  annotation?: string[];
  mediaType?: "oci" | "docker";
  jobs: string;
  format: string;
}

const TARGET = "where the index is written: a registry reference, oci:DIR[:TAG], store:NAME[:TAG], docker-archive:FILE[:NAME] or oci-archive:FILE[:TAG]";

function common(command: Command): Command {
  return command
    .option("--annotation <key=value>", "an annotation of the index (repeatable)", collect)
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text or json (the written index on stdout)").choices(["text", "json"]).default("text"));
}

async function run(cmd: Command, text: string, opts: IndexFlags, action: "create" | "add" | "rm", args: string[]): Promise<void> {
  const { createIndex, addToIndex, removeFromIndex, progressFor, COPY_VERBS, blobCounts } = await load();
  const format = parseFormat(opts.format);
  const jobs = parseJobs(opts.jobs);
  const annotations = opts.annotation ? Object.fromEntries(parseKeyValues(opts.annotation, "--annotation")) : undefined;
  const target = parseLocation(text);
  const quiet = cmd.optsWithGlobals().quiet === true;
  const progress = progressFor(cmd, COPY_VERBS, `Resolving ${args.join(", ")}`);
  let result: IndexResult;
  try {
    result = await withContext(cmd, registryOf(target), (ctx) => {
      const options = { annotations, mediaType: opts.mediaType, jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress };
      if (action === "create") return createIndex(ctx, target, args, options);
      if (action === "add") return addToIndex(ctx, target, args, options);
      return removeFromIndex(ctx, target, args, options);
    });
  } finally {
    progress.stop();
  }
  if (format === "json") printJson(result);
  else printLine(result.digest);
  if (!quiet) {
    for (const r of result.replaced) note(`Replaced the ${r.platform} image ${r.from} with ${r.to}`);
    for (const r of result.removed) note(`Removed ${r.platform ?? "the child"} ${r.digest}`);
    if (result.previous) note(`The previous index stays reachable by digest: ${result.previous}`);
  }
  const platforms = result.manifests.map((m) => m.platform ?? m.digest).join(", ");
  summary(quiet, `${err.green("Wrote")} the index ${result.destination} (${plural(result.manifests.length, "image")}: ${platforms}): ${blobCounts(result.stats)}`, {
    destination: result.destination,
    digest: result.digest,
    ...result.stats,
  });
}

export function register(program: Command): void {
  const index = program.command("index").description("make or edit a multi-platform image index from images on any location");
  common(
    index
      .command("create")
      .description("write a new index of these images (an index given adds each of its children), each child's platform read from its config; the images are copied to the target")
      .argument("<target>", TARGET)
      .argument("<image...>", "images: a local image, a registry reference, or oci:/docker-archive:/oci-archive:/store:"),
  )
    .addOption(new Option("--media-type <type>", "oci (an OCI image index) or docker (a Docker manifest list: every image must be a Docker manifest)").choices(["oci", "docker"]).default("oci"))
    .addHelpText("after", "\nExamples:\n  regcli index create localhost:5000/app:1.0 localhost:5000/app:1.0-amd64 localhost:5000/app:1.0-arm64\n  regcli index create oci:./layout:1.0 oci:./amd64 oci:./arm64 --annotation org.opencontainers.image.version=1.0")
    .action((text: string, images: string[], opts: IndexFlags, cmd: Command) => run(cmd, text, opts, "create", images));
  common(
    index
      .command("add")
      .description("add images to the index at the target (an index given adds each of its children); an image replaces the child of its platform")
      .argument("<target>", TARGET)
      .argument("<image...>", "images: a local image, a registry reference, or oci:/docker-archive:/oci-archive:/store:"),
  )
    .addHelpText("after", "\nExample:\n  regcli index add localhost:5000/app:1.0 localhost:5000/app:1.0-riscv64")
    .action((text: string, images: string[], opts: IndexFlags, cmd: Command) => run(cmd, text, opts, "add", images));
  common(
    index
      .command("rm")
      .description("take children out of the index at the target, by platform (os/arch[/variant]: every child for it) or digest; an index is never left empty")
      .argument("<target>", TARGET)
      .argument("<platform|digest...>", "linux/arm64, linux/arm/v7, sha256:..."),
  )
    .addHelpText("after", "\nExample:\n  regcli index rm localhost:5000/app:1.0 linux/s390x")
    .action((text: string, selectors: string[], opts: IndexFlags, cmd: Command) => run(cmd, text, opts, "rm", selectors));
}
