import { Option, type Command } from "commander";
import type { InspectResult } from "../../operations/inspect.js";
import { parsePlatforms } from "../../oci/index.js";
import { parseLocation, registryOf } from "../../locations/parse.js";
import { withContext } from "../context.js";
import { humanSize, parseFormat, printJson, printLine, table } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/inspect.js")) });


export function render(r: InspectResult): string[] {
  return [...renderTop(r), ...renderImage(r)];
}

/** What the reference names: its digest and media type, and an index's platforms. */
function renderTop(r: InspectResult): string[] {
  const lines = [`Reference:   ${r.reference}`, `Digest:      ${r.digest}`, `Media type:  ${r.mediaType}`];
  if (r.referrers !== undefined) lines.push(`Referrers:   ${r.referrers}${r.referrers > 0 ? ` (list them: regcli referrers ${r.reference})` : ""}`);
  if (r.platforms) {
    lines.push("Platforms:");
    lines.push(...table(r.platforms.map((p) => ["  " + p.platform, p.digest, humanSize(p.size)])).split("\n"));
  }
  return lines;
}

/** The image described (for an index: the chosen child, under a heading naming it). */
function renderImage(r: InspectResult): string[] {
  const lines: string[] = [];
  if (r.platforms) lines.push(`Image (${r.image.platform ?? r.image.artifactType}):`, `  Digest:    ${r.image.digest}`);
  const i = r.image;
  const pad = r.platforms ? "  " : "";
  const show = (label: string, value: string | undefined) => {
    if (value !== undefined && value !== "") lines.push(`${pad}${`${label} `.padEnd(pad ? 11 : 13)}${value}`);
  };
  if (!r.platforms) show("Platform:", i.platform);
  show("Artifact:", i.artifactType);
  if (i.artifactType) show("Config type:", i.configMediaType);
  show("Created:", i.created);
  show("Entrypoint:", i.entrypoint ? JSON.stringify(i.entrypoint) : undefined);
  show("Cmd:", i.cmd ? JSON.stringify(i.cmd) : undefined);
  show("WorkingDir:", i.workingDir);
  show("User:", i.user);
  show("Size:", `${humanSize(i.totalSize)} (${i.totalSize} bytes, compressed)`);
  if (i.env?.length) {
    lines.push(`${pad}Env:`);
    for (const e of i.env) lines.push(`${pad}  ${e}`);
  }
  const labels = Object.entries(i.labels);
  if (labels.length) {
    lines.push(`${pad}Labels:`);
    for (const [k, v] of labels) lines.push(`${pad}  ${k}=${v}`);
  }
  lines.push(`${pad}Layers (${i.layers.length}):`);
  lines.push(...table(i.layers.map((l) => [`${pad}  ${l.digest}`, humanSize(l.size), l.mediaType])).split("\n").filter(Boolean));
  return lines;
}

export function register(program: Command): void {
  program
    .command("inspect")
    .description("summarize an image: media type, digest, platforms, layers and sizes, created, entrypoint, labels")
    .argument("<image>", "image: a registry reference (docker:// optional), store:NAME, oci:DIR[:TAG|@DIGEST], docker-archive:FILE[:NAME], oci-archive:FILE[:TAG]")
    .option("--platform <os/arch,...|all>", "platform to describe from a multi-platform index (default: this machine's); several or all: each of those images (json: an array)")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText("after", "\nExamples:\n  regcli inspect localhost:5000/app:1.0\n  regcli inspect busybox --platform linux/arm64 --format json\n  regcli inspect busybox --platform all\n  regcli inspect oci:./layout:1.0\n  regcli inspect store:busybox")
    .action(async (text: string, opts: { format: string; platform?: string }, cmd: Command) => {
      const { inspect, inspectPlatforms } = await load();
      const format = parseFormat(opts.format);
      const spec = parseLocation(text);
      const selection = opts.platform ? parsePlatforms(opts.platform) : undefined;
      if (selection === "all" || (selection && selection.length > 1)) {
        const results = await withContext(cmd, registryOf(spec), (ctx) => inspectPlatforms(ctx, spec, selection));
        if (format === "json") printJson(results);
        else for (const line of [...renderTop(results[0]!), ...results.flatMap(renderImage)]) printLine(line);
        return;
      }
      const result = await withContext(cmd, registryOf(spec), (ctx) => inspect(ctx, spec, selection?.[0]));
      if (format === "json") printJson(result);
      else for (const line of render(result)) printLine(line);
    });
}
