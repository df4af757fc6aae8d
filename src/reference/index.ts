/**
 * Image references, parsed the way Docker parses them (distribution/reference: ParseNormalizedNamed followed by
 * TagNameOnly). Pure functions, no I/O. Every invalid input raises InvalidReferenceError (kind "usage").
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path
 *   domain     := host [ ":" port ]          host := domain-name | "[" IPv6 "]"
 *   path       := component ( "/" component )*
 *   component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
 */
import { InvalidReferenceError } from "../errors.js";

export interface Reference {
  /** "docker.io", "localhost:5000", "my.reg.io", "[::1]:5000". */
  registry: string;
  /** Repository path inside the registry: "library/busybox", "a/b/c". */
  repository: string;
  /** Undefined only when a digest is given without a tag, or when parsed with defaultTag:false. */
  tag?: string;
  /** "sha256:<64 hex>" or "sha512:<128 hex>". */
  digest?: string;
  /** registry + "/" + repository. */
  name: string;
  /** name[:tag][@digest]. */
  full: string;
  /** Docker's familiar form: "busybox:latest", "user/app:1", "localhost:5000/app:latest". */
  familiar: string;
}

export interface ParseOptions {
  /** Add the tag "latest" when neither tag nor digest is given (default true). */
  defaultTag?: boolean;
}

export type ListTarget =
  | { kind: "registry"; registry: string }
  | { kind: "repository"; registry: string; repository: string };

const DEFAULT_REGISTRY = "docker.io";
const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/**
 * The one other name Docker's reference grammar folds into docker.io. Any other host (registry-1.docker.io,
 * registry.hub.docker.com) is another registry as far as names and credentials go, even if it serves the same content.
 */
const DOCKER_HUB_ALIASES = new Set(["index.docker.io"]);
const OFFICIAL_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const MAX_PATH_LENGTH = 255;

const DOMAIN_COMPONENT = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
const HOST_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_ALGORITHM_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

// ---------------------------------------------------------------------------------------------------------------
// Validators returning a reason (undefined when valid); the exported validate* functions throw.

function tagProblem(tag: string): string | undefined {
  if (tag === "") return "empty tag";
  if (tag.length > 128) return `tag is longer than 128 characters (${tag.length})`;
  if (!TAG_RE.test(tag)) return "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
  return undefined;
}

function digestProblem(digest: string): string | undefined {
  if (digest === "") return "empty digest";
  const colon = digest.indexOf(":");
  if (colon < 0) return "digest must have the form ALGORITHM:HEX, e.g. sha256:<64 hex characters>";
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  if (algorithm === "") return "digest is missing its algorithm (expected e.g. sha256:<64 hex characters>)";
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) {
    if (DIGEST_ALGORITHM_RE.test(algorithm)) return `unsupported digest algorithm "${algorithm}" (use sha256 or sha512)`;
    if (DIGEST_ALGORITHM_RE.test(algorithm.toLowerCase())) {
      return `digest algorithm "${algorithm}" must be lowercase`;
    }
    return `invalid digest algorithm "${algorithm}"`;
  }
  if (encoded === "") return `${algorithm} digest is missing its hex value`;
  if (!/^[0-9a-fA-F]+$/.test(encoded)) return `${algorithm} digest must contain only hex characters`;
  if (encoded.length !== expected) {
    return `${algorithm} digest must have ${expected} hex characters (got ${encoded.length})`;
  }
  if (encoded !== encoded.toLowerCase()) return `${algorithm} digest hex must be lowercase`;
  return undefined;
}

/** Checks a repository path as the user wrote it; the length limit is checked on the normalized path. */
function pathProblem(path: string): string | undefined {
  if (path === "") return "missing repository name";
  if (path !== path.toLowerCase()) return "repository name must be lowercase";
  const components = path.split("/");
  if (components.some((c) => c === "")) {
    return "repository path must not start or end with \"/\" or contain \"//\"";
  }
  for (const component of components) {
    if (PATH_COMPONENT_RE.test(component)) continue;
    if (/[^a-z0-9._-]/.test(component)) {
      return `repository name component "${component}" may only contain lowercase letters, digits, ".", "_" and "-"`;
    }
    return (
      `repository name component "${component}" must start and end with a letter or digit, and use only ` +
      `".", "_", "__" or runs of "-" as separators`
    );
  }
  return undefined;
}

function lengthProblem(path: string): string | undefined {
  return path.length > MAX_PATH_LENGTH
    ? `repository path is longer than ${MAX_PATH_LENGTH} characters (${path.length})`
    : undefined;
}

