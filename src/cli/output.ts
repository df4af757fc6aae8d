import { stripVTControlCharacters } from "node:util";
import chalk, { Chalk } from "chalk";
import { RegcliError } from "../errors.js";

/** Colours only on a TTY and never with NO_COLOR. */
export function colorsFor(stream: NodeJS.WriteStream): InstanceType<typeof Chalk> {
  const enabled = stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== "dumb";
  return new Chalk({ level: enabled ? chalk.level || 1 : 0 });
}

export const err = colorsFor(process.stderr);

export type OutputFormat = "text" | "json";

export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === "text") return "text";
  if (value === "json") return "json";
  throw new RegcliError("usage", `unknown --format "${value}": use text or json`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ""): void {
  process.stdout.write(`${line}\n`);
}

let jsonEvents = false;

/** `--progress json`: from now on stderr carries only JSON events, one per line (notes, the summary, errors too). */
export function useJsonEvents(): void {
  jsonEvents = true;
}

export function jsonEventsOn(): boolean {
  return jsonEvents;
}

/** One JSON event on stderr: `{"time":..., "type":..., ...}`. */
export function writeEvent(event: { type: string } & Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
}

let liveRegion: ((line: string) => void) | undefined;

/** While bars are drawn, notes go above them (written past them, a redraw would leave stale bars in the scrollback). */
export function routeNotes(to: ((line: string) => void) | undefined): void {
  liveRegion = to;
}

/** A progress or status line on stderr (never stdout: stdout is for data); a "note" event in JSON mode. */
export function note(line: string): void {
  if (jsonEvents) writeEvent({ type: "note", message: stripVTControlCharacters(line) });
  else if (liveRegion) liveRegion(line);
  else process.stderr.write(`${line}\n`);
}

/**
 * A command's closing line on stderr (skipped with --quiet); in JSON mode a "done" event with the counts
 * instead, which --quiet does not skip (the events were asked for explicitly).
 */
export function summary(quiet: boolean, line: string, counts: Record<string, unknown>): void {
  if (jsonEvents) writeEvent({ type: "done", ...counts });
  else if (!quiet) note(line);
}

/** "1 tag", "2 tags". */
export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

export function humanSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}

export function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(":");
  return `${alg}:${(hex ?? "").slice(0, 12)}`;
}


/** Binary data (a tar, a blob) is never written to a terminal, as docker refuses too: it would only garble it. */
export function refuseBinaryOnTerminal(what: string): void {
  if (process.stdout.isTTY) throw new RegcliError("usage", `refusing to write ${what} to a terminal`, { hint: "give -o FILE or redirect standard output" });
}
