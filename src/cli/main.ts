import { Command, CommanderError, Option } from "commander";
import { localFileError, RegcliError } from "../errors.js";
import { strayNetworkError } from "../transport/errors.js";
import { regcliVersion } from "../version.js";
import { register as registerArtifact } from "./commands/artifact.js";
import { register as registerBlob } from "./commands/blob.js";
import { register as registerCompletion } from "./commands/completion.js";
import { register as registerConfig } from "./commands/config.js";
import { register as registerCopy } from "./commands/copy.js";
import { register as registerDelete } from "./commands/delete.js";
import { register as registerDigest } from "./commands/digest.js";
import { register as registerInspect } from "./commands/inspect.js";
import { register as registerLogin } from "./commands/login.js";
import { register as registerLs } from "./commands/ls.js";
import { register as registerManifest } from "./commands/manifest.js";
import { register as registerPull } from "./commands/pull.js";
import { register as registerPush } from "./commands/push.js";
import { register as registerRatelimit } from "./commands/ratelimit.js";
import { register as registerReferrers } from "./commands/referrers.js";
import { register as registerImages } from "./commands/images.js";
import { register as registerIndex } from "./commands/image-index.js";
import { register as registerFlatten } from "./commands/flatten.js";
import { register as registerRebase } from "./commands/rebase.js";
import { register as registerExport } from "./commands/export.js";
import { register as registerServe } from "./commands/serve.js";
import { register as registerSync } from "./commands/sync.js";
import { register as registerTag } from "./commands/tag.js";
import { register as registerMutate } from "./commands/mutate.js";
import { register as registerAppend } from "./commands/append.js";
import { err, jsonEventsOn, note, useJsonEvents, writeEvent } from "./output.js";
import { completionReply } from "./completion.js";
import { MODES } from "./progress.js";

/** Each command module and the top-level command names it registers, in the order of the help. */
const COMMANDS: [string[], (program: Command) => void][] = [
  [["ls", "list"], registerLs],
  [["manifest"], registerManifest],
  [["digest"], registerDigest],
  [["config"], registerConfig],
  [["inspect"], registerInspect],
  [["referrers"], registerReferrers],
  [["blob"], registerBlob],
  [["tag"], registerTag],
  [["append"], registerAppend],
  [["mutate"], registerMutate],
  [["delete", "untag"], registerDelete],
  [["copy", "cp"], registerCopy],
  [["sync"], registerSync],
  [["pull"], registerPull],
  [["push"], registerPush],
  [["images", "image", "rmi"], registerImages],
  [["index"], registerIndex],
  [["flatten"], registerFlatten],
  [["rebase"], registerRebase],
  [["export", "cat"], registerExport],
  [["artifact", "attach"], registerArtifact],
  [["serve"], registerServe],
  [["login", "logout"], registerLogin],
  [["ratelimit"], registerRatelimit],
  [["completion"], registerCompletion],
];

/**
 * The command line's command when only it needs to be built: a known command name after nothing but known global
 * options. Help, completion, unknown names or options need every command (their output lists or suggests them).
 */
function commandToRun(program: Command, args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") return undefined;
    if (!arg.startsWith("-") || arg === "-") {
      if (!COMMANDS.some(([names]) => names.includes(arg)) && arg !== "version") return undefined;
      return args.slice(i + 1).some((a) => a === "--help" || a === "-h") ? undefined : arg;
    }
    const option = program.options.find((o) => o.long === arg.split("=")[0] || o.short === arg);
    if (!option) return undefined;
    if ((option.required || option.optional) && !arg.includes("=")) i++;
  }
  return undefined;
}

/**
 * The program for the command line `args` (argv without node and the script): only the command it runs when
 * commandToRun finds one, every command otherwise or without `args`.
 */
