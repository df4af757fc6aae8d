import { RegcliError } from "../errors.js";

function codeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code !== "UND_ERR_SOCKET" && code !== "UND_ERR") return code;
    e = (e as { cause?: unknown }).cause;
  }
  const top = (err as { code?: unknown })?.code;
  return typeof top === "string" ? top : undefined;
}

function messageOf(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  for (let i = 0; i < 4 && e && typeof e === "object"; i++) {
    const m = (e as { message?: unknown }).message;
    if (typeof m === "string" && m) parts.push(m);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(": ");
}

const TLS_VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_UNTRUSTED",
]);

/** TLS alerts a server sends about the client's certificate: missing, unknown, expired or refused. */
const CLIENT_CERT_ALERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(?:BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_EXPIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/;

/** The TLS handshake met a server that does not speak TLS (a plain-HTTP registry). */
export function isPlainHttpServerError(err: unknown): boolean {
  const code = codeOf(err);
  const msg = messageOf(err);
  return code === "EPROTO" || code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number|packet length too long/i.test(msg);
}

/** Errors worth another try for an idempotent request. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = codeOf(err);
  return (
    code === "ECONNRESET" ||
    code === "EPIPE" ||
    code === "ETIMEDOUT" ||
    code === "UND_ERR_CONNECT_TIMEOUT" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    code === "UND_ERR_SOCKET" ||
    code === "UND_ERR_CLOSED" ||
    code === "EAI_AGAIN"
  );
}

/**
 * Turn a low-level connection error into one clear line naming the host. `clientCertificate`: the file of the
 * client certificate presented to that host, if any.
 */
export function networkError(err: unknown, url: URL, clientCertificate?: string): RegcliError {
  if (err instanceof RegcliError) return err;
  const code = codeOf(err);
  const host = url.host;
  if (code && CLIENT_CERT_ALERT.test(code)) {
    // The server refused who we are, as a 401 would: an auth failure, which no retry fixes.
    return clientCertificate
      ? new RegcliError("auth", `${host} refused the TLS client certificate ${clientCertificate} (${code})`, {
          hint: "check that the registry trusts its CA and that it has not expired",
          code,
          cause: err,
        })
      : new RegcliError("auth", `${host} requires a TLS client certificate (${code})`, {
          hint: `put NAME.cert and NAME.key in ~/.config/containers/certs.d/${host}/ (or /etc/containers/certs.d, /etc/docker/certs.d), or pass --cert-dir`,
          code,
          cause: err,
        });
  }
  let what: string;
  let hint: string | undefined;
  if (code === "ECONNREFUSED") {
    what = `connection refused by ${host}`;
    hint = "is the registry running and the port right?";
  } else if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    what = `cannot resolve host ${url.hostname}`;
    hint = "check the registry name and your DNS";
  } else if (code && TLS_VERIFY_CODES.has(code)) {
    what = `TLS certificate of ${host} is not trusted (${code})`;
    hint = `put the registry's CA in ~/.config/containers/certs.d/${host}/ca.crt or pass --ca-file, or --insecure to skip verification`;
  } else if (isPlainHttpServerError(err)) {
    what = `${host} does not speak TLS`;
    hint = "use --plain-http for a registry served over plain HTTP";
  } else if (code === "UND_ERR_CONNECT_TIMEOUT") {
    what = `timed out connecting to ${host}`;
    hint = "check the network or raise --timeout";
  } else if (code === "ETIMEDOUT" || code === "UND_ERR_HEADERS_TIMEOUT") {
    what = `timed out talking to ${host}`;
    hint = "check the network or raise --timeout";
  } else if (code === "UND_ERR_BODY_TIMEOUT") {
    what = `transfer from ${host} stalled`;
    hint = "check the network or raise --timeout";
  } else if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE") {
    what = `connection to ${host} was reset`;
  } else {
    what = `request to ${host} failed: ${messageOf(err) || String(err)}`;
  }
  return new RegcliError("network", what, { hint, code, cause: err });
}

/**
 * A connection-level failure that escaped the code that could have named its host (a last resort for the CLI):
 * still a network error, exit code and all, not an internal one.
 */
export function strayNetworkError(err: unknown): RegcliError | undefined {
  const code = codeOf(err);
  if (code === undefined) return undefined;
  if (!code.startsWith("UND_ERR") && !/^E(CONNRESET|CONNREFUSED|CONNABORTED|PIPE|TIMEDOUT|NOTFOUND|AI_AGAIN|HOSTUNREACH|NETUNREACH)$/.test(code)) {
    return undefined;
  }
  return new RegcliError("network", `network failure: ${messageOf(err)}`, {
    hint: "check the network and try again (--retries and --timeout tune the retries)",
    cause: err,
  });
}