function hostProblem(host: string): string | undefined {
  if (host === "") return "empty registry host";
  if (HOST_RE.test(host)) return undefined;
  const port = /^(.*?):([^:\]]*)$/.exec(host);
  if (port && !host.startsWith("[") && port[2] !== undefined && !/^[0-9]+$/.test(port[2])) {
    return `registry port "${port[2]}" must be a number`;
  }
  return `"${host}" is not a valid registry host (letters, digits and inner "-" in "."-separated parts, optional :port, or [IPv6])`;
}

function fail(input: string, reason: string | undefined): void {
  if (reason !== undefined) throw new InvalidReferenceError(input, reason);
}

export function validateTag(tag: string): void {
  fail(tag, tagProblem(tag));
}

export function validateDigest(digest: string): void {
  fail(digest, digestProblem(digest));
}

export function validateRepository(repo: string): void {
  fail(repo, pathProblem(repo) ?? lengthProblem(repo));
}

// ---------------------------------------------------------------------------------------------------------------

function normalizeRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DEFAULT_REGISTRY : registry;
}

/**
 * Docker's splitDockerDomain: the first "/"-separated component is a registry when it is "localhost", contains
 * "." or ":", or is not all lowercase; otherwise the registry is docker.io. Returns the path as written (no
 * "library/" added yet).
 */
function splitDomain(name: string): { registry: string; path: string; explicit: boolean } {
  const slash = name.indexOf("/");
  if (slash < 0) return { registry: DEFAULT_REGISTRY, path: name, explicit: false };
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  if (first === "localhost" || /[.:]/.test(first) || first.toLowerCase() !== first) {
    return { registry: normalizeRegistry(first), path: rest, explicit: true };
  }
  return { registry: DEFAULT_REGISTRY, path: name, explicit: false };
}

function officialPath(registry: string, path: string): string {
  return registry === DEFAULT_REGISTRY && !path.includes("/") ? OFFICIAL_PREFIX + path : path;
}

function familiarName(registry: string, repository: string): string {
  if (registry !== DEFAULT_REGISTRY) return `${registry}/${repository}`;
  if (repository.startsWith(OFFICIAL_PREFIX)) {
    const rest = repository.slice(OFFICIAL_PREFIX.length);
    if (!rest.includes("/")) return rest;
  }
  return repository;
}

function build(registry: string, repository: string, tag: string | undefined, digest: string | undefined): Reference {
  const suffix = (tag !== undefined ? `:${tag}` : "") + (digest !== undefined ? `@${digest}` : "");
  const name = `${registry}/${repository}`;
  const ref: Reference = {
    registry,
    repository,
    name,
    full: name + suffix,
    familiar: familiarName(registry, repository) + suffix,
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Checks shared by every reference form: not empty, no whitespace, no URL scheme. */
function rejectMalformedText(text: string): void {
  if (text === "") throw new InvalidReferenceError(text, "empty reference");
  if (/\s/.test(text)) throw new InvalidReferenceError(text, "reference must not contain whitespace");
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text);
  if (scheme) throw new InvalidReferenceError(text, `a reference has no URL scheme; drop "${scheme[0]}"`);
}

/** Parses "name[:tag][@digest]" the way `docker pull` does; adds tag "latest" when neither tag nor digest is given. */
export function parseReference(text: string, options: ParseOptions = {}): Reference {
  const defaultTag = options.defaultTag ?? true;
  function bad(reason: string): never {
    throw new InvalidReferenceError(text, reason);
  }

  rejectMalformedText(text);
  if (IMAGE_ID_RE.test(text)) bad("looks like an image ID; use NAME@sha256:... to refer to an image by digest");

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest === "") bad('missing digest after "@"');
    if (digest.includes("@")) bad('more than one "@"');
    fail(text, digestProblem(digest));
  }

  const { registry, path: remainder, explicit } = splitDomain(rest);
  if (explicit) fail(text, hostProblem(registry));

  let path = remainder;
  let tag: string | undefined;
  const colon = remainder.indexOf(":");
  if (colon >= 0) {
    path = remainder.slice(0, colon);
    tag = remainder.slice(colon + 1);
  }
  if (path === "") bad(explicit ? `missing repository name after registry "${registry}"` : "missing repository name");
  fail(text, pathProblem(path));
  if (tag !== undefined) {
    if (tag === "") bad('missing tag after ":"');
    fail(text, tagProblem(tag));
  }

  const repository = officialPath(registry, path);
  fail(text, lengthProblem(repository));

  if (tag === undefined && digest === undefined && defaultTag) tag = DEFAULT_TAG;
  return build(registry, repository, tag, digest);
}

