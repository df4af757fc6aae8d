import { RegcliError, type ErrorKind } from "../errors.js";
import { readLimited, type HttpResponse } from "../transport/http.js";

export const MAX_ERROR_BODY_BYTES = 64 * 1024;

interface RegistryErrorEntry {
  code?: string;
  message?: string;
  detail?: unknown;
}

function kindForStatus(status: number): ErrorKind {
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not-found";
  return "registry";
}

/**
 * One clear error for an unexpected registry response: names what was being done (`what`, e.g.
 * "manifest localhost:5000/app:1"), the registry's own error code and message, and what to do.
 */
export async function registryFailure(res: HttpResponse, what: string, host: string): Promise<RegcliError> {
  let entries: RegistryErrorEntry[] = [];
  try {
    const body = await readLimited(res, MAX_ERROR_BODY_BYTES, "error body");
    const parsed = JSON.parse(body.toString("utf8")) as { errors?: RegistryErrorEntry[] };
    if (Array.isArray(parsed.errors)) entries = parsed.errors.filter((e) => e && typeof e === "object");
  } catch {
    res.body.destroy();
  }
  // Distribution 2.x lists DIGEST_INVALID beside the real cause of a refused manifest (MANIFEST_BLOB_UNKNOWN, say):
  // the other one is reported.
  const first = entries.find((e) => e.code !== "DIGEST_INVALID") ?? entries[0];
  const code = typeof first?.code === "string" ? shorten(first.code) : undefined;
  const message = typeof first?.message === "string" ? shorten(first.message) : undefined;
  const detail = code ? ` (${code}${message ? `: ${message}` : ""})` : ` (HTTP ${res.status})`;
  const kind = kindForStatus(res.status);
  let summary: string;
  let hint: string | undefined;
  switch (res.status) {
    case 401:
      summary = `not authorized for ${what}`;
      hint = `log in with regcli login ${host}, or check that the account may do this`;
      break;
    case 403:
      summary = `access denied to ${what}`;
      hint = "the credentials are valid but lack permission for this";
      break;
    case 404:
      summary = `${what} not found`;
      break;
    case 405:
      summary = `${host} does not support this operation on ${what}`;
      break;
    case 429:
      summary = `${host} is rate limiting requests for ${what}`;
      hint = "wait and try again, or log in for a higher limit";
      break;
    default:
      summary = `${host} failed ${what}`;
  }
  const tries = res.tries && res.tries > 1 ? ` after ${res.tries} tries` : "";
  return new RegcliError(kind, `${summary}${detail}${tries}`, { hint, code: code ?? String(res.status) });
}

/** What a registry says goes into a one-line error: a registry's message is cut short, whatever it sent. */
const MAX_MESSAGE_CHARS = 300;
function shorten(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}...` : text;
}
