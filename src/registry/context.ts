import { getCredential, type Credential, type CredentialOptions } from "../auth/credentials.js";
import { RegcliError } from "../errors.js";
import { apiHost, isLoopbackHost } from "../reference/index.js";
import { HttpTransport, type TransportOptions } from "../transport/http.js";
import { RegistryClient, type Endpoint } from "./client.js";

export interface RegistryContextOptions extends TransportOptions {
  /** Speak plain HTTP to every registry of this command (--plain-http). */
  plainHttp?: boolean;
  /** Registries (host[:port]) that may use plain HTTP and unverified TLS, like Docker's insecure-registries. */
  insecureRegistries?: string[];
  /** Mirror URLs for docker.io, tried in order before docker.io itself (Docker's registry-mirrors). */
  mirrors?: string[];
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
}

/**
 * Everything a command needs to talk to registries: transports, one client per endpoint (so the /v2/ ping,
 * the scheme and the tokens are shared within a command), credentials and mirrors. Created once by the CLI.
 */
export class RegistryContext {
  private readonly secure: HttpTransport;
  private insecure: HttpTransport | undefined;
  private readonly clients = new Map<string, RegistryClient>();
  /** The hosts of the registries (and mirrors) this command talks to: --cert-dir is for them only. */
  private readonly registryHosts = new Set<string>();
  readonly mirrors: string[];

  constructor(readonly options: RegistryContextOptions = {}) {
    const { certDir } = options;
    // Token services and storage redirects are other hosts: they never get the registry's client certificate.
    if (certDir !== undefined) this.options = { ...options, certDirFor: (host) => ({ dir: this.registryHosts.has(host) ? certDir : undefined, explicit: true }) };
    this.secure = new HttpTransport(this.options);
    this.mirrors = options.mirrors ?? [];
  }

  private transportFor(registry: string): HttpTransport {
    if (!this.options.insecureRegistries?.includes(registry)) return this.secure;
    this.insecure ??= new HttpTransport({ ...this.options, insecure: true });
    return this.insecure;
  }

  private credentialsFor(registry: string): () => Promise<Credential | undefined> {
    const override = this.options.credentialOverride;
    if (override && override.registry === registry) return async () => override.credential;
    return () => getCredential(registry, this.options.credentialOptions);
  }

  /** The client for a registry named as references name it ("docker.io", "localhost:5000"). */
  client(registry: string): RegistryClient {
    let client = this.clients.get(registry);
    if (!client) {
      const insecure = this.options.insecureRegistries?.includes(registry) ?? false;
      const endpoint: Endpoint = {
        registry,
        host: apiHost(registry),
        scheme: this.options.plainHttp ? "http" : undefined,
        loopback: isLoopbackHost(registry) || insecure,
      };
      this.registryHosts.add(new URL(`https://${endpoint.host}`).host);
      client = new RegistryClient(endpoint, this.transportFor(registry), this.credentialsFor(registry));
      this.clients.set(registry, client);
    }
    return client;
  }

  /** Clients for the mirrors configured for a registry (docker.io only, as in Docker), in order. */
  mirrorClients(registry: string): RegistryClient[] {
    if (registry !== "docker.io") return [];
    return this.mirrors.map((text) => {
      let url: URL;
      try {
        url = new URL(text.includes("://") ? text : `https://${text}`);
      } catch {
        throw new RegcliError("usage", `invalid registry mirror "${text}": expected a URL such as https://mirror.example.com`);
      }
      const key = `mirror:${url.protocol}//${url.host}`;
      let client = this.clients.get(key);
      if (!client) {
        const endpoint: Endpoint = {
          registry: url.host,
          host: url.host,
          scheme: url.protocol === "http:" ? "http" : "https",
          loopback: isLoopbackHost(url.host),
        };
        this.registryHosts.add(url.host);
        client = new RegistryClient(endpoint, this.transportFor(url.host), this.credentialsFor(url.host));
        this.clients.set(key, client);
      }
      return client;
    });
  }

  async close(abort = false): Promise<void> {
    await Promise.all([this.secure.close(abort), this.insecure?.close(abort)]);
  }
}
