/**
 * Every failure regcli reports is a RegcliError with a kind; the CLI maps the kind to an exit code and prints
 * the message as one line. Anything else that escapes is a bug and is reported as an internal error.
 */
export type ErrorKind =
  | "usage"
  | "auth"
  | "not-found"
  | "network"
  | "registry"
  | "integrity"
  /** Local files: disk full, permission denied, read-only file system, quota (ENOSPC, EACCES, EROFS, EDQUOT...). */
  | "io"
  /** Valid input that regcli does not handle yet (e.g. a zstd layer to flatten): not a bug, not the user's fault. */
  | "unsupported"
  | "general";

export const EXIT_CODES: Record<ErrorKind, number> = {
  general: 1,
  usage: 2,
  auth: 3,
  "not-found": 4,
  network: 5,
  registry: 5,
  integrity: 5,
  io: 6,
  unsupported: 7,
};

export class RegcliError extends Error {
  readonly kind: ErrorKind;
  /** What the user can do about it, appended to the one-line message. */
  readonly hint: string | undefined;
  /** Registry error code (e.g. MANIFEST_UNKNOWN) or HTTP status when the error came from a registry. */
  readonly code: string | undefined;

  constructor(kind: ErrorKind, message: string, options: { hint?: string; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RegcliError";
    this.kind = kind;
    this.hint = options.hint;
    this.code = options.code;
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }

  /** The single line shown to the user. */
  toLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

/** Errors of local files that are the machine's state, not a bug: what each means and what the user can do. */
const LOCAL_FILE_ERRORS: Record<string, { what: string; hint: string }> = {
  ENOSPC: { what: "no space left on the device", hint: "free some space or write elsewhere" },
  EDQUOT: { what: "disk quota exceeded", hint: "free some space or write elsewhere" },
  EFBIG: { what: "file too large for that file system", hint: "write elsewhere" },
  EROFS: { what: "read-only file system", hint: "write elsewhere" },
  EACCES: { what: "permission denied", hint: "check the permissions or write elsewhere" },
  EPERM: { what: "operation not permitted", hint: "check the permissions or write elsewhere" },
  ENOTDIR: { what: "a part of the path is not a directory", hint: "check the path" },
  EISDIR: { what: "it is a directory", hint: "give a file name" },
  ENOENT: { what: "no such file or directory", hint: "check the path" },
  EIO: { what: "input/output error of the device", hint: "check the disk" },
};

/**
 * A Node file-system error (disk full, permission denied, read-only, ...) as a one-line "io" error naming `path`
 * (else the path the error carries); undefined for anything else. Stream writes carry no path, so the place that
 * opened the file names it.
 */
export function localFileError(err: unknown, path?: string, action = "write"): RegcliError | undefined {
  if (err instanceof RegcliError || !(err instanceof Error)) return undefined;
  const { code, path: errPath } = err as NodeJS.ErrnoException;
  const known = code === undefined ? undefined : LOCAL_FILE_ERRORS[code];
  if (!known) return undefined;
  const where = path ?? errPath ?? "a local file";
  return new RegcliError("io", `cannot ${action} ${where}: ${known.what} (${code})`, { hint: known.hint, code, cause: err });
}

/**
 * localFileError for a failure while writing the output `path`: an error that names another file (a source that
 * could not be read) is not the output's, and is left to be reported with its own path.
 */
export function outputFileError(err: unknown, path: string): RegcliError | undefined {
  const failed = (err as NodeJS.ErrnoException | undefined)?.path;
  return failed === undefined || failed.startsWith(path) || path.startsWith(failed) ? localFileError(err, path) : undefined;
}

/** Run a local write, turning a file-system failure into an "io" error that names `path`. */
export async function writingTo<T>(path: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw localFileError(err, path) ?? err;
  }
}

export class InvalidReferenceError extends RegcliError {
  readonly input: string;
  constructor(input: string, reason: string) {
    super("usage", `invalid reference "${input}": ${reason}`);
    this.name = "InvalidReferenceError";
    this.input = input;
  }
}
