import type { Command } from "commander";
import type { Ora } from "ora";
import { RegcliError } from "../errors.js";
import type { CopyEvent, CopyStats } from "../operations/copy.js";
import { err, humanSize, note, plural, routeNotes, shortDigest, writeEvent } from "./output.js";

export type ProgressMode = "auto" | "tty" | "plain" | "json" | "none";
export const MODES: readonly ProgressMode[] = ["auto", "tty", "plain", "json", "none"];

export interface Progress {
  onEvent: (e: CopyEvent) => void;
  /** Whether the engine should count bytes for this renderer (bars and JSON need them; lines do not). */
  byteProgress: boolean;
  stop: () => void;
}

/** Words for one command: "Downloading" / "Pull complete", like docker pull. */
export interface Verbs {
  active: string;
  done: string;
}

export const PULL_VERBS: Verbs = { active: "Downloading", done: "Pull complete" };
export const PUSH_VERBS: Verbs = { active: "Pushing", done: "Pushed" };
export const COPY_VERBS: Verbs = { active: "Copying", done: "Copied" };

/** The counts of a copy or push for its closing line: "3 blobs (12.0 MiB) uploaded, 1 mounted, 2 already present". */
export function blobCounts(stats: CopyStats): string {
  return `${plural(stats.blobsUploaded, "blob")} (${humanSize(stats.bytesUploaded)}) uploaded, ${stats.blobsMounted} mounted, ${stats.blobsExisting} already present`;
}

/** ", 2 referrers copied (1 already present)" when referrers were carried; empty otherwise. */
export function referrerCounts(stats: CopyStats): string {
  if (!stats.referrersCopied && !stats.referrersExisting) return "";
  return `, ${plural(stats.referrersCopied, "referrer")} copied${stats.referrersExisting ? ` (${stats.referrersExisting} already present)` : ""}`;
}

export function parseProgressMode(value: string | undefined): ProgressMode {
  const mode = (value ?? "auto") as ProgressMode;
  if (!MODES.includes(mode)) throw new RegcliError("usage", `unknown --progress "${value}": use ${MODES.join(", ")}`);
  return mode;
}

/**
 * Why stderr cannot show bars, or undefined when it can: a terminal that reports its size (a pty of unknown
 * size would break redraws) and can move the cursor (not TERM=dumb). NO_COLOR only takes the colours away.
 */
function noBarsReason(): string | undefined {
  if (process.stderr.isTTY !== true) return "stderr is not a terminal";
  if (!(process.stderr.columns > 0)) return "the terminal does not report its size";
  if (process.env.TERM === "dumb") return "TERM=dumb cannot redraw lines";
  return undefined;
}

/**
 * The progress renderer a command's flags ask for: bars on a terminal, one line per finished blob otherwise,
 * JSON events (--progress json) for programs, nothing with --quiet. Everything goes to stderr.
 */
/**
 * `eachImage`: the command moves several images (copy --all-tags), so each one that is already up to date gets a
 * line; a one-image command's summary says it once.
 */
export function progressFor(cmd: Command, verbs: Verbs, waiting: string, eachImage = false): Progress {
  switch (resolveProgressMode(cmd)) {
    case "none":
      // Progress off (--quiet too), but a digest never changes silently: that notice is a warning, not progress.
      return {
        onEvent: (e) => {
          if (e.type === "digest-changed") note(digestChangedLine(e));
        },
        byteProgress: false,
        stop: () => undefined,
      };
    case "json":
      return jsonProgress();
    case "plain":
      return plainProgress(verbs, eachImage);
    default:
      return new BarProgress(verbs, waiting, false, eachImage);
  }
}

/** The mode a command's --progress and --quiet come to here: auto picks bars on a terminal, plain lines elsewhere. */
export function resolveProgressMode(cmd: Command): Exclude<ProgressMode, "auto"> {
  const globals = cmd.optsWithGlobals<{ quiet?: boolean; progress?: string }>();
  const mode = parseProgressMode(globals.progress);
  const reason = noBarsReason();
  if (mode === "auto") return globals.quiet ? "none" : reason ? "plain" : "tty";
  if (mode === "tty" && reason) {
    note(`--progress tty: ${reason}, so progress is shown as plain lines`);
    return "plain";
  }
  return mode;
}

/** Bars for many images (sync): the lines are the images', and an overall line counts images, failures and bytes. */
export interface ImageBars extends Progress {
  /** More images to go (a repository's plan). */
  planned: (count: number) => void;
  /** An image settled: its line stays above the bars. */
  settled: (line: string, failed: boolean) => void;
}

export function imageBars(verbs: Verbs, waiting: string): ImageBars {
  const bars = new BarProgress(verbs, waiting, true);
  return { onEvent: bars.onEvent, byteProgress: true, stop: bars.stop, planned: bars.planned, settled: bars.settled };
}

function jsonProgress(): Progress {
  return {
    onEvent: (e) => writeEvent(e),
    byteProgress: true,
    stop: () => undefined,
  };
}