/** Validates the parts and recomputes name/full/familiar (Docker Hub aliases fold to docker.io, "library/" added). */
export function formatReference(ref: Pick<Reference, "registry" | "repository" | "tag" | "digest">): Reference {
  const shown =
    `${ref.registry}/${ref.repository}` +
    (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
  fail(shown, hostProblem(ref.registry));
  fail(shown, pathProblem(ref.repository));
  if (ref.tag !== undefined) fail(shown, tagProblem(ref.tag));
  if (ref.digest !== undefined) fail(shown, digestProblem(ref.digest));
  const registry = normalizeRegistry(ref.registry);
  const repository = officialPath(registry, ref.repository);
  fail(shown, lengthProblem(repository));
  return build(registry, repository, ref.tag, ref.digest);
}

/** What to ask a registry for: the digest when there is one, else the tag (latest when none). */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The same repository with another tag; any digest is dropped. */
export function withTag(ref: Reference, tag: string): Reference {
  validateTag(tag);
  return formatReference({ registry: ref.registry, repository: ref.repository, tag });
}

/** The same repository pinned to a digest; any tag is dropped. */
export function withDigest(ref: Reference, digest: string): Reference {
  validateDigest(digest);
  return formatReference({ registry: ref.registry, repository: ref.repository, digest });
}

/** The host to send registry API requests to: Docker Hub's API lives at registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

// ---------------------------------------------------------------------------------------------------------------

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    octets.push(value);
  }
  return octets;
}

/** Eight 16-bit groups, or undefined when not an IPv6 address (zone identifiers are not accepted). */
function parseIPv6(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? "";
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0] ?? "");
  if (!head) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const tail = groupsOf(halves[1] ?? "");
  if (!tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** The host of "host[:port]", "[v6][:port]" or a bare IPv6 address, without brackets or port. */
function hostOnly(registry: string): string {
  if (registry.startsWith("[")) {
    const close = registry.indexOf("]");
    return close < 0 ? registry : registry.slice(1, close);
  }
  const colons = registry.split(":").length - 1;
  if (colons === 1) return registry.slice(0, registry.indexOf(":"));
  return registry; // no port, or a bare IPv6 address such as "::1"
}

/** True when the registry's host is "localhost", in 127.0.0.0/8, or ::1 (also IPv4-mapped ::ffff:127.x.x.x). */
export function isLoopbackHost(registry: string): boolean {
  const host = hostOnly(registry).toLowerCase();
  if (host === "localhost") return true;
  const v4 = parseIPv4(host);
  if (v4) return v4[0] === 127;
  const v6 = parseIPv6(host);
  if (!v6) return false;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return true;
  const mapped = v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff;
  return mapped && (v6[6] ?? 0) >> 8 === 127;
}

// ---------------------------------------------------------------------------------------------------------------

function looksLikeHost(text: string): boolean {
  return text === "localhost" || /[.:]/.test(text) || text.startsWith("[");
}

/**
 * What `ls` lists: a bare registry ("localhost:5000", "my.reg.io", "docker.io", "[::1]:5000", optionally with a
 * trailing "/") or a repository ("localhost:5000/app", "busybox" = docker.io/library/busybox). Tags and digests
 * are refused.
 */
export function parseListTarget(text: string): ListTarget {
  function bad(reason: string): never {
    throw new InvalidReferenceError(text, reason);
  }
  rejectMalformedText(text);

  const bare = text.endsWith("/") ? text.slice(0, -1) : text;
  if (!bare.includes("/") && looksLikeHost(bare)) {
    const problem = hostProblem(bare);
    if (problem === undefined) return { kind: "registry", registry: normalizeRegistry(bare) };
    if (bare === text) {
      // "busybox:1" or "app@sha256:..." contain ":" too: say why they are refused as what they look like.
      let ref: Reference | undefined;
      try {
        ref = parseReference(text, { defaultTag: false });
      } catch {
        ref = undefined;
      }
      if (ref && (ref.tag !== undefined || ref.digest !== undefined)) {
        bad(`not a registry host (${problem}), and a list target cannot include a tag or digest`);
      }
    }
    bad(problem);
  }

  const ref = parseReference(text, { defaultTag: false });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    bad("a list target is a registry or a repository; it cannot include a tag or digest");
  }
  return { kind: "repository", registry: ref.registry, repository: ref.repository };
}
