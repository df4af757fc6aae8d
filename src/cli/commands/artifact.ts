import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { isDigest } from "../../oci/index.js";
import { parseKeyValues } from "../../oci/mutate.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { collect, withContext } from "../context.js";
import { err, humanSize, note, parseFormat, plural, printJson, printLine, summary } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/artifact.js")) });

interface PushFlags {
  artifactType?: string;
  annotation?: string[];
  subject?: string;
  config?: string;
  format: string;
}

const LOCATIONS = "a registry reference, oci:DIR[:TAG] or store:NAME[:TAG]";

async function pushCommand(text: string, fileArgs: string[], opts: PushFlags, cmd: Command, attach: boolean): Promise<void> {
  const { parseFileArgument, pushArtifact } = await load();
  const format = parseFormat(opts.format);
  const target = parseLocation(text);
  const files = fileArgs.map((f) => parseFileArgument(f));
  const config = opts.config ? parseFileArgument(opts.config) : undefined;
  if (opts.config && config!.path === opts.config) throw new RegcliError("usage", `--config ${opts.config}: give its media type, FILE:TYPE/SUBTYPE`);
  const subject = attach ? target : opts.subject === undefined ? undefined : isDigest(opts.subject) ? { digest: opts.subject } : parseLocation(opts.subject);
  const result = await withContext(cmd, registryOf(target), (ctx) =>
    pushArtifact(ctx, target, files, { artifactType: opts.artifactType, annotations: Object.fromEntries(parseKeyValues(opts.annotation, "--annotation")), config, subject, byDigest: attach }),
  );
  if (format === "json") printJson({ reference: result.destination, digest: result.digest, artifactType: result.manifest.artifactType, subject: result.manifest.subject?.digest });
  else printLine(result.digest);
  const size = result.manifest.layers.reduce((n, l) => n + l.size, 0);
  const line = `${err.green(attach ? "Attached" : "Pushed")} ${plural(files.length, "file")} (${humanSize(size)}) to ${result.destination}${result.manifest.subject ? `, a referrer of ${result.manifest.subject.digest}` : ""}`;
  summary(cmd.optsWithGlobals().quiet === true, line, { reference: result.destination, digest: result.digest });
}

function pushOptions(command: Command): Command {
  return command
    .option("--artifact-type <type>", "the artifact's type, e.g. application/spdx+json (default without --config: application/vnd.unknown.artifact.v1, as oras)")
    .option("--annotation <key=value>", "a manifest annotation (repeatable)", collect)
    .option("--config <file:mediatype>", "a config blob instead of the empty one ({})")
    .addOption(new Option("--format <format>", "text (the digest) or json").choices(["text", "json"]).default("text"));
}

export function register(program: Command): void {
  const artifact = program.command("artifact").description("push and pull OCI artifacts: files (SBOMs, signatures, charts, anything) stored as an OCI 1.1 manifest");
  pushOptions(
    artifact
      .command("push")
      .description("push files as one OCI artifact, each a layer named by its file name; prints the digest")
      .argument("<ref>", `where to push it: ${LOCATIONS}`)
      .argument("<file...>", "FILE[:MEDIATYPE] (default media type application/vnd.oci.image.layer.v1.tar, as oras)"),
  )
    .option("--subject <image>", "make it a referrer of this image (in the same repository, layout or store; a digest alone means there)")
    .addHelpText("after", "\nExamples:\n  regcli artifact push localhost:5000/app/sbom:1.0 sbom.spdx.json:application/spdx+json --artifact-type application/spdx+json\n  regcli artifact push localhost:5000/app:sbom sbom.json --subject localhost:5000/app:1.0\n  regcli artifact push oci:./layout:notes README.md --annotation org.opencontainers.image.description=notes")
    .action((ref: string, files: string[], opts: PushFlags, cmd: Command) => pushCommand(ref, files, opts, cmd, false));

  artifact
    .command("pull")
    .description("write an artifact's files into a directory, named by their title annotations, each verified; nothing is overwritten without --force")
    .argument("<ref>", `the artifact: ${LOCATIONS}, or oci-archive:/docker-archive:`)
    .option("-o, --output <dir>", "directory to write the files into (created if missing)", ".")
    .option("--force", "overwrite files that exist")
    .addOption(new Option("--format <format>", "text (the files written, one a line) or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli artifact pull localhost:5000/app/sbom:1.0 -o ./sbom\n  regcli artifact pull oci:./layout:notes --force")
    .action(async (text: string, opts: { output: string; force?: boolean; format: string }, cmd: Command) => {
      const { pullArtifact } = await load();
      const format = parseFormat(opts.format);
      const spec = parseLocation(text);
      const result = await withContext(cmd, registryOf(spec), (ctx) => pullArtifact(ctx, spec, opts.output, { force: opts.force }));
      if (result.skipped.length) {
        note(`Skipped ${plural(result.skipped.length, "layer")} without a file name (no org.opencontainers.image.title annotation): ${result.skipped.map((d) => d.digest).join(", ")}; to keep every blob: regcli copy ${text} oci:DIR`);
      }
      if (format === "json") printJson({ reference: result.source, digest: result.digest, files: result.files, skipped: result.skipped.map((d) => d.digest) });
      else for (const f of result.files) printLine(f.name);
      const size = result.files.reduce((n, f) => n + f.size, 0);
      summary(cmd.optsWithGlobals().quiet === true, `${err.green("Pulled")} ${plural(result.files.length, "file")} (${humanSize(size)}) of ${result.source} into ${opts.output}`, { reference: result.source, digest: result.digest, files: result.files.length });
    });

  pushOptions(
    program
      .command("attach")
      .description("attach files to an image as a referrer (an OCI artifact whose subject is the image), stored by digest in its repository, as oras attach")
      .argument("<image>", `the image: ${LOCATIONS}`)
      .argument("[file...]", "FILE[:MEDIATYPE]; none: an artifact of annotations only"),
  )
    .addHelpText("after", "\nExamples:\n  regcli attach localhost:5000/app:1.0 sbom.spdx.json:application/spdx+json --artifact-type application/spdx+json\n  regcli attach oci:./layout:1.0 --artifact-type application/vnd.example.review --annotation reviewed=yes")
    .action((image: string, files: string[], opts: PushFlags, cmd: Command) => {
      if (!opts.artifactType) throw new RegcliError("usage", "attach needs --artifact-type: it is how referrers are told apart", { hint: "e.g. --artifact-type application/spdx+json" });
      return pushCommand(image, files, opts, cmd, true);
    });
}
