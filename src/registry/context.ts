import { TokenCache } from "../auth/token-cache.js";
import { getCredential, type Credential, type CredentialOptions } from "../auth/credentials.js";
import { RegcliError } from "../errors.js";
import { apiHost, isLoopbackHost } from "../reference/index.js";
import { HttpTransport, type TransportOptions } from "../transport/http.js";
import { RegistryClient, type Endpoint } from "./client.js";
import { SchemeCache } from "./scheme-cache.js";
import { findRule, rewrite, type MirrorUse, type RegistryRule } from "./rules.js";

export interface RegistryContextOptions extends TransportOptions {
  /** Speak plain HTTP to every registry of this command (--plain-http). */
  plainHttp?: boolean;
  /** Registries (host[:port]) that may use plain HTTP and unverified TLS, like Docker's insecure-registries. */
  insecureRegistries?: string[];
  /** Mirror URLs for docker.io, tried in order before docker.io itself (Docker's registry-mirrors). */
  mirrors?: string[];
  /** registries.conf's [[registry]] rules: mirrors for pulls, insecure and blocked registries. */
  registryRules?: RegistryRule[];
  /** Credentials given on the command line, for one registry only. */
  credentialOverride?: { registry: string; credential: Credential };
  credentialOptions?: CredentialOptions;
  /** Upload blobs in PATCH chunks of this many bytes (--chunk-size). */
  chunkSize?: number;
  /**
   * --cert-dir: the CA certificates and client certificate for the registries of this command are read from this
   * directory itself (skopeo's and podman's --cert-dir), instead of their certs.d directories.
   */
  certDir?: string;
  /**
   * Keep Bearer tokens in memory only, never in the token cache file (a long-running server: no synchronous file
   * I/O on its event loop, nothing left on disk); each client reuses its tokens until they expire.
   */
  memoryTokens?: boolean;
}

/** One place a pull may read a repository from: a mirror or the registry itself. */
export interface PullEndpoint {
  client: RegistryClient;
  repository: string;
  /** Which references it serves (registries.conf's pull-from-mirror); the registry itself serves all. */
  use: MirrorUse;
}

/**
 * Everything a command needs to talk to registries: transports, one client per endpoint (so the /v2/ ping,
 * the scheme and the tokens are shared within a command), credentials and mirrors. Created once by the CLI.
 */
export class RegistryContext {
  private readonly transports: { secure: HttpTransport; insecure?: HttpTransport };
  private readonly clients = new Map<string, RegistryClient>();
  /** The hosts of the registries (and mirrors) this command talks to, on both sides: --cert-dir is for them only. */
  private readonly registryHosts: Set<string>;
  private readonly sides: { source?: RegistryContext; destination?: RegistryContext } = {};
  readonly mirrors: string[];
  private readonly schemes = new SchemeCache();
  private readonly tokens: TokenCache | undefined;

  constructor(
    readonly options: RegistryContextOptions = {},
    shared?: RegistryContext,
  ) {
    this.registryHosts = shared?.registryHosts ?? new Set();
    const { certDir } = options;
    // Token services and storage redirects are other hosts: they never get the registry's client certificate.
    if (certDir !== undefined && !shared) {
      this.options = { ...options, certDirFor: (host) => ({ dir: this.registryHosts.has(host) ? certDir : undefined, explicit: true }) };
    }
    this.transports = shared?.transports ?? { secure: new HttpTransport(this.options) };
    this.tokens = shared ? shared.tokens : options.memoryTokens ? undefined : new TokenCache();
    this.mirrors = options.mirrors ?? [];
  }

  /** Where a two-sided command (copy, sync) reads: this context unless the source side has its own credentials. */
  get source(): RegistryContext {
    return this.sides.source ?? this;
  }

  /** Where a two-sided command writes: this context unless the destination side has its own credentials. */
  get destination(): RegistryContext {
    return this.sides.destination ?? this;
  }

  /**
   * Give one side its own credentials (--src-creds, --dest-authfile...): its own clients, so no token or
   * credential crosses to the other side even on the same registry; the same connections.
   */
  setSide(side: "source" | "destination", credentials: Pick<RegistryContextOptions, "credentialOverride" | "credentialOptions">): void {
    this.sides[side] = new RegistryContext({ ...this.options, ...credentials }, this);
  }

  /**
   * The registries.conf rule covering `name` (a registry, or registry/repository); a blocked one is refused here,
   * before any request.
   */
  private ruleFor(name: string): RegistryRule | undefined {
    const rule = findRule(this.options.registryRules ?? [], name);
    if (rule?.blocked) {
      throw new RegcliError("usage", `refused: ${name} is blocked by ${rule.source} ([[registry]] "${rule.prefix}" has blocked = true)`, {
        hint: "remove that entry or set blocked = false to use it",
      });
    }
    return rule;
  }

