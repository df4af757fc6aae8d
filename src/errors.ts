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

export class InvalidReferenceError extends RegcliError {
  readonly input: string;
  constructor(input: string, reason: string) {
    super("usage", `invalid reference "${input}": ${reason}`);
    this.name = "InvalidReferenceError";
    this.input = input;
  }
}