export function buildProgram(args?: string[]): Command {
  const program = new Command("regcli")
    .description("A daemonless client for container registries (OCI Distribution / Docker Registry v2)")
    .version(regcliVersion(), "-v, --version", "print the regcli version")
    .option("--debug", "log requests and responses to stderr (credentials redacted) and show stack traces")
    .option("-q, --quiet", "print only the result")
    .option("--insecure", "skip TLS certificate verification")
    .option("--plain-http", "speak plain HTTP to the registries of this command")
    .option("--ca-file <file>", "trust this CA certificate (PEM) in addition to the system roots (repeatable)", (file: string, previous: string[] = []) => [...previous, file])
    .option("--cert-dir <dir>", "use the certificates in DIR (*.crt CAs, NAME.cert + NAME.key client certificate) for the registries of this command instead of certs.d")
    .addOption(new Option("--retries <n>", "retries for a failed idempotent request").default("3"))
    .addOption(new Option("--timeout <seconds>", "seconds to connect (TCP and TLS), to wait for a response, or for the next chunk of one").default("60"))
    .option("--chunk-size <size>", "upload blobs in PATCH chunks of this size (e.g. 16MiB); default: one streaming PUT per blob")
    .addOption(new Option("--progress <mode>", "progress on stderr: auto (bars on a terminal, lines otherwise), tty, plain, json (one event per line), none").choices(MODES).default("auto"))
    .option("-u, --username <user>", "user name for the registry of this command (with --password-stdin)")
    .option("--password-stdin", "read the password or token from standard input")
    .option("--authfile <file>", "read credentials from this auth.json/config.json only, and log in/out there (as podman and skopeo)")
    .helpCommand(false);
  // Commander's error lines are left out: main() reports parser errors in regcli's own format (parserError).
  program.configureOutput({
    outputError: () => undefined,
    writeErr: (text) => {
      if (!jsonEventsOn()) process.stderr.write(text);
    },
  });
  program
    .command("version")
    .description("print the regcli version")
    .action(() => {
      process.stdout.write(`regcli ${regcliVersion()}\n`);
    });
  const only = args && commandToRun(program, args);
  for (const [, register] of only ? COMMANDS.filter(([names]) => names.includes(only)) : COMMANDS) register(program);
  // A name in COMMANDS that its module does not register: build everything rather than misreport the command.
  if (only && !program.commands.some((c) => c.name() === only || c.aliases().includes(only))) return buildProgram();
  program
    .command("help")
    .description("display help for a command (help image save)")
    .argument("[command...]", "command and subcommand names")
    .action((names: string[]) => {
      let target = program;
      for (const name of names) {
        const sub = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!sub) target.error(`error: unknown command '${name}'`, { code: "commander.unknownCommand", exitCode: 2 });
        target = sub!;
      }
      target.outputHelp();
    });
  const exitOverrideAll = (cmd: Command): void => {
    cmd.exitOverride(recordFailedCommand);
    cmd.commands.forEach(exitOverrideAll);
  };
  exitOverrideAll(program);
  return program;
}

/**
 * Commander shows the parent's help for `regcli nosuch --help` (help is looked at before the command name):
 * refuse an unknown command name first, as commander does without --help.
 */
function refuseUnknownCommand(cmd: Command, args: string[], options = cmd.options): void {
  if (cmd.commands.length === 0 || cmd.registeredArguments.length > 0) return;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return;
    if (arg.startsWith("-")) {
      const name = arg.split("=")[0];
      const option = options.find((o) => o.long === name || o.short === name);
      if (option && (option.required || option.optional) && !arg.includes("=")) i++;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (sub) return refuseUnknownCommand(sub, args.slice(i + 1), [...options, ...sub.options]);
    if (arg !== "help") cmd.error(`error: unknown command '${arg}'`, { code: "commander.unknownCommand", exitCode: 2 });
    return;
  }
}

/** The command whose parser refused the command line: its help is named in the error. */
const failedCommand = new WeakMap<CommanderError, Command>();

/**
 * Commander calls a command's exit callback as its method: `this` is the command whose parser failed. (One
 * closure per command instead made `regcli version` die of SIGSEGV when V8 took the build's code cache.)
 */
function recordFailedCommand(this: Command, error: CommanderError): never {
  failedCommand.set(error, this);
  throw error;
}

function commandPath(cmd: Command): string {
  return cmd.parent ? `${commandPath(cmd.parent)} ${cmd.name()}` : cmd.name();
}

