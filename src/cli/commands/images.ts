import type { Command } from "commander";
import { err, humanSize, note, parseFormat, printJson, printLine, shortDigest, summary, table } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../locations/archive-writer.js")), ...(await import("../../operations/images.js")) });


async function showImages(opts: { format: string }): Promise<void> {
  const { listImages } = await load();
  const format = parseFormat(opts.format);
  const images = await listImages();
  if (format === "json") {
    printJson(images);
    return;
  }
  const rows = [["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "SIZE", "CREATED"]];
  for (const i of images) rows.push([i.repository, i.tag, shortDigest(i.digest), i.platforms.join(",") || "-", humanSize(i.size), i.created ?? "-"]);
  printLine(table(rows));
}

export function register(program: Command): void {
  program
    .command("images")
    .description("list the images in the local store")
    .option("--format <format>", "text or json", "text")
    .addHelpText("after", "\nExample:\n  regcli images --format json")
    .action(showImages);

  const image = program.command("image").description("manage the local image store (ls, tag, rm, save, load, prune)");
  image
    .command("ls")
    .description("list the images in the local store")
    .option("--format <format>", "text or json", "text")
    .addHelpText("after", "\nExample:\n  regcli image ls")
    .action(showImages);
  image
    .command("tag")
    .description("give a local image another name, like docker tag")
    .argument("<source>", "a name in the local store")
    .argument("<target>", "the new name")
    .addHelpText("after", "\nExample:\n  regcli image tag busybox localhost:5000/firstapp")
    .action(async (source: string, target: string, _opts: unknown, cmd: Command) => {
      const { assertArchiveFlavour, listImages, loadImages, prune, removeImages, saveImages, tagImage } = await load();
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
    .argument("<image...>", "names in the local store")
    .addHelpText("after", "\nExample:\n  regcli image rm busybox localhost:5000/firstapp")
    .action(removeLocal);
  // docker rmi: a local removal, never a registry delete (that is `regcli delete`).
  program
    .command("rmi")
    .description("remove names from the local store, like docker rmi (same as image rm; never touches a registry)")
    .argument("<image...>", "names in the local store")
    .addHelpText("after", "\nExample:\n  regcli rmi busybox")
    .action(removeLocal);
  image
    .command("save")
    .description("write images from the local store into one archive (docker save format by default)")
    .argument("<image...>", "names in the local store")
    .requiredOption("-o, --output <file>", "archive to write (appears only when complete)")
    .option("--format <format>", "docker-archive or oci-archive", "docker-archive")
    .addHelpText("after", "\nExample:\n  regcli image save busybox alpine:3 -o images.tar")
    .action(async (names: string[], opts: { output: string; format: string }, cmd: Command) => {
      const { assertArchiveFlavour, listImages, loadImages, prune, removeImages, saveImages, tagImage } = await load();
      const r = await saveImages(names, opts.output, assertArchiveFlavour(opts.format));
      summary(cmd.optsWithGlobals().quiet === true, `${err.green("Saved")} ${r.names.join(", ")} to ${opts.output}`, { names: r.names, output: opts.output });
    });
  image
    .command("load")
    .description("load every image of a docker-archive or oci-archive (gzipped or not) into the local store")
    .requiredOption("-i, --input <file>", "archive to read")
    .addHelpText("after", "\nExample:\n  regcli image load -i images.tar")
    .action(async (opts: { input: string }) => {
      const { assertArchiveFlavour, listImages, loadImages, prune, removeImages, saveImages, tagImage } = await load();
      const r = await loadImages(opts.input);
      for (const l of r.loaded) printLine(`Loaded image: ${l.name} ${l.digest}`);
    });
  image
    .command("prune")
    .description("delete blobs that no image in the local store needs")
    .addHelpText("after", "\nExample:\n  regcli image prune")
    .action(async () => {
      const { assertArchiveFlavour, listImages, loadImages, prune, removeImages, saveImages, tagImage } = await load();
      const r = await prune();
      printLine(`Deleted ${r.removed} blobs, ${humanSize(r.bytes)}`);
    });
}
