const SECRET_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie"]);

export function redactHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(", ") : String(v);
    if (SECRET_HEADERS.has(k.toLowerCase())) {
      const scheme = value.split(" ")[0] ?? "";
      out[k] = `${scheme} [redacted]`;
    } else {
      out[k] = value;
    }
  }
  return out;
}

const SECRET_QUERY = /([?&](?:access_token|refresh_token|password|token|_state)=)[^&]*/gi;

export function redactUrl(url: URL | string): string {
  const u = new URL(String(url));
  if (u.username || u.password) {
    u.username = "redacted";
    u.password = "";
  }
  return u.toString().replace(SECRET_QUERY, "$1[redacted]");
}
