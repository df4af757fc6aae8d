/** A wait or window for people: "1.5 s", "12 min", "6 h". */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${Number((ms / 1000).toFixed(1))} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
