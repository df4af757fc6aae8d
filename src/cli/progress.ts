import ora from "ora";
import type { CopyEvent } from "../operations/copy.js";
import { humanSize, note, shortDigest } from "./output.js";

/** Renders copy-engine events on stderr: a spinner line on a TTY, one line per blob otherwise. */
export function progressPrinter(quiet: boolean): { onEvent: (e: CopyEvent) => void; stop: () => void } {
  if (quiet) return { onEvent: () => undefined, stop: () => undefined };
  const spinner = process.stderr.isTTY && !process.env.NO_COLOR ? ora({ stream: process.stderr }).start("Working") : undefined;
  let blobs = 0;
  let bytes = 0;
  const label: Record<string, string> = { uploaded: "Copied", mounted: "Mounted", exists: "Already exists" };
  return {
    onEvent(e) {
      if (e.type === "blob") {
        blobs++;
        if (e.outcome === "uploaded") bytes += e.size;
        const line = `${label[e.outcome]} ${shortDigest(e.digest)} (${humanSize(e.size)})`;
        if (spinner) spinner.text = `${blobs} blobs, ${humanSize(bytes)} copied: ${line}`;
        else note(line);
      } else if (e.type === "image" && e.skipped) {
        const line = `Up to date ${e.destination} ${shortDigest(e.digest)}`;
        if (spinner) spinner.text = line;
        else note(line);
      }
    },
    stop: () => spinner?.stop(),
  };
}
