import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { parseOnePlatform } from "../../oci/index.js";
import { withContext } from "../context.js";
import { parseFormat, printJson, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function register(program: Command): void {
  program
    .command("digest")
    .description("print the digest of an image's manifest (from a registry: a HEAD request, no download)")
    .argument("<image>", "image: a registry reference (docker:// optional), store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--platform <os/arch[/variant]>", "the digest of this platform's image in a multi-platform index")
    .option("--full-ref", "print the fully-qualified name with the digest, NAME@sha256:..., for pinning")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli digest localhost:5000/app:1.0\n  regcli digest busybox --platform linux/arm64\n  regcli digest busybox --full-ref        # docker.io/library/busybox@sha256:...")
    .action(async (text: string, opts: { format: string; platform?: string; fullRef?: boolean }, cmd: Command) => {
      const { resolveDigest } = await load();
      const format = parseFormat(opts.format);
      const platform = opts.platform ? parseOnePlatform(opts.platform, "digest prints one image's digest") : undefined;
      const spec = parseLocation(text);
      if (opts.fullRef && spec.kind !== "registry") throw new RegcliError("usage", `--full-ref names a registry image; ${text} is a local location`, { hint: "drop --full-ref" });
      const head = await withContext(cmd, registryOf(spec), (ctx) => resolveDigest(ctx, spec, platform));
      const fullRef = spec.kind === "registry" ? `${spec.ref.name}@${head.digest}` : undefined;
      if (format === "json") printJson({ reference: head.reference, digest: head.digest, mediaType: head.mediaType, ...(opts.fullRef && { fullRef }) });
      else printLine(opts.fullRef ? fullRef! : head.digest);
    });
}
