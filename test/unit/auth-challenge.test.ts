import { describe, expect, it } from "vitest";
import { parseWWWAuthenticate } from "../../src/auth/challenge.js";

describe("parseWWWAuthenticate", () => {
  it.each<[string, string | string[] | undefined, Array<{ scheme: string; params: Record<string, string> }>]>([
    ["nothing", undefined, []],
    ["empty", "", []],
    ["Distribution Basic", 'Basic realm="basic-realm"', [{ scheme: "basic", params: { realm: "basic-realm" } }]],
    [
      "Distribution token challenge with scope and error",
      'Bearer realm="http://127.0.0.1:5001/token",service="test-registry",scope="repository:foo/bar:pull,push",error="insufficient_scope"',
      [{ scheme: "bearer", params: { realm: "http://127.0.0.1:5001/token", service: "test-registry", scope: "repository:foo/bar:pull,push", error: "insufficient_scope" } }],
    ],
    [
      "Docker Hub",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
      [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io" } }],
    ],
    ["scheme case folded", 'BEARER Realm="x"', [{ scheme: "bearer", params: { realm: "x" } }]],
    ["unquoted values", "Bearer realm=https://a/token,service=svc", [{ scheme: "bearer", params: { realm: "https://a/token", service: "svc" } }]],
    ["spaces around =", 'Bearer realm = "r" , service= "s"', [{ scheme: "bearer", params: { realm: "r", service: "s" } }]],
    ["escaped quotes", 'Basic realm="say \\"hi\\""', [{ scheme: "basic", params: { realm: 'say "hi"' } }]],
    [
      "scope with spaces (several scopes)",
      'Bearer realm="r",scope="repository:a:pull repository:b:pull,push"',
      [{ scheme: "bearer", params: { realm: "r", scope: "repository:a:pull repository:b:pull,push" } }],
    ],
    [
      "two challenges in one header",
      'Basic realm="x", Bearer realm="y",service="z"',
      [
        { scheme: "basic", params: { realm: "x" } },
        { scheme: "bearer", params: { realm: "y", service: "z" } },
      ],
    ],
    [
      "two header values",
      ['Basic realm="x"', 'Bearer realm="y"'],
      [
        { scheme: "basic", params: { realm: "x" } },
        { scheme: "bearer", params: { realm: "y" } },
      ],
    ],
    ["token68", "Negotiate abc123==", [{ scheme: "negotiate", params: { "": "abc123==" } }]],
    [
      "token68 then another challenge",
      'Negotiate abc==, Basic realm="r"',
      [
        { scheme: "negotiate", params: { "": "abc==" } },
        { scheme: "basic", params: { realm: "r" } },
      ],
    ],
    ["scheme alone", "Basic", [{ scheme: "basic", params: {} }]],
    ["commas inside quotes", 'Bearer realm="a,b,c",service="s"', [{ scheme: "bearer", params: { realm: "a,b,c", service: "s" } }]],
    ["empty quoted value", 'Bearer realm="",service="s"', [{ scheme: "bearer", params: { realm: "", service: "s" } }]],
    ["param names lowercased", 'Bearer REALM="r",Service="s"', [{ scheme: "bearer", params: { realm: "r", service: "s" } }]],
    ["trailing comma", 'Basic realm="r",', [{ scheme: "basic", params: { realm: "r" } }]],
    ["unterminated quote", 'Bearer realm="oops', [{ scheme: "bearer", params: { realm: "oops" } }]],
    ["realm with query", 'Bearer realm="https://h/token?account=x&y=1"', [{ scheme: "bearer", params: { realm: "https://h/token?account=x&y=1" } }]],
  ])("%s", (_name, header, expected) => {
    expect(parseWWWAuthenticate(header)).toEqual(expected);
  });

  it("never throws on garbage", () => {
    for (const junk of ["===", '"', ",,,", "\u0000\u0001", 'a="b" c', "Bearer ,=,=\"", "\\"]) {
      expect(() => parseWWWAuthenticate(junk)).not.toThrow();
    }
  });
});
