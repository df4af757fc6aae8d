import { Option, type Command } from "commander";
import { parseLocation, registryOf } from "../../locations/parse.js";
import type { ReferrerNode } from "../../operations/referrers.js";
import { withContext } from "../context.js";
import { humanSize, note, printJson, printLine, table } from "../output.js";

const load = async () => ({ ...(await import("../../operations/referrers.js")) });

function annotationsText(d: ReferrerNode): string {
  return Object.entries(d.annotations ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function treeLines(nodes: ReferrerNode[], indent: string): string[] {
  return nodes.flatMap((d, i) => {
    const last = i === nodes.length - 1;
    const line = `${indent}${last ? "└── " : "├── "}${d.artifactType ?? d.mediaType} ${d.digest} ${humanSize(d.size)}${d.annotations ? ` ${annotationsText(d)}` : ""}`;
    return [line, ...treeLines(d.referrers ?? [], `${indent}${last ? "    " : "│   "}`)];
  });
}

export function register(program: Command): void {
  program
    .command("referrers")
    .description("list the referrers of an image (OCI 1.1 subject: signatures, SBOMs, attestations), from the registry's referrers API or its sha256-<hex> tag")
    .argument("<image>", "image: a registry reference, store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--artifact-type <type>", "only referrers of this artifact type")
    .addOption(new Option("--format <format>", "text, json, or tree (recursive: the referrers of each referrer too)").choices(["text", "json", "tree"]).default("text"))
    .addHelpText(
      "after",
      "\nExamples:\n  regcli referrers localhost:5000/app:1.0\n  regcli referrers localhost:5000/app:1.0 --artifact-type application/spdx+json\n  regcli referrers localhost:5000/app@sha256:... --format tree   # signatures of the SBOM too",
    )
    .action(async (text: string, opts: { artifactType?: string; format: "text" | "json" | "tree" }, cmd: Command) => {
      const { listReferrers } = await load();
      const spec = parseLocation(text);
      const result = await withContext(cmd, registryOf(spec), (ctx) => listReferrers(ctx, spec, { artifactType: opts.artifactType, recursive: opts.format === "tree" }));
      if (opts.format === "json") printJson(result);
      else if (opts.format === "tree") {
        printLine(`${result.reference}@${result.subject}`);
        for (const line of treeLines(result.referrers, "")) printLine(line);
      } else if (result.referrers.length > 0) {
        printLine(table([["ARTIFACT TYPE", "DIGEST", "SIZE", "ANNOTATIONS"], ...result.referrers.map((d) => [d.artifactType ?? "", d.digest, humanSize(d.size), annotationsText(d)])]).trimEnd());
      } else note(`no referrers of ${result.reference}@${result.subject}`);
    });
}
