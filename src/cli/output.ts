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

/** A progress or status line on stderr (never stdout: stdout is for data). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
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

/** Say on stderr that a copy into an OCI layout or archive converted the manifest, so its digest changed. */
export function noteConverted(result: { digest: string; sourceDigest?: string; source: string }): void {
  if (!result.sourceDigest || result.sourceDigest === result.digest) return;
  note(`Converted ${result.source} to OCI media types: digest ${result.sourceDigest} became ${result.digest}; --preserve-digests keeps the bytes and the digest`);
}
