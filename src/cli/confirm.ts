import { openSync } from "node:fs";
import { createInterface } from "node:readline";
import { ReadStream } from "node:tty";
import { jsonEventsOn } from "./output.js";

/**
 * Ask a yes/no question on the terminal: the question on stderr, the answer from stdin when it is a terminal,
 * else from /dev/tty (stdin may be a pipe, e.g. --password-stdin). Only "y"/"yes" is yes. Returns undefined when
 * there is no terminal to ask on (stderr redirected, or no controlling terminal) or stderr carries only JSON events
 * (--progress json): the caller then needs --force.
 */
export async function askYesNo(question: string): Promise<boolean | undefined> {
  if (!canAsk()) return undefined;
  let input: NodeJS.ReadableStream & { destroy?: () => void; pause: () => unknown };
  if (process.stdin.isTTY) input = process.stdin;
  else {
    try {
      input = new ReadStream(openSync("/dev/tty", "r"));
    } catch {
      return undefined;
    }
  }
  process.stderr.write(`${question} [y/N] `);
  const lines = createInterface({ input, terminal: false });
  const answer = await new Promise<string | undefined>((resolve) => {
    lines.once("line", resolve);
    lines.once("close", () => resolve(undefined));
  });
  lines.close();
  if (input === process.stdin) input.pause();
  else input.destroy?.();
  if (answer === undefined) process.stderr.write("\n");
  return /^\s*y(es)?\s*$/i.test(answer ?? "");
}

/** Whether askYesNo may ask at all (stderr a terminal, not --progress json): a command can refuse before starting. */
export function canAsk(): boolean {
  return process.stderr.isTTY === true && !jsonEventsOn();
}
