import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import type { DeletePlan } from "../../operations/tag.js";
import { withoutDockerTransport } from "../../locations/parse.js";
import { parseReference } from "../../reference/index.js";
import { askYesNo } from "../confirm.js";
import { withContext } from "../context.js";
import { err, note, plural, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/tag.js")) });

const MAX_TAGS_SHOWN = 10;

function tagList(tags: string[]): string {
  const shown = tags.slice(0, MAX_TAGS_SHOWN).join(", ");
  return tags.length > MAX_TAGS_SHOWN ? `${shown} and ${tags.length - MAX_TAGS_SHOWN} more` : shown;
}

/** The artifact types of some referrers, counted: "2 application/vnd.dev.cosign.artifact.sig.v1+json, 1 application/spdx+json". */
function referrerKinds(referrers: DeletePlan["referrers"]): string {
  const counts = new Map<string, number>();
  for (const d of referrers) counts.set(d.artifactType ?? d.mediaType, (counts.get(d.artifactType ?? d.mediaType) ?? 0) + 1);
  return [...counts].map(([type, n]) => `${n} ${type}`).join(", ");
}

/** What else goes with the manifest (other tags; its referrers when asked), or undefined when only the named tag does. */
function collateral(plan: DeletePlan, withReferrers: boolean): string | undefined {
  const named = plan.ref.digest ? undefined : plan.ref.tag;
  const others = plan.tags.filter((t) => t !== named);
  const manifest = `manifest ${plan.ref.name}@${plan.digest}`;
  const parts: string[] = [];
  if (plan.unknown) parts.push(`${plan.unknown}: other tags may point at ${manifest} and would go with it`);
  else if (others.length) parts.push(`${manifest} is ${named ? "also " : ""}tagged ${tagList(others)}: ${others.length === 1 ? "that tag goes" : `those ${others.length} tags go`} with it`);
  if (plan.parents.length) parts.push(`the ${plan.parents.length === 1 ? "index" : "indexes"} tagged ${tagList(plan.parents.map((p) => p.tag))} list${plan.parents.length === 1 ? "s" : ""} it as a child and would point at a missing manifest`);
  if (withReferrers && plan.referrers.length) parts.push(`${plural(plan.referrers.length, "referrer")} of ${manifest} go${plan.referrers.length === 1 ? "es" : ""} with it (${referrerKinds(plan.referrers)})`);
  return parts.length ? parts.join("; ") : undefined;
}

/** Ask on a terminal, refuse elsewhere without --force, when deleting takes more than the tag named. */
async function approve(plan: DeletePlan, force: boolean, withReferrers: boolean): Promise<void> {
  const what = collateral(plan, withReferrers);
  if (!what) return;
  if (force) return note(what);
  const untag = plan.ref.digest ? "" : `, or regcli untag ${plan.ref.full} to remove only that tag where the registry supports it`;
  const answer = await askYesNo(`${what}. Delete?`);
  if (answer === undefined) throw new RegcliError("usage", `${what}; nothing deleted`, { hint: `pass --force to delete anyway${untag}` });
  if (!answer) throw new RegcliError("usage", `nothing deleted: ${plan.ref.full} not confirmed`);
}

export function register(program: Command): void {
  program
    .command("delete")
    .description("delete an image's manifest from its registry, with every tag pointing at it (a tag is resolved to its digest)")
    .argument("<image>", "image reference")
    .option("-f, --force", "do not ask, even when other tags point at the manifest or referrers go with it")
    .option("--with-referrers", "also delete the manifests referring to it (signatures, SBOMs, attestations), recursively")
    .addHelpText(
      "after",
      "\nRegistries delete manifests by digest: every tag pointing at the manifest goes too. When other tags would go (or\n" +
        "a tagged index lists the manifest as a child and would break), regcli names them and asks (on a terminal) or\n" +
        "refuses without --force. `regcli untag IMAGE:TAG` removes only the tag where the registry supports it.\n" +
        "Referrers (signatures, SBOMs) remain unless --with-referrers is given. Registries reclaim blobs in their own GC.\n\nExamples:\n  regcli delete localhost:5000/app:old\n  regcli delete localhost:5000/app:old --with-referrers --force",
    )
    .action(async (text: string, opts: { force?: boolean; withReferrers?: boolean }, cmd: Command) => {
      const { deleteImage } = await load();
      const ref = parseReference(withoutDockerTransport(text));
      const quiet = cmd.optsWithGlobals().quiet;
      const withReferrers = opts.withReferrers === true;
      const plan = await withContext(cmd, ref.registry, (ctx) => deleteImage(ctx, ref, (p) => approve(p, opts.force === true, withReferrers), { withReferrers }));
      const referrers = withReferrers && plan.referrers.length ? `, ${plural(plan.referrers.length, "referrer")}` : "";
      if (!quiet) note(`${err.red("Deleted")} ${ref.name}@${plan.digest}${plan.tags.length ? ` (tags ${tagList(plan.tags)})` : ""}${referrers}`);
      if (!withReferrers && plan.referrers.length) {
        note(`${err.yellow("Warning:")} ${plural(plan.referrers.length, "referrer")} of ${ref.name}@${plan.digest} remain (${referrerKinds(plan.referrers)}): regcli delete --with-referrers deletes them too`);
      }
      if (plan.referrersUnknown) note(`${err.yellow("Warning:")} ${plan.referrersUnknown}; any remain`);
      for (const d of withReferrers ? plan.referrers : []) printLine(d.digest);
      printLine(plan.digest);
    });
  program
    .command("untag")
    .description("remove one tag from its registry and keep the manifest (OCI 1.1 delete by tag, where supported)")
    .argument("<image:tag>", "image reference with a tag")
    .addHelpText("after", "\nRegistries that can only delete manifests by digest (Distribution 2.x) refuse it; regcli says so.\n\nExample:\n  regcli untag localhost:5000/app:old")
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { untag } = await load();
      const ref = parseReference(withoutDockerTransport(text), { defaultTag: false });
      const result = await withContext(cmd, ref.registry, (ctx) => untag(ctx, ref));
      if (!cmd.optsWithGlobals().quiet) note(`${err.green("Untagged")} ${ref.full} (manifest ${result.digest} kept)`);
      printLine(result.digest);
    });
}
