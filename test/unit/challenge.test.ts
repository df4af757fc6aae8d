// WWW-Authenticate parsing (RFC 7235) with the headers registries really send.
import { describe, expect, it } from "vitest";
import { parseWWWAuthenticate, type Challenge } from "../../src/auth/challenge.js";

const bearer = (params: Record<string, string>): Challenge => ({ scheme: "bearer", params });
const basic = (params: Record<string, string>): Challenge => ({ scheme: "basic", params });

describe("parseWWWAuthenticate", () => {
  it.each<[string, string | string[] | undefined, Challenge[]]>([
    ["undefined", undefined, []],
    ["empty string", "", []],
    ["empty array", [], []],
    ["only spaces and commas", " , ,  ", []],
    ["Distribution basic auth", 'Basic realm="basic-realm"', [basic({ realm: "basic-realm" })]],
    [
      "Distribution token auth with insufficient_scope",
      'Bearer realm="http://127.0.0.1:5001/token",service="test-registry",scope="repository:foo/bar:pull,push",error="insufficient_scope"',
      [
        bearer({
          realm: "http://127.0.0.1:5001/token",
          service: "test-registry",
          scope: "repository:foo/bar:pull,push",
          error: "insufficient_scope",
        }),
      ],
    ],
    [
      "Docker Hub",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      [bearer({ realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull" })],
    ],
    [
      "GHCR",
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
      [bearer({ realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:user/image:pull" })],
    ],
    [
      "several challenges in one header",
      'Basic realm="x", Bearer realm="y",service="z"',
      [basic({ realm: "x" }), bearer({ realm: "y", service: "z" })],
    ],
    [
      "several header values",
      ['Basic realm="x"', 'Bearer realm="y",service="z"'],
      [basic({ realm: "x" }), bearer({ realm: "y", service: "z" })],
    ],
    ["array with an empty value", ["", 'Basic realm="r"'], [basic({ realm: "r" })]],
    ["commas inside a quoted value", 'Bearer realm="a,b,c",service="s"', [bearer({ realm: "a,b,c", service: "s" })]],
    ['escaped \\" inside a quoted value', 'Basic realm="say \\"hi\\" now"', [basic({ realm: 'say "hi" now' })]],
    ["escaped backslash", 'Basic realm="a\\\\b"', [basic({ realm: "a\\b" })]],
    ["unquoted token values", "Bearer realm=https://a.example/token,service=svc", [bearer({ realm: "https://a.example/token", service: "svc" })]],
    ["spaces around =", 'Bearer realm = "r" , service= "s",scope =repo', [bearer({ realm: "r", service: "s", scope: "repo" })]],
    [
      "a scope with spaces (several scopes)",
      'Bearer realm="r",scope="repository:a:pull repository:b:pull"',
      [bearer({ realm: "r", scope: "repository:a:pull repository:b:pull" })],
    ],
    [
      "a scope with colons and a comma",
      'Bearer realm="r",scope="repository:foo:pull,push",service="s"',
      [bearer({ realm: "r", scope: "repository:foo:pull,push", service: "s" })],
    ],
    ["scheme and names case-folded, values kept", 'BEARER Realm="R",SERVICE="Svc"', [bearer({ realm: "R", service: "Svc" })]],
    ["token68", "Negotiate abc==", [{ scheme: "negotiate", params: { "": "abc==" } }]],
    ["token68 without padding", "NTLM TlRMTVNTUAAB+/x", [{ scheme: "ntlm", params: { "": "TlRMTVNTUAAB+/x" } }]],
    [
      "token68 then another challenge",
      'Negotiate abc=, Basic realm="r"',
      [{ scheme: "negotiate", params: { "": "abc=" } }, basic({ realm: "r" })],
    ],
    [
      "challenge without params between others",
      'Negotiate, Basic realm="r", Bearer realm="b"',
      [{ scheme: "negotiate", params: {} }, basic({ realm: "r" }), bearer({ realm: "b" })],
    ],
    ["scheme alone", "Basic", [basic({})]],
    ["empty quoted value", 'Bearer realm="",service="s"', [bearer({ realm: "", service: "s" })]],
    ["trailing and doubled commas", 'Bearer realm="r",,service="s",', [bearer({ realm: "r", service: "s" })]],
    ["tabs as whitespace", 'Bearer\trealm="r",\tservice="s"', [bearer({ realm: "r", service: "s" })]],
    ["realm with a query string", 'Bearer realm="https://h/token?account=x&y=1"', [bearer({ realm: "https://h/token?account=x&y=1" })]],
    ["unterminated quote runs to the end", 'Bearer service="s",realm="oops, still inside', [bearer({ service: "s", realm: "oops, still inside" })]],
    ["duplicate parameter: last wins", 'Bearer realm="a",realm="b"', [bearer({ realm: "b" })]],
    ["garbage before a challenge is skipped", '"junk" = Basic realm="r"', [basic({ realm: "r" })]],
  ])("%s", (_name, header, expected) => {
    expect(parseWWWAuthenticate(header)).toEqual(expected);
  });

  it("never throws on garbage", () => {
    const junk = ["===", '"', ",,,", "\u0000\u0001", 'a="b" c', 'Bearer ,=,="', "\\", 'Basic realm="\\', "=x", "Bearer realm=", "\u00e9\u00e8 r=1"];
    for (const header of junk) {
      expect(() => parseWWWAuthenticate(header)).not.toThrow();
      expect(Array.isArray(parseWWWAuthenticate(header))).toBe(true);
    }
  });

  it("returns what it could parse from a damaged header", () => {
    const got = parseWWWAuthenticate('Bearer realm="r",service="s",\u0001\u0002"');
    expect(got[0]).toEqual(bearer({ realm: "r", service: "s" }));
  });

  it("handles a long header in linear-ish time", () => {
    const scopes = Array.from({ length: 2000 }, (_, i) => `repository:r${i}:pull`).join(" ");
    const started = Date.now();
    const got = parseWWWAuthenticate(`Bearer realm="r",scope="${scopes}",${"x".repeat(50_000)}`);
    expect(got[0]!.params.scope).toBe(scopes);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
