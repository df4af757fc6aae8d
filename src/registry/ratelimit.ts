import type { HttpResponse, TransportNotice } from "../transport/http.js";
import { humanDuration } from "../util/duration.js";

/**
 * Docker Hub's pull limit, as its manifest responses report it:
 *   ratelimit-limit: 100;w=21600      (pulls per window of w seconds)
 *   ratelimit-remaining: 76;w=21600
 *   docker-ratelimit-source: 203.0.113.5   (the IP or account the limit is counted for)
 */
export interface RateLimit {
  limit: number | undefined;
  remaining: number;
  /** The window in seconds. */
  window: number | undefined;
  source: string | undefined;
  /** The headers as sent. */
  headers: Record<string, string>;
}

const HEADERS = ["ratelimit-limit", "ratelimit-remaining", "docker-ratelimit-source"];

function quota(value: string | undefined): { count: number; window: number | undefined } | undefined {
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(value ?? "");
  return m ? { count: Number(m[1]), window: m[2] === undefined ? undefined : Number(m[2]) } : undefined;
}

/** The rate limit a response reports, if it reports one (ratelimit-remaining is the one that matters). */
export function readRateLimit(res: Pick<HttpResponse, "header">): RateLimit | undefined {
  const remaining = quota(res.header("ratelimit-remaining"));
  if (!remaining) return undefined;
  const limit = quota(res.header("ratelimit-limit"));
  const headers: Record<string, string> = {};
  for (const name of HEADERS) {
    const value = res.header(name);
    if (value !== undefined) headers[name] = value;
  }
  return { limit: limit?.count, remaining: remaining.count, window: remaining.window ?? limit?.window, source: res.header("docker-ratelimit-source"), headers };
}

/** Pacing starts when the pulls left fall to this share of the limit (or, with no limit sent, this many). */
export const LOW_SHARE = 0.1;
export const LOW_COUNT = 10;

export function isLow(rl: RateLimit): boolean {
  return rl.remaining <= (rl.limit !== undefined ? Math.floor(rl.limit * LOW_SHARE) : LOW_COUNT);
}

/**
 * Keeps the counted requests (manifest GETs) of one registry under its reported limit: once the pulls left are
 * low, the next ones are spread over the window (one every window/remaining seconds) instead of running into 0.
 */
export class RatePacer {
  private latest: RateLimit | undefined;
  private nextAt = 0;
  private told = false;

  constructor(
    private readonly registry: string,
    private readonly notice?: (event: TransportNotice) => void,
  ) {}

  observe(res: Pick<HttpResponse, "header">): void {
    const rl = readRateLimit(res);
    if (rl) this.latest = rl;
  }

  /** Wait for this request's turn (no wait unless the remaining pulls are low). */
  async pace(): Promise<void> {
    const rl = this.latest;
    if (!rl || rl.window === undefined || !isLow(rl)) return;
    const intervalMs = (rl.window * 1000) / Math.max(rl.remaining, 1);
    const now = Date.now();
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + intervalMs;
    if (!this.told) {
      this.told = true;
      this.notice?.({
        type: "rate-limit",
        message: `${this.registry}: ${rl.remaining}${rl.limit !== undefined ? ` of ${rl.limit}` : ""} pulls left in the rate limit window (${humanDuration(rl.window * 1000)}); slowing down to one manifest request every ${humanDuration(intervalMs)}`,
        registry: this.registry,
        limit: rl.limit,
        remaining: rl.remaining,
        window: rl.window,
        intervalMs: Math.round(intervalMs),
      });
    }
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }
}