/** Said whenever a copy writes another digest than the source's, so that no digest changes silently. */
function digestChangedLine(e: Extract<CopyEvent, { type: "digest-changed" }>): string {
  if (e.compression) return `digest changed from ${e.from} to ${e.to} (layers re-compressed to ${e.compression}${e.compression === "gzip" ? "" : ", OCI media types"}); leave out --compress to keep the original bytes`;
  return `digest changed from ${e.from} to ${e.to} (converted to OCI media types); use --preserve-digests to keep the original bytes`;
}

function recompressedLine(e: Extract<CopyEvent, { type: "blob-recompressed" }>): string {
  return `${shortDigest(e.from)}: re-compressed to ${e.compression} as ${shortDigest(e.to)} (${humanSize(e.size)})`;
}

const OUTCOME_LABEL = { exists: "Already exists", mounted: "Mounted", uploaded: "" } as const;

function plainProgress(verbs: Verbs, eachImage: boolean): Progress {
  return {
    onEvent(e) {
      if (e.type === "blob") note(`${shortDigest(e.digest)}: ${OUTCOME_LABEL[e.outcome] || verbs.done} (${humanSize(e.size)})`);
      else if (e.type === "blob-start" && e.offset > 0) note(`${shortDigest(e.digest)}: resuming at ${humanSize(e.offset)} of ${humanSize(e.size)}`);
      else if (e.type === "blob-retry") note(`${shortDigest(e.digest)}: retrying from the start (${e.reason})`);
      else if (e.type === "image" && e.skipped && eachImage) note(`Up to date ${e.destination} ${shortDigest(e.digest)}`);
      else if (e.type === "digest-changed") note(digestChangedLine(e));
      else if (e.type === "blob-recompressed") note(recompressedLine(e));
    },
    byteProgress: false,
    stop: () => undefined,
  };
}

interface BlobState {
  size: number;
  bytes: number;
  offset: number;
  started: number;
}

