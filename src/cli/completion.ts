import type { Argument, Command, Option } from "commander";

/**
 * Shell completion as cobra does it: the scripts `regcli completion SHELL` prints are small and call back
 * `regcli __complete WORD... CURRENT` on every TAB, so candidates always match this binary's command tree.
 * The answer is one candidate a line (`value<TAB>description`), then `:DIRECTIVE`.
 */

/** Directive bit: no candidates here means nothing to offer; the shell must not fall back to file names. */
export const NO_FILES = 4;

interface Candidate {
  value: string;
  description?: string;
}

const firstLine = (text: string | undefined) => text?.split("\n")[0];

function findOption(options: Option[], flag: string): Option | undefined {
  return options.find((o) => o.long === flag || o.short === flag);
}

function findCommand(cmd: Command, name: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

const subcommands = (cmd: Command): Candidate[] => cmd.createHelp().visibleCommands(cmd).map((c) => ({ value: c.name(), description: c.description() }));

/** An argument that names images of the local store, as its help says: offered the names `regcli images` shows. */
function storeNamePrefix(arg: Argument | undefined): string | undefined {
  const text = arg?.description ?? "";
  if (/local (store|image)/i.test(text)) return "";
  if (/store:NAME/.test(text)) return "store:";
  return undefined;
}

async function storeImageNames(): Promise<string[]> {
  try {
    const { imageNames } = await import("../operations/images.js");
    return await imageNames();
  } catch {
    return [];
  }
}

/** Candidates for the last of `words` (the word under the cursor, maybe empty) after the others. */
export async function complete(program: Command, words: string[]): Promise<{ candidates: Candidate[]; directive: number }> {
  const current = words.at(-1) ?? "";
  let cmd = program;
  const chain = [program];
  const options = () => chain.flatMap((c) => c.options);
  let positional = 0;
  let valueOf: Option | undefined;
  let operandsOnly = false;
  let helpFor = false;
  for (const word of words.slice(0, -1)) {
    if (valueOf) {
      valueOf = undefined;
    } else if (!operandsOnly && word === "--") {
      operandsOnly = true;
    } else if (!operandsOnly && word.startsWith("-") && word !== "-") {
      const option = word.includes("=") ? undefined : findOption(options(), word);
      if (option && (option.required || option.optional)) valueOf = option;
    } else if (helpFor || (positional === 0 && cmd.commands.length > 0 && findCommand(cmd, word))) {
      const sub = findCommand(cmd, word);
      if (!sub) return { candidates: [], directive: NO_FILES };
      // `regcli help image save`: the words after help name a command.
      if (sub.name() === "help" && cmd === program) helpFor = true;
      else {
        cmd = sub;
        chain.push(sub);
      }
    } else {
      positional++;
    }
  }

  const matching = (candidates: Candidate[]) => candidates.filter((c) => c.value.startsWith(current));
  const values = (option: Option, prefix: string) => {
    const choices = option.argChoices?.map((value) => ({ value: prefix + value }));
    return { candidates: matching(choices ?? []), directive: choices ? NO_FILES : 0 };
  };

  if (valueOf) return values(valueOf, "");
  if (!operandsOnly && current.startsWith("-")) {
    const eq = current.indexOf("=");
    if (eq > 0) {
      const option = findOption(options(), current.slice(0, eq));
      return option ? values(option, current.slice(0, eq + 1)) : { candidates: [], directive: NO_FILES };
    }
    const flags: Candidate[] = chain
      .flatMap((c) => c.createHelp().visibleOptions(c))
      .flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined).map((value) => ({ value, description: o.description })));
    const unique = flags.filter((f, i) => flags.findIndex((g) => g.value === f.value) === i);
    // Short flags only when nothing but "-" is typed: `--<TAB>` lists the long ones.
    return { candidates: matching(unique.filter((f) => current === "-" || f.value.startsWith("--"))), directive: NO_FILES };
  }

  if (helpFor) return { candidates: matching(subcommands(cmd)), directive: NO_FILES };
  const candidates: Candidate[] = positional === 0 ? subcommands(cmd) : [];
  const args = cmd.registeredArguments;
  const arg = positional < args.length ? args[positional] : args.at(-1)?.variadic ? args.at(-1) : undefined;
  if (arg?.argChoices) candidates.push(...arg.argChoices.map((value) => ({ value })));
  const prefix = storeNamePrefix(arg);
  if (prefix !== undefined) candidates.push(...(await storeImageNames()).map((name) => ({ value: prefix + name })));
  const filesMayFit = arg !== undefined && !arg.argChoices && prefix !== "";
  return { candidates: matching(candidates), directive: filesMayFit ? 0 : NO_FILES };
}

/** The `__complete` answer: one `value<TAB>description` a line, then `:DIRECTIVE`. */
export async function completionReply(program: Command, words: string[]): Promise<string> {
  const { candidates, directive } = await complete(program, words.length ? words : [""]);
  const line = (c: Candidate) => {
    const description = firstLine(c.description)?.replace(/\t/g, " ");
    return description ? `${c.value}\t${description}` : c.value;
  };
  return [...candidates.map(line), `:${directive}`].join("\n") + "\n";
}