/** A commander error (unknown option or command, missing or extra argument, invalid choice) in regcli's format. */
function parserError(error: CommanderError): string {
  const message = error.message
    .replace(/^error: /, "")
    .replace(/\s*\(Did you mean (.+)\)\s*$/, "; did you mean $1")
    // A value outside an option's or argument's choices reads as regcli's own checks do.
    .replace(/^(?:option '(\S+)[^']*' argument|command-argument value) '(.*)' is invalid(?: for argument '(.+)')?\. Allowed choices are (.+)\.$/, (_, flag: string | undefined, value: string, arg: string | undefined, choices: string) => `unknown ${flag ?? arg} "${value}": use ${choices}`);
  const cmd = failedCommand.get(error);
  return cmd ? `${message} (see ${commandPath(cmd)} --help)` : message;
}

/** A message as one terminal line: text a server sent (error messages, names) may carry newlines or escape codes. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
}

/** An error as one line on stderr (the stack below it with --debug), or an "error" event in JSON mode. */
function reportError(label: string, message: string, exitCode: number, stack?: string): number {
  if (jsonEventsOn()) writeEvent({ type: "error", message: oneLine(message), exitCode, ...(stack ? { stack } : {}) });
  else process.stderr.write(`${err.red(label)} ${oneLine(message)}\n${stack ? `${stack}\n` : ""}`);
  return exitCode;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (`regcli ls REPO | head -1`) closes the pipe: end quietly, as a command would whose
  // output was simply not wanted any more, instead of dying of an unhandled EPIPE with a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    const io = localFileError(e, "the standard output");
    process.exit(io ? reportError("regcli: error:", io.toLine(), io.exitCode) : reportError("regcli: error:", `cannot write the output: ${e.message}`, 5));
  });
  // A command whose work stopped without an answer (a promise nothing will settle) would let Node exit 0 with
  // its output unwritten: never report that as success.
  let finished = false;
  process.once("beforeExit", () => {
    if (finished) return;
    process.exitCode = reportError("regcli: internal error:", "the command stopped before it finished; its output is incomplete", 1);
  });
  // Without --debug no stack is ever shown, yet Node formats the stack of every error a stream is destroyed with
  // (undici's, closing its sockets at every exit), and the first one makes V8 index the bundle's 2 MB by line: 25 M
  // instructions, ~5 ms (callgrind). `serve` logs the stacks of unexpected errors, so it keeps them.
  if (!argv.includes("--debug") && !argv.includes("serve")) Error.stackTraceLimit = 0;
  // JSON mode from the start, before commander parses anything: its errors and the debug lines are events too.
  if (argv.some((a, i) => a === "--progress=json" || (a === "--progress" && argv[i + 1] === "json"))) useJsonEvents();
  if (argv.includes("--debug")) {
    // bin/regcli.cjs says whether V8 took the build's compiled code (a Node version or flags other than the build's
    // reject it, which only costs start-up time).
    const cache = (globalThis as { __regcliCodeCache?: string }).__regcliCodeCache ?? "not used";
    note(`debug: code cache ${cache}`);
  }
  // Only the command that runs is built (registering all ~40 costs every start); help and completion build all.
  const program = buildProgram(argv[2] === "__complete" ? undefined : argv.slice(2));
  try {
    if (argv[2] === "__complete") {
      process.stdout.write(await completionReply(program, argv.slice(3)));
      return 0;
    }
    const args = argv.slice(2);
    if (args.includes("--help") || args.includes("-h")) refuseUnknownCommand(program, args);
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
      return reportError("regcli: error:", parserError(error), 2);
    }
    const debug = argv.includes("--debug");
    // Last resort: a file-system error that escaped its boundary (it carries its own path).
    if (!(error instanceof RegcliError)) error = localFileError(error, undefined, "access") ?? strayNetworkError(error) ?? error;
    if (error instanceof RegcliError) {
      return reportError("regcli: error:", error.toLine(), error.exitCode, debug && error.cause ? String((error.cause as Error).stack ?? error.cause) : undefined);
    }
    const message = error instanceof Error ? error.message : String(error);
    return reportError("regcli: internal error:", `${message} (run with --debug for details)`, 1, debug && error instanceof Error ? error.stack : undefined);
  } finally {
    finished = true;
  }
}