const MAX_BARS = 8;
const BAR_WIDTH = 24;

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${humanSize((bytes * 1000) / ms)}/s` : "";
}

function eta(left: number, bytes: number, ms: number): string {
  if (bytes <= 0 || ms <= 0) return "";
  const seconds = Math.ceil((left * ms) / bytes / 1000);
  return seconds >= 60 ? `ETA ${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s` : `ETA ${seconds}s`;
}

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.min(BAR_WIDTH, Math.floor((done / total) * BAR_WIDTH)) : 0;
  return `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(BAR_WIDTH - filled)}]`;
}

/**
 * docker-pull-style bars on a terminal: a spinner (ora) while manifests resolve, then one bar per active
 * blob with bytes, rate and ETA, and a total line. Finished blobs print a permanent line above the bars.
 */
class BarProgress implements Progress {
  readonly byteProgress = true;
  private readonly active = new Map<string, BlobState>();
  private spinner: Ora | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drawn = 0;
  private blobsSeen = 0;
  private blobsDone = 0;
  private totalBytes = 0;
  private movedBytes = 0;
  private first = 0;
  private imagesPlanned = 0;
  private imagesDone = 0;
  private imagesFailed = 0;

  constructor(
    private readonly verbs: Verbs,
    waiting: string,
    /** Many images: no line per blob (the images have theirs), and an images count in the total line. */
    private readonly images = false,
    /** A line for each image that is already up to date (several images, without their own lines). */
    private readonly eachImage = false,
  ) {
    // ora is loaded only here, on a terminal: plain and JSON output should not pay for it at start-up.
    void import("ora").then(({ default: ora }) => {
      if (!this.timer && !this.stopped) this.spinner = ora({ stream: process.stderr, text: waiting, color: err.level > 0 ? "cyan" : false }).start();
    });
  }

  private stopped = false;

  planned = (count: number): void => {
    this.startBars();
    this.imagesPlanned += count;
  };

  settled = (line: string, failed: boolean): void => {
    this.imagesDone++;
    if (failed) this.imagesFailed++;
    this.permanent(line);
  };

  private startBars(): void {
    if (this.timer) return;
    this.spinner?.stop();
    this.spinner = undefined;
    this.first = Date.now();
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
    routeNotes((line) => this.permanent(line));
  }

  onEvent = (e: CopyEvent): void => {
    switch (e.type) {
      case "blob-start": {
        this.startBars();
        const known = this.active.get(e.digest);
        if (!known) {
          this.blobsSeen++;
          this.totalBytes += e.size;
        } else this.movedBytes -= known.bytes - known.offset;
        this.active.set(e.digest, { size: e.size, bytes: e.offset, offset: e.offset, started: Date.now() });
        break;
      }
      case "blob-progress": {
        const state = this.active.get(e.digest);
        if (state) {
          this.movedBytes += e.bytes - state.bytes;
          state.bytes = e.bytes;
        }
        break;
      }
      case "blob": {
        this.startBars();
        const state = this.active.get(e.digest);
        if (state) {
          this.movedBytes += state.size - state.bytes;
          this.active.delete(e.digest);
        } else {
          this.blobsSeen++;
          this.totalBytes += e.size;
        }
        this.blobsDone++;
        if (this.images) break;
        const label = OUTCOME_LABEL[e.outcome] || this.verbs.done;
        const colour = e.outcome === "uploaded" ? err.green : err.dim;
        this.permanent(`${shortDigest(e.digest)}: ${colour(label)} ${err.dim(humanSize(e.size))}`);
        break;
      }
      case "blob-recompressed": {
        const state = this.active.get(e.from);
        if (state) {
          this.movedBytes += state.size - state.bytes;
          this.active.delete(e.from);
        }
        if (!this.images) this.permanent(recompressedLine(e));
        break;
      }
      case "blob-retry":
        this.permanent(`${shortDigest(e.digest)}: ${err.yellow("retrying")} (${e.reason})`);
        break;
      case "image":
        if (e.skipped && this.eachImage && !this.images) this.permanent(`Up to date ${e.destination} ${shortDigest(e.digest)}`);
        break;
      case "digest-changed":
        this.permanent(err.yellow(digestChangedLine(e)));
        break;
      case "referrer":
        if (!this.images) this.permanent(`${e.skipped ? "Present" : err.green("Copied")} ${e.tag ? `tag ${e.tag}` : `referrer ${shortDigest(e.digest)}`}${e.artifactType ? ` (${e.artifactType})` : ""} of ${shortDigest(e.subject)}`);
        break;
      default:
        break;
    }
  };

  /** A line that stays: clear the live region, write it, redraw the region below it. */
  private permanent(line: string): void {
    if (this.spinner) {
      this.spinner.stopAndPersist({ symbol: "", text: line });
      this.spinner.start();
      return;
    }
    this.draw(`${line}\n`);
  }

  /**
   * The live region: a bar per active blob, then the total. It must stay shorter than the terminal (the cursor
   * cannot move up into the scrollback, so a taller region leaves a stale copy there on every redraw): bars that
   * do not fit fold into one "+N more" row.
   */
  private lines(): string[] {
    const width = Math.max(10, (process.stderr.columns ?? 100) - 1); // no line may wrap: each is one row
    // Rows for bars: the terminal's height less the total line, the cursor's line and one spare.
    const room = Math.min(MAX_BARS, (process.stderr.rows || 24) - 3);
    const shown = this.active.size > room ? Math.max(0, room - 1) : this.active.size;
    const now = Date.now();
    const out: string[] = [];
    let index = 0;
    let foldedBytes = 0;
    let foldedSize = 0;
    for (const [digest, s] of this.active) {
      if (index++ >= shown) {
        foldedBytes += s.bytes;
        foldedSize += s.size;
        continue;
      }
      const ms = now - s.started;
      const moved = s.bytes - s.offset;
      const text = `${shortDigest(digest)}: ${this.verbs.active} ${bar(s.bytes, s.size)} ${humanSize(s.bytes)}/${humanSize(s.size)}  ${rate(moved, ms)}  ${eta(s.size - s.bytes, moved, ms)}`;
      out.push(text.slice(0, width));
    }
    if (shown < this.active.size && room > 0) out.push(`+${this.active.size - shown} more: ${humanSize(foldedBytes)} of ${humanSize(foldedSize)}`.slice(0, width));
    const ms = now - this.first;
    const images = this.images ? `Images: ${this.imagesDone}/${this.imagesPlanned}${this.imagesFailed ? ` (${this.imagesFailed} failed)` : ""}  ` : "";
    const total = `${images}Total: ${this.blobsDone}/${this.blobsSeen} blobs  ${humanSize(this.movedBytes)}  ${rate(this.movedBytes, ms)}  ${eta(this.totalBytes - this.movedBytes, this.movedBytes, ms)}`;
    out.push(err.bold(total.slice(0, width)));
    return out;
  }

  /**
   * Redraw over the region, each row cleared as it is written, and only what is left below cleared after: a clear
   * from the top-left corner (the region's place in a fresh terminal) is pushed into the scrollback by tmux 3.3
   * (scroll-on-clear), a stale copy in the history.
   */
  private draw(before = ""): void {
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r` : "";
    const lines = this.lines();
    const rows = [...(before ? [before.replace(/\n$/, "")] : []), ...lines].map((l) => `\x1b[2K${l}\x1b[0K`);
    process.stderr.write(`${up}${rows.join("\n")}\n\x1b[0J`);
    this.drawn = lines.length;
  }

  stop = (): void => {
    this.stopped = true;
    if (this.spinner) {
      this.spinner.stop();
      this.spinner = undefined;
    }
    if (this.timer) {
      routeNotes(undefined);
      clearInterval(this.timer);
      this.timer = undefined;
      this.active.clear();
      this.draw();
    }
  };
}