  private endpointClient(registry: string, insecureByRule: boolean): RegistryClient {
    const insecure = insecureByRule || (this.options.insecureRegistries?.includes(registry) ?? false);
    const key = insecure ? `insecure:${registry}` : registry;
    let client = this.clients.get(key);
    if (!client) {
      const endpoint: Endpoint = {
        registry,
        host: apiHost(registry),
        scheme: this.options.plainHttp ? "http" : undefined,
        loopback: isLoopbackHost(registry) || insecure,
      };
      this.registryHosts.add(new URL(`https://${endpoint.host}`).host);
      client = new RegistryClient(endpoint, this.transportFor(insecure), this.credentialsFor(registry), this.schemes, this.tokens);
      this.clients.set(key, client);
    }
    return client;
  }

  private transportFor(insecure: boolean): HttpTransport {
    if (!insecure) return this.transports.secure;
    this.transports.insecure ??= new HttpTransport({ ...this.options, insecure: true });
    return this.transports.insecure;
  }

  private credentialsFor(registry: string): () => Promise<Credential | undefined> {
    const override = this.options.credentialOverride;
    if (override && override.registry === registry) return async () => override.credential;
    return () => getCredential(registry, this.options.credentialOptions);
  }

  /**
   * The client for a registry named as references name it ("docker.io", "localhost:5000"), for any request
   * (pushes and deletes too); with the repository, a registries.conf rule for a namespace applies as well.
   */
  client(registry: string, repository?: string): RegistryClient {
    const rule = this.ruleFor(repository === undefined ? registry : `${registry}/${repository}`);
    return this.endpointClient(registry, rule?.insecure ?? false);
  }

  /**
   * Where a pull of a repository reads from, in order: its mirrors, then the registry itself (as registries.conf's
   * location may rename it). Mirrors of docker.io come from regcli's registry-mirrors when set (they win over
   * registries.conf), else from registries.conf, as do every other registry's. Pulls only: pushes use client().
   */
  pullEndpoints(ref: { registry: string; repository: string }): PullEndpoint[] {
    const name = `${ref.registry}/${ref.repository}`;
    const rules = this.options.registryRules ?? [];
    const rule = this.ruleFor(name);
    // Each endpoint's own name is looked up again, as containers/image does: its rule may make it insecure, and
    // a mirror that is blocked is skipped (the registry itself, blocked, is refused).
    const at = (location: string, insecure: boolean, use: MirrorUse, mirror: boolean): PullEndpoint[] => {
      const target = rule ? rewrite(name, rule, location) : ref;
      const targetName = `${target.registry}/${target.repository}`;
      const targetRule = mirror ? findRule(rules, targetName) : this.ruleFor(targetName);
      if (targetRule?.blocked) return [];
      return [{ client: this.endpointClient(target.registry, insecure || (targetRule?.insecure ?? false)), repository: target.repository, use }];
    };
    const mirrors =
      ref.registry === "docker.io" && this.mirrors.length
        ? this.mirrorClients().map((client): PullEndpoint => ({ client, repository: ref.repository, use: "all" }))
        : (rule?.mirrors ?? []).flatMap((m) => at(m.location, m.insecure, m.use, true));
    return [...mirrors, ...at(rule?.location ?? "", rule?.insecure ?? false, "all", false)];
  }

  /** Clients for regcli's own docker.io mirrors (URLs, as Docker's registry-mirrors), in order. */
  private mirrorClients(): RegistryClient[] {
    return this.mirrors.map((text) => this.urlClient(text, "registry mirror"));
  }

  /**
   * The client for a registry given as a URL (a mirror, `regcli serve --proxy`'s upstream): its scheme as written,
   * its credentials looked up under its registry name (Docker Hub's API host is docker.io).
   */
  urlClient(text: string, what: string): RegistryClient {
    const { url, registry } = registryOfUrl(text, what);
    const key = `mirror:${url.protocol}//${url.host}`;
    let client = this.clients.get(key);
    if (!client) {
      const endpoint: Endpoint = {
        registry,
        host: registry === "docker.io" ? apiHost(registry) : url.host,
        scheme: url.protocol === "http:" ? "http" : "https",
        loopback: isLoopbackHost(url.host),
      };
      const insecure = this.options.insecureRegistries?.includes(url.host) ?? false;
      this.registryHosts.add(url.host);
      client = new RegistryClient(endpoint, this.transportFor(insecure), this.credentialsFor(registry), undefined, this.tokens);
      this.clients.set(key, client);
    }
    return client;
  }

  async close(abort = false): Promise<void> {
    await Promise.all([this.transports.secure.close(abort), this.transports.insecure?.close(abort)]);
  }
}

/** A registry URL ("https://registry-1.docker.io", "http://127.0.0.1:5001") and the registry name its credentials are under. */
export function registryOfUrl(text: string, what: string): { url: URL; registry: string } {
  let url: URL;
  try {
    url = new URL(text.includes("://") ? text : `https://${text}`);
  } catch {
    throw new RegcliError("usage", `invalid ${what} "${text}": expected a URL such as https://mirror.example.com`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RegcliError("usage", `invalid ${what} "${text}": expected an http:// or https:// URL`);
  const hub = url.host === apiHost("docker.io") || url.host === "index.docker.io" || url.host === "docker.io";
  return { url, registry: hub ? "docker.io" : url.host };
}
