/** An HTTP authentication challenge (RFC 7235) as registries send it in WWW-Authenticate. */
export interface Challenge {
  /** Lowercased: "bearer", "basic", ... */
  scheme: string;
  /** Parameter names lowercased; a token68 form is stored under "". */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

/**
 * Parse one or more WWW-Authenticate values. Several challenges may share one header, separated by commas,
 * and quoted values may contain commas, spaces and escaped quotes. Never throws: garbage yields what parsed.
 */
export function parseWWWAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) out.push(...parseOne(value));
  return out;
}

function parseOne(input: string): Challenge[] {
  const challenges: Challenge[] = [];
  let s = input;
  let current: Challenge | undefined;
  const skipSpace = () => {
    s = s.replace(/^[\s]+/, "");
  };
  while (s.length > 0) {
    skipSpace();
    if (s.startsWith(",")) {
      s = s.slice(1);
      continue;
    }
    const tok = TOKEN.exec(s);
    if (!tok) {
      s = s.slice(1); // skip a character we cannot make sense of
      continue;
    }
    const word = tok[0];
    const rest = s.slice(word.length);
    const afterSpace = rest.replace(/^\s*/, "");
    if (current && afterSpace.startsWith("=") && !afterSpace.startsWith("==")) {
      // auth-param: name = value
      s = afterSpace.slice(1).replace(/^\s*/, "");
      let value = "";
      if (s.startsWith('"')) {
        let i = 1;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        s = s.slice(i + 1);
      } else {
        const m = /^[^,\s]*/.exec(s)!;
        value = m[0];
        s = s.slice(value.length);
      }
      current.params[word.toLowerCase()] = value;
      continue;
    }
    // a new challenge: scheme, optionally followed by a token68
    current = { scheme: word.toLowerCase(), params: {} };
    challenges.push(current);
    s = rest;
    const t68 = /^\s+([A-Za-z0-9\-._~+/]+=*)\s*(?=,|$)/.exec(s);
    if (t68 && !/^\s+[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=[^=]/.test(s)) {
      current.params[""] = t68[1]!;
      s = s.slice(t68[0].length);
    }
  }
  return challenges;
}
