import { pipeline, type Readable } from "node:stream";
import { RegcliError } from "../errors.js";
import { VerifyingStream, type Descriptor, type ManifestData } from "../oci/index.js";
import type { Reference } from "../reference/index.js";
import type { RegistryClient } from "../registry/client.js";
import type { RegistryContext } from "../registry/context.js";
import type { BlobOutcome, ImageDestination, ImageSource, MountOrigin } from "./types.js";

/** One repository of one registry endpoint, readable and writable. */
export class RegistryRepository implements ImageSource, ImageDestination {
  readonly description: string;
  readonly mountOrigin: MountOrigin;

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
  ) {
    this.description = `${client.registry}/${repository}`;
    this.mountOrigin = { registry: client.registry, repository };
  }

  getManifest(reference: string): Promise<ManifestData> {
    return this.client.getManifest(this.repository, reference);
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    const { body, size } = await this.client.getBlob(this.repository, desc.digest);
    if (size !== undefined && size !== desc.size) {
      body.destroy();
      throw new RegcliError(
        "integrity",
        `blob ${desc.digest} from ${this.client.registry} has size ${size}, expected ${desc.size}`,
      );
    }
    const verifier = new VerifyingStream(desc.digest, desc.size, this.client.registry);
    return pipeline(body, verifier, () => undefined);
  }

  listTags(pageSize?: number): Promise<string[]> {
    return this.client.listTags(this.repository, pageSize);
  }

  async putBlob(desc: Descriptor, open: () => Promise<Readable>, mountFrom?: MountOrigin): Promise<BlobOutcome> {
    if (await this.client.headBlob(this.repository, desc.digest)) return "exists";
    let location: URL | undefined;
    if (mountFrom && mountFrom.registry === this.client.registry && mountFrom.repository !== this.repository) {
      const mount = await this.client.mountBlob(this.repository, desc.digest, mountFrom.repository);
      if (mount.mounted) return "mounted";
      location = mount.location;
    }
    const stream = await open();
    try {
      await this.client.putBlob(this.repository, { digest: desc.digest, size: desc.size }, stream, location);
    } catch (err) {
      stream.destroy();
      // A source that failed verification mid-stream aborts the upload; report the source's error, not the
      // aborted request's.
      const cause = (stream as { errored?: unknown }).errored;
      throw cause instanceof RegcliError ? cause : err;
    }
    return "uploaded";
  }

  async manifestDigest(reference: string): Promise<string | undefined> {
    return (await this.client.headManifest(this.repository, reference))?.digest;
  }

  async putManifest(manifest: ManifestData, reference: string): Promise<void> {
    await this.client.putManifest(this.repository, reference, manifest);
  }
}

/**
 * A docker.io repository read through the configured mirrors first, as Docker does: the first endpoint that
 * serves the manifest serves its blobs too; any failure on a mirror falls through to the next endpoint.
 */
export class MirroredSource implements ImageSource {
  readonly description: string;
  readonly mountOrigin: MountOrigin;
  private preferred: RegistryRepository | undefined;

  constructor(private readonly endpoints: RegistryRepository[]) {
    const origin = endpoints[endpoints.length - 1]!;
    this.description = origin.description;
    this.mountOrigin = origin.mountOrigin;
  }

  private ordered(): RegistryRepository[] {
    const p = this.preferred;
    return p ? [p, ...this.endpoints.filter((e) => e !== p)] : this.endpoints;
  }

  private async first<T>(action: (e: RegistryRepository) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (const endpoint of this.ordered()) {
      try {
        const result = await action(endpoint);
        this.preferred ??= endpoint;
        return result;
      } catch (err) {
        if (err instanceof RegcliError && err.kind === "integrity") throw err;
        lastError = err;
      }
    }
    throw lastError;
  }

  getManifest(reference: string): Promise<ManifestData> {
    return this.first((e) => e.getManifest(reference));
  }

  openBlob(desc: Descriptor): Promise<Readable> {
    return this.first((e) => e.openBlob(desc));
  }

  listTags(pageSize?: number): Promise<string[]> {
    return this.first((e) => e.listTags(pageSize));
  }
}

/** The image source for a reference: its registry, behind docker.io mirrors when any are configured. */
export function registrySource(ctx: RegistryContext, ref: Pick<Reference, "registry" | "repository">): ImageSource {
  const origin = new RegistryRepository(ctx.client(ref.registry), ref.repository);
  const mirrors = ctx.mirrorClients(ref.registry).map((c) => new RegistryRepository(c, ref.repository));
  return mirrors.length ? new MirroredSource([...mirrors, origin]) : origin;
}

export function registryDestination(ctx: RegistryContext, ref: Pick<Reference, "registry" | "repository">): RegistryRepository {
  return new RegistryRepository(ctx.client(ref.registry), ref.repository);
}
