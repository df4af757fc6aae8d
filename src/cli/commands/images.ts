import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { parsePlatform } from "../../oci/index.js";
import { collect, withContext } from "../context.js";
import { render } from "./inspect.js";
import { err, humanSize, note, parseFormat, printJson, printLine, refuseBinaryOnTerminal, shortDigest, summary, table } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../locations/archive-writer.js")), ...(await import("../../operations/images.js")), ...(await import("../../operations/inspect.js")) });


interface ImagesOptions {
  format: string;
  filter?: string[];
  /** false with --no-trunc (commander's negated option). */
  trunc?: boolean;
}

/** `--filter reference=PATTERN` values (the only filter key there is). */
function referencePatterns(filters: string[] = []): string[] {
  return filters.map((f) => {
    const m = /^reference=(.+)$/.exec(f);
    if (!m) throw new RegcliError("usage", `unsupported filter "${f}"`, { hint: "the one filter is reference=PATTERN, e.g. --filter 'reference=busy*'" });
    return m[1]!;
  });
}

async function showImages(reference: string | undefined, opts: ImagesOptions, cmd: Command): Promise<void> {
  const { listImages, matchesReference } = await load();
  const format = parseFormat(opts.format);
  // -q is also the program's --quiet, which commander takes wherever it stands: either way, ids only.
  const quiet = cmd.optsWithGlobals<{ quiet?: boolean }>().quiet === true;
  const patterns = [...(reference ? [reference] : []), ...referencePatterns(opts.filter)];
  const images = (await listImages()).filter((i) => !patterns.length || patterns.some((p) => matchesReference(i, p)));
  const id = (digest: string) => (opts.trunc === false ? digest : shortDigest(digest));
  if (quiet) {
    // As docker images -q: each image once (names sharing a digest are one image), the short id without its algorithm.
    for (const digest of new Set(images.map((i) => i.digest))) printLine(opts.trunc === false ? digest : shortDigest(digest).split(":")[1]!);
    return;
  }
  if (format === "json") {
    printJson(images);
    return;
  }
  const rows = [["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "SIZE", "CREATED"]];
  for (const i of images) rows.push([i.repository, i.tag, id(i.digest), i.artifactType ? `artifact: ${i.artifactType}` : i.platforms.join(",") || "-", humanSize(i.size), i.created ?? "-"]);
  printLine(table(rows));
}

/** What `images` and `image ls` take, as docker images does. */
function listingOptions(command: Command): Command {
  return command
    .argument("[reference]", "only images matching REPOSITORY[:TAG] (a glob: * and ? within a path component), as docker images does")
    .option("-q, --quiet", "print only image ids (short digests, each image once)")
    .option("--no-trunc", "print whole digests")
    .option("-f, --filter <reference=PATTERN>", "only images whose name matches PATTERN (repeatable: any of them)", collect)
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"));
}

export function register(program: Command): void {
  listingOptions(program.command("images").description("list the images in the local store"))
    .addHelpText("after", "\nExamples:\n  regcli images --format json\n  regcli images busybox\n  regcli images --filter 'reference=localhost:5000/*'\n  regcli images -q\n  regcli images --no-trunc")
    .action(showImages);

  const image = program.command("image").description("manage the local image store (ls, inspect, tag, rm, save, load, prune)");
  listingOptions(image.command("ls").description("list the images in the local store"))
    .addHelpText("after", "\nExamples:\n  regcli image ls\n  regcli image ls 'busy*' -q")
    .action(showImages);
  image
    .command("inspect")
    .description("summarize an image of the local store, like docker image inspect (any identifier regcli images shows)")
    .argument("<image>", "name, name@digest or (short) digest in the local store")
    .option("--platform <os/arch[/variant]>", "platform to describe from a multi-platform index")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExample:\n  regcli image inspect busybox --format json")
    .action(async (name: string, opts: { format: string; platform?: string }, cmd: Command) => {
      const { inspect } = await load();
      const format = parseFormat(opts.format);
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const result = await withContext(cmd, undefined, (ctx) => inspect(ctx, { kind: "store", name }, platform));
      if (format === "json") printJson(result);
      else for (const line of render(result)) printLine(line);
    });
  image
    .command("tag")
    .description("give a local image another name, like docker tag")
    .argument("<source>", "an image in the local store: any name, name@digest or (short) digest that regcli images shows")
    .argument("<target>", "the new name")
    .addHelpText("after", "\nExample:\n  regcli image tag busybox localhost:5000/firstapp")
    .action(async (source: string, target: string, _opts: unknown, cmd: Command) => {
      const { tagImage } = await load();
      const r = await tagImage(source, target);
      if (!cmd.optsWithGlobals().quiet) note(`${err.green("Tagged")} ${r.source} as ${r.target}`);
      printLine(r.digest);
    });
  const removeLocal = async (names: string[], _opts: unknown, cmd: Command) => {
    const { removeImages } = await load();
    const r = await removeImages(names);
    for (const name of r.removed) printLine(`Untagged: ${name}`);
    if (!cmd.optsWithGlobals().quiet) note(`Freed ${humanSize(r.freed)}`);
  };
  image
    .command("rm")
    .alias("remove")
    .description("remove names from the local store; blobs no image needs any more are deleted")
    .argument("<image...>", "images in the local store: names, name@digest or (short) digests as regcli images shows them")
    .addHelpText("after", "\nExample:\n  regcli image rm busybox localhost:5000/firstapp sha256:4b1c2f0e9a7d")
    .action(removeLocal);
  // docker rmi: a local removal, never a registry delete (that is `regcli delete`).
  program
    .command("rmi")
    .description("remove names from the local store, like docker rmi (same as image rm; never touches a registry)")
    .argument("<image...>", "images in the local store: names, name@digest or (short) digests as regcli images shows them")
    .addHelpText("after", "\nExample:\n  regcli rmi busybox")
    .action(removeLocal);
  image
    .command("save")
    .description("write images from the local store into one archive (docker save format by default)")
    .argument("<image...>", "images in the local store (names, name@digest or digests)")
    .option("-o, --output <file>", "archive to write (appears only when complete); default: standard output, unless it is a terminal")
    .addOption(new Option("--format <format>", "docker-archive or oci-archive").choices(["docker-archive", "oci-archive"]).default("docker-archive"))
    .addHelpText("after", "\nExamples:\n  regcli image save busybox alpine:3 -o images.tar\n  regcli image save busybox | gzip > busybox.tar.gz")
    .action(async (names: string[], opts: { output?: string; format: string }, cmd: Command) => {
      const { assertArchiveFlavour, saveImages } = await load();
      const flavour = assertArchiveFlavour(opts.format);
      if (!opts.output) refuseBinaryOnTerminal("an archive");
      const output = opts.output ?? "standard output";
      const r = await saveImages(names, opts.output ?? process.stdout, flavour);
      summary(cmd.optsWithGlobals().quiet === true, `${err.green("Saved")} ${r.names.join(", ")} to ${output}`, { names: r.names, output });
    });
  image
    .command("load")
    .description("load every image of a docker-archive or oci-archive (gzipped or not), or of an OCI layout directory, into the local store")
    .option("-i, --input <path>", "archive file, layout directory (or oci:DIR[:TAG]), or - for standard input (the default when it is not a terminal)")
    .addHelpText("after", "\nExamples:\n  regcli image load -i images.tar\n  regcli image load -i ./layout\n  gunzip -c busybox.tar.gz | regcli image load")
    .action(async (opts: { input?: string }) => {
      const { loadImages } = await load();
      if (!opts.input && process.stdin.isTTY) throw new RegcliError("usage", "nothing to load: give -i FILE, -i DIR, or pipe an archive to standard input");
      const input = opts.input ?? "-";
      const r = await loadImages(input === "-" ? process.stdin : input);
      for (const l of r.loaded) printLine(`Loaded image: ${l.name} ${l.digest}`);
    });
  image
    .command("prune")
    .description("delete blobs that no image in the local store needs")
    .addHelpText("after", "\nExample:\n  regcli image prune")
    .action(async () => {
      const { prune } = await load();
      const r = await prune();
      printLine(`Deleted ${r.removed} blobs, ${humanSize(r.bytes)}`);
    });
}
