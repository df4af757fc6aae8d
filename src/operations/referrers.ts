import { checkDescriptorSize, checkReferrerSubject, type Descriptor } from "../oci/index.js";
import { withSource } from "../locations/open.js";
import type { LocationSpec } from "../locations/parse.js";
import type { ImageSource } from "../locations/types.js";
import type { RegistryContext } from "../registry/context.js";

/** A referrer, with its own referrers when listed recursively (signatures of an SBOM). */
export interface ReferrerNode extends Descriptor {
  referrers?: ReferrerNode[];
}

export interface ReferrersResult {
  reference: string;
  /** The digest whose referrers these are. */
  subject: string;
  referrers: ReferrerNode[];
}

/** Referrers of referrers are followed this deep at most (a chain longer than that is cut, not looped). */
const MAX_DEPTH = 8;

/**
 * The referrers of an image (by tag or digest) in any location, narrowed to `artifactType` at the top level. With
 * `recursive`, each referrer is read (its size and subject must be as listed: a listing naming a manifest about
 * another digest is refused) and its own referrers listed, unfiltered.
 */
export async function listReferrers(ctx: RegistryContext, spec: LocationSpec, options: { artifactType?: string; recursive?: boolean } = {}): Promise<ReferrersResult> {
  return withSource(ctx, spec, async (o) => {
    const subject = (await o.source.resolve(o.reference)).digest;
    const top = await o.source.referrers(subject, { artifactType: options.artifactType });
    const referrers = options.recursive ? await descend(o.source, subject, top, new Set([subject]), 1) : top;
    return { reference: o.display, subject, referrers };
  });
}

async function descend(source: ImageSource, subject: string, listed: Descriptor[], seen: Set<string>, depth: number): Promise<ReferrerNode[]> {
  const out: ReferrerNode[] = [];
  for (const desc of listed) {
    const manifest = await source.getManifest(desc.digest);
    checkDescriptorSize(desc, manifest, source.description);
    checkReferrerSubject(manifest, subject, source.description);
    if (seen.has(desc.digest) || depth >= MAX_DEPTH) {
      out.push(desc);
      continue;
    }
    const below = await source.referrers(desc.digest);
    const node: ReferrerNode = { ...desc };
    if (below.length > 0) node.referrers = await descend(source, desc.digest, below, new Set([...seen, desc.digest]), depth + 1);
    out.push(node);
  }
  return out;
}
