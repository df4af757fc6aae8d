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
}

/**
 * Everything a command needs to talk to registries: transports, one client per endpoint (so the /v2/ ping,
 * the scheme and the tokens are shared within a command), credentials and mirrors. Created once by the CLI.
 */
export class RegistryContext {
  private readonly transports: { secure: HttpTransport; insecure?: HttpTransport };
  private readonly clients = new Map<string, RegistryClient>();
  private readonly sides: { source?: RegistryContext; destination?: RegistryContext } = {};
  readonly mirrors: string[];

  constructor(
    readonly options: RegistryContextOptions = {},
    shared?: RegistryContext,
  ) {
    this.transports = shared?.transports ?? { secure: new HttpTransport(options) };
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

  private transportFor(registry: string): HttpTransport {
    if (!this.options.insecureRegistries?.includes(registry)) return this.transports.secure;
    this.transports.insecure ??= new HttpTransport({ ...this.options, insecure: true });
    return this.transports.insecure;
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
        client = new RegistryClient(endpoint, this.transportFor(url.host), this.credentialsFor(url.host));
        this.clients.set(key, client);
      }
      return client;
    });
  }

  async close(abort = false): Promise<void> {
    await Promise.all([this.transports.secure.close(abort), this.transports.insecure?.close(abort)]);
  }
}
