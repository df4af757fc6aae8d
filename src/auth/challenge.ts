/** An HTTP authentication challenge (RFC 7235) as registries send it in WWW-Authenticate. */
export interface Challenge {
  /** Lowercased: "bearer", "basic", ... */
  scheme: string;
  /** Parameter names lowercased; a token68 form (e.g. `Negotiate abc==`) is stored under "". */
  params: Record<string, string>;
}

/** RFC 7230 tchar. */
const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
/** RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parse one or more WWW-Authenticate values. Several challenges may share one header, separated by commas
 * (`Basic realm="x", Bearer realm="y",service="z"`), and quoted values may contain commas, spaces and escaped
 * quotes. A challenge is either `scheme token68` or `scheme name=value, name=value...`; a bare token that is not
 * followed by "=" starts the next challenge. Never throws: garbage yields whatever could be parsed.
 */
export function parseWWWAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined || header === null) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    if (typeof value === "string" && value.length > 0) out.push(...new Scanner(value).challenges());
  }
  return out;
}

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r" || c === "\n";

class Scanner {
  private i = 0;
  constructor(private readonly s: string) {}

  challenges(): Challenge[] {
    const out: Challenge[] = [];
    let current: Challenge | undefined;
    const s = this.s;
    while (this.skipSeparators(), this.i < s.length) {
      const word = this.token();
      if (word === "") {
        // Not a token (a stray quote, "=", control character...): skip it, or the quoted string it opens.
        if (s[this.i] === '"') this.quoted();
        else this.i++;
        continue;
      }
      const afterWord = this.i;
      this.skipSpace();
      // `name = value` continues the current challenge; `name==` (padding) is never a parameter.
      if (current && s[this.i] === "=" && s[this.i + 1] !== "=") {
        this.i++; // "="
        this.skipSpace();
        current.params[word.toLowerCase()] = s[this.i] === '"' ? this.quoted() : this.bareValue();
        continue;
      }
      // A new challenge: the scheme, then optionally a token68.
      this.i = afterWord;
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
      if (isSpace(s[this.i])) {
        this.skipSpace();
        const t68 = this.token68();
        if (t68 !== undefined) current.params[""] = t68;
      }
    }
    return out;
  }

  private skipSpace(): void {
    while (isSpace(this.s[this.i])) this.i++;
  }

  private skipSeparators(): void {
    while (isSpace(this.s[this.i]) || this.s[this.i] === ",") this.i++;
  }

  private token(): string {
    const start = this.i;
    while (this.i < this.s.length && TCHAR.test(this.s[this.i]!)) this.i++;
    return this.s.slice(start, this.i);
  }

  /** A quoted-string starting at the current '"'; an unterminated one runs to the end. */
  private quoted(): string {
    const s = this.s;
    this.i++; // opening quote
    let value = "";
    let chunk = this.i;
    while (this.i < s.length && s[this.i] !== '"') {
      if (s[this.i] === "\\" && this.i + 1 < s.length) {
        value += s.slice(chunk, this.i);
        this.i++;
        chunk = this.i; // keep the escaped character
      }
      this.i++;
    }
    value += s.slice(chunk, this.i);
    if (this.i < s.length) this.i++; // closing quote
    return value;
  }

  /** An unquoted value: up to the next comma or space (lenient: more than a strict token). */
  private bareValue(): string {
    const start = this.i;
    while (this.i < this.s.length && this.s[this.i] !== "," && !isSpace(this.s[this.i])) this.i++;
    return this.s.slice(start, this.i);
  }

  /** A token68 at the current position, only if it is followed by spaces and then a comma or the end. */
  private token68(): string | undefined {
    const s = this.s;
    let j = this.i;
    while (j < s.length && s[j] !== "," && !isSpace(s[j])) j++;
    const candidate = s.slice(this.i, j);
    if (!TOKEN68.test(candidate)) return undefined;
    let k = j;
    while (isSpace(s[k])) k++;
    if (k < s.length && s[k] !== ",") return undefined;
    // `realm=x` and `realm="x"` are not token68 (the regex rejects them); `scheme name=` alone is ambiguous
    // and read as a token68, as RFC 7235's grammar prefers.
    this.i = j;
    return candidate;
  }
}
