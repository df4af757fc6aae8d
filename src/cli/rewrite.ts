import { Option, type Command } from "commander";
import { RegcliError } from "../errors.js";
import { parseLocation, registryOf, type LocationSpec } from "../locations/parse.js";
import { parsePlatforms, type Platform } from "../oci/index.js";
import { parseKeyValues } from "../oci/mutate.js";
import { DEFAULT_JOBS } from "../operations/defaults.js";
import type { CopyEvent } from "../operations/copy.js";
import type { RewriteResult } from "../operations/rewrite.js";
import type { RegistryContext } from "../registry/context.js";
import { collect, parseJobs, withContext } from "./context.js";
import { err, note, parseFormat, plural, printJson, printLine, summary } from "./output.js";

/** The flags of every command that writes a new image made from another (append, mutate, flatten, rebase). */
export interface RewriteFlags {
  tag?: string;
  platform?: string;
  annotation?: string[];
  jobs: string;
  format: string;
}

/** What those flags give the operation. */
export interface RewriteRun {
  annotations: Record<string, string>;
  platforms?: Platform[];
  jobs: number;
  onEvent: (event: CopyEvent) => void;
  byteProgress: boolean;
}

/** Where a command that makes a new image writes it: -t, else back under the source's own tag (said on stderr). */
export function targetOf(image: string, tag: string | undefined, quiet: boolean): string {
  if (tag !== undefined) return tag;
  const spec = parseLocation(image);
  if (spec.kind === "registry" && !spec.ref.tag) throw new RegcliError("usage", `${image} names no tag to write the new image back to`, { hint: "give the target with -t" });
  if (!quiet) note(`No -t given: the new image replaces ${image}`);
  return image;
}

/** -t, --platform, (--annotation), -j and --format, worded for `what` ("IMAGE", "BASE") and `verb` ("change"). */
export function rewriteOptions(command: Command, what: string, verb: string, annotation = true): Command {
  command
    .option("-t, --tag <target>", `where to write the new image (any location); default: back under ${what}'s own tag`)
    .option("--platform <os/arch,...>", `of an index: the platforms to ${verb} (default all; the others are kept as they are)`);
  if (annotation) command.option("--annotation <key=value>", "a manifest annotation, on the index of a multi-platform image (repeatable)", collect);
  return command
    .option("-j, --jobs <n>", "concurrent blob transfers", String(DEFAULT_JOBS))
    .addOption(new Option("--format <format>", "text (the new digest) or json").choices(["text", "json"]).default("text"));
}

/**
 * The common run of those commands: parse the shared flags, show progress, call `operation` from `image` to the
 * target, print the new digest (or the whole result as JSON) and `done`'s summary line.
 */
export async function runRewrite<R extends RewriteResult>(
  cmd: Command,
  image: string,
  opts: RewriteFlags,
  waiting: string,
  operation: (ctx: RegistryContext, source: LocationSpec, target: LocationSpec, run: RewriteRun) => Promise<R>,
  done: (result: R) => { verb: string; what?: string; fields?: Record<string, unknown> },
  push = false,
): Promise<void> {
  const { progressFor, blobCounts, COPY_VERBS, PUSH_VERBS } = await import("./progress.js");
  const format = parseFormat(opts.format);
  const quiet = cmd.optsWithGlobals().quiet === true;
  const annotations = Object.fromEntries(parseKeyValues(opts.annotation, "--annotation"));
  const selection = opts.platform ? parsePlatforms(opts.platform) : "all";
  const jobs = parseJobs(opts.jobs);
  const source = parseLocation(image);
  const target = parseLocation(targetOf(image, opts.tag, quiet));
  const progress = progressFor(cmd, push ? PUSH_VERBS : COPY_VERBS, waiting);
  try {
    const run: RewriteRun = { annotations, platforms: selection === "all" ? undefined : selection, jobs, onEvent: progress.onEvent, byteProgress: progress.byteProgress };
    const result = await withContext(cmd, registryOf(target), (ctx) => operation(ctx, source, target, run));
    progress.stop();
    if (format === "json") printJson(result);
    else printLine(result.digest);
    const { verb, what, fields } = done(result);
    const images = plural(result.images.length, "image");
    summary(quiet, `${err.green(verb)} ${what ? `${what} of ` : ""}${result.source} -> ${result.destination} (${images}): ${blobCounts(result.stats)}`, {
      source: result.source,
      destination: result.destination,
      digest: result.digest,
      images: result.images.length,
      ...fields,
      ...result.stats,
    });
  } finally {
    progress.stop();
  }
}
