import { RegcliError } from "../errors.js";

/** A wait or window for people: "1.5 s", "12 min", "6 h". */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${Number((ms / 1000).toFixed(1))} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** A duration such as "30s", "90m", "12h", "30d" or "2w" in milliseconds; a usage error naming the value otherwise. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+)\s*([smhdw])\s*$/.exec(text);
  if (!m || Number(m[1]) <= 0) {
    throw new RegcliError("usage", `invalid duration "${text}"`, { hint: "give a positive whole number and a unit: s, m (minutes), h, d or w (weeks), e.g. 30d" });
  }
  return Number(m[1]) * UNITS[m[2]!]!;
}
