import { InvalidReferenceError } from "../errors.js";

/** As in references: only index.docker.io means docker.io; every other host is kept as written. */
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io"]);
const HOST_PATTERN = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$/;

/**
 * A registry as given to login/logout: accepts what `docker login` accepts ("https://index.docker.io/v1/",
 * "myreg.io:5000") and returns the host[:port] form references use, with index.docker.io as docker.io.
 */
export function normalizeRegistryName(text: string): string {
  let host = text.trim().replace(/^[a-z]+:\/\//i, "");
  host = host.split("/")[0] ?? "";
  if (!host || !HOST_PATTERN.test(host)) throw new InvalidReferenceError(text, "not a registry host name");
  return DOCKER_HUB_ALIASES.has(host.toLowerCase()) ? "docker.io" : host;
}
