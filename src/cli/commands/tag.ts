import { Option, type Command } from "commander";
import { RegcliError } from "../../errors.js";
import { withoutDockerTransport } from "../../locations/parse.js";
import type { PruneOutcome, PrunePlan } from "../../operations/tag-prune.js";
import { parseReference, type Reference } from "../../reference/index.js";
import { askYesNo } from "../confirm.js";
import { collect, withContext } from "../context.js";
import { err, note, parseFormat, plural, printJson, printLine, shortDigest } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/tag.js")) });
const loadPrune = async () => ({ ...(await import("../../operations/tag-prune.js")) });


function planLines(plan: PrunePlan): string[] {
  const head = `${plan.repository}: ${plural(plan.tags, "tag")}, ${plural(plan.candidates.length, "candidate")}, ${plan.kept.length} kept, ${plan.remove.length} to remove`;
  const lines = plan.remove.map((r) => `remove ${r.tag}  ${shortDigest(r.digest)}${r.sharedWith.length ? `  (manifest also under ${r.sharedWith.join(", ")}: only the tag may go)` : ""}`);
  if (plan.undated.length) lines.push(`keep ${plan.undated.join(", ")}: no created time, not known to be older`);
  return [head, ...lines];
}

const outcomeLine = (o: PruneOutcome) => `${o.action} ${o.tag}  ${shortDigest(o.digest)}${o.reason ? `  (${o.reason})` : ""}`;

async function approvePrune(plan: PrunePlan, opts: { dryRun?: boolean; force?: boolean; json: boolean }): Promise<boolean> {
  if (opts.dryRun) return false;
  if (!opts.json) for (const line of planLines(plan)) note(line);
  if (opts.force) return true;
  const what = `${plural(plan.remove.length, "tag")} of ${plan.repository}`;
  const answer = await askYesNo(`Remove ${what}?`);
  if (answer === undefined) throw new RegcliError("usage", `tag prune would remove ${what}; nothing removed`, { hint: "pass --force to remove them, or --dry-run to see the plan" });
  if (!answer) throw new RegcliError("usage", `nothing removed: ${plan.repository} prune not confirmed`);
  return true;
}

function registerPrune(tagCommand: Command): void {
  tagCommand
    .command("prune")
    .description("remove the tags of a repository that retention filters do not keep")
    .argument("<repository>", "registry/repository (no tag)")
    .option("--keep-latest <n>", "keep the newest N candidates (version order when all are versions, else created time)")
    .option("--older-than <duration>", "remove only candidates whose image is older than this (90m, 12h, 30d, 2w)")
    .option("--include <regex>", "candidates: tags matching this anchored regex (repeatable; default every tag)", collect)
    .option("--exclude <regex>", "never touch tags matching this anchored regex (repeatable)", collect)
    .option("--dry-run", "print the plan and change nothing")
    .option("-f, --force", "do not ask")
    .addOption(new Option("--format <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText(
      "after",
      "\nCandidates are the tags matching --include (every tag without it) and no --exclude; other tags are never touched.\n" +
        "A candidate is kept when it is among the --keep-latest newest candidates or, with --older-than, when its image\n" +
        "is newer than that or has no created time; the other candidates are removed. A manifest that a staying tag (or a\n" +
        "staying index) points at is never deleted: where the registry cannot remove only a tag (Distribution 2.x), such a\n" +
        "tag is left and reported. Where it can (OCI 1.1, regcli serve), only tags are removed; registries reclaim the space\n" +
        "in their own GC. `regcli tag IMAGE prune` (prune second) still adds the tag \"prune\" to IMAGE.\n\n" +
        "Examples:\n  regcli tag prune localhost:5000/app --keep-latest 5 --dry-run\n  regcli tag prune localhost:5000/app --include 'dev-.*' --older-than 30d --force",
    )
    .action(async (text: string, opts: { keepLatest?: string; olderThan?: string; include?: string[]; exclude?: string[]; dryRun?: boolean; force?: boolean; format: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      const ref = parseReference(withoutDockerTransport(text), { defaultTag: false });
      if (ref.tag || ref.digest) throw new RegcliError("usage", `tag prune takes a repository, got ${text}`, { hint: `e.g. regcli tag prune ${ref.name} --keep-latest 5` });
      let keepLatest: number | undefined;
      if (opts.keepLatest !== undefined) {
        keepLatest = Number(opts.keepLatest);
        if (!/^\d+$/.test(opts.keepLatest.trim())) throw new RegcliError("usage", `invalid --keep-latest "${opts.keepLatest}"`, { hint: "give a whole number, 0 or more" });
      }
      const { pruneTags } = await loadPrune();
      const json = format === "json";
      const prune = { keepLatest, olderThan: opts.olderThan, include: opts.include, exclude: opts.exclude };
      const { plan, outcomes } = await withContext(cmd, ref.registry, (ctx) => pruneTags(ctx, ref, prune, (p) => approvePrune(p, { ...opts, json })));
      const failed = outcomes?.filter((o) => o.action === "failed") ?? [];
      if (json) printJson({ ...plan, dryRun: opts.dryRun === true, ...(outcomes ? { outcomes } : {}) });
      else if (!outcomes) for (const line of planLines(plan)) printLine(line);
      else for (const o of outcomes) printLine(outcomeLine(o));
      if (!cmd.optsWithGlobals().quiet && outcomes) {
        const count = (a: PruneOutcome["action"]) => outcomes.filter((o) => o.action === a).length;
        note(`${err.red("Pruned")} ${plan.repository}: ${count("untagged")} untagged, ${count("deleted")} deleted, ${count("left")} left (shared), ${failed.length} failed`);
      }
      if (failed.length) throw new RegcliError("registry", `${plural(failed.length, "tag")} of ${plan.repository} could not be removed`, { hint: failed[0]!.reason });
    });
}

/** The new tag: a bare tag, or a reference (docker tag's habit) that must name the source's repository and a tag. */
function tagOf(text: string, source: Reference): string {
  if (!/[/:@]/.test(text)) return text;
  const target = parseReference(withoutDockerTransport(text), { defaultTag: false });
  if (target.name !== source.name) {
    throw new RegcliError("usage", `tag adds a tag in ${source.name}; ${target.name} is another repository`, { hint: `copy it there instead: regcli copy ${source.full} ${target.full}` });
  }
  if (!target.tag || target.digest) throw new RegcliError("usage", `${text} names no tag to add`, { hint: `e.g. regcli tag ${source.full} stable` });
  return target.tag;
}

export function register(program: Command): void {
  const tagCommand = program
    .command("tag")
    .description("add a tag to an image in place (the same manifest under a new tag; no blob moves); `tag prune`: retention")
    .argument("<image>", "image reference")
    .argument("<tag>", "the new tag (or the same repository with it: REPO:TAG, as docker tag takes)")
    .addHelpText("after", "\nA first argument of exactly `prune` is the prune subcommand (see regcli tag prune --help); to retag the image\nprune, write it with its tag (prune:latest).\n\nExample:\n  regcli tag localhost:5000/app:1.0 stable")
    .action(async (text: string, newTag: string, _opts: unknown, cmd: Command) => {
      const { tag } = await load();
      const ref = parseReference(withoutDockerTransport(text));
      const quiet = cmd.optsWithGlobals().quiet;
      const result = await withContext(cmd, ref.registry, (ctx) => tag(ctx, ref, tagOf(newTag, ref)));
      if (!quiet) note(`${err.green("Tagged")} ${result.target.full}`);
      printLine(result.digest);
    });
  registerPrune(tagCommand);
}
