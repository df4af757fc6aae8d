import { openSync } from "node:fs";
import { createInterface } from "node:readline";
import { ReadStream } from "node:tty";
import { jsonEventsOn } from "./output.js";

type TerminalInput = NodeJS.ReadableStream & { destroy?: () => void; pause: () => unknown; setRawMode?: (raw: boolean) => unknown };

/**
 * The terminal to read an answer from: stdin when it is a terminal, else /dev/tty (stdin may be a pipe, e.g.
 * --password-stdin). Undefined when there is none to ask on (see canAsk, or no controlling terminal).
 */
function openTerminal(): { input: TerminalInput; release(): void } | undefined {
  if (!canAsk()) return undefined;
  if (process.stdin.isTTY) return { input: process.stdin, release: () => process.stdin.pause() };
  try {
    const input = new ReadStream(openSync("/dev/tty", "r"));
    return { input, release: () => input.destroy() };
  } catch {
    return undefined;
  }
}

/** One line typed on the terminal, shown as typed; undefined at end of input. */
async function readLine(input: TerminalInput): Promise<string | undefined> {
  const lines = createInterface({ input, terminal: false });
  const answer = await new Promise<string | undefined>((resolve) => {
    lines.once("line", resolve);
    lines.once("close", () => resolve(undefined));
  });
  lines.close();
  return answer;
}

/** The prompt on stderr, then one line from the terminal (a newline on the screen if input ended instead). */
async function ask(tty: { input: TerminalInput; release(): void }, prompt: string): Promise<string | undefined> {
  process.stderr.write(prompt);
  const answer = await readLine(tty.input);
  tty.release();
  if (answer === undefined) process.stderr.write("\n");
  return answer;
}

/**
 * Ask a yes/no question on the terminal: the question on stderr, the answer from the terminal. Only "y"/"yes" is
 * yes. Returns undefined when there is no terminal to ask on (stderr redirected, or no controlling terminal) or
 * stderr carries only JSON events (--progress json): the caller then needs --force.
 */
export async function askYesNo(question: string): Promise<boolean | undefined> {
  const tty = openTerminal();
  if (!tty) return undefined;
  return /^\s*y(es)?\s*$/i.test((await ask(tty, `${question} [y/N] `)) ?? "");
}

/** Ask for a line (a user name) on the terminal, shown as typed; undefined without a terminal or at end of input. */
export async function askLine(prompt: string): Promise<string | undefined> {
  const tty = openTerminal();
  return tty && ask(tty, prompt);
}

/**
 * Ask for a password on the terminal without echoing it (raw mode, as docker and sudo do), the prompt on stderr.
 * Undefined without a terminal or at end of input (Ctrl-D); Ctrl-C interrupts the command as it would elsewhere.
 */
export async function askSecret(prompt: string): Promise<string | undefined> {
  const tty = openTerminal();
  if (!tty) return undefined;
  const { input } = tty;
  process.stderr.write(prompt);
  input.setRawMode?.(true);
  let interrupted = false;
  try {
    return await new Promise<string | undefined>((resolve) => {
      let secret = "";
      const finish = (value: string | undefined) => {
        input.removeListener("data", onData);
        input.removeListener("end", onEnd);
        resolve(value);
      };
      const onEnd = () => finish(undefined);
      const onData = (chunk: Buffer | string) => {
        for (const ch of chunk.toString()) {
          if (ch === "\r" || ch === "\n") return finish(secret);
          if (ch === "\u0003") {
            interrupted = true;
            return finish(undefined);
          }
          if (ch === "\u0004" && secret === "") return finish(undefined);
          if (ch === "\u007f" || ch === "\b") secret = [...secret].slice(0, -1).join("");
          else if (ch >= " ") secret += ch;
        }
      };
      input.on("data", onData);
      input.once("end", onEnd);
      input.resume();
    });
  } finally {
    input.setRawMode?.(false);
    process.stderr.write("\n");
    tty.release();
    if (interrupted) process.kill(process.pid, "SIGINT");
  }
}

/** Whether askYesNo may ask at all (stderr a terminal, not --progress json): a command can refuse before starting. */
export function canAsk(): boolean {
  return process.stderr.isTTY === true && !jsonEventsOn();
}
