import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { RegcliError, writingTo } from "../errors.js";
import { normalizeName } from "../locations/image-names.js";
import { OciLayout, REF_NAME } from "../locations/oci-layout.js";
import type { ImageSource, MountOrigin } from "../locations/types.js";
import type { Descriptor } from "../oci/index.js";
import { parseReference, type Reference } from "../reference/index.js";
import { crypto } from "../util/builtins.js";
import { makeDirectory } from "../util/files.js";
import { alive } from "./lock.js";

export const ORIGIN_ANNOTATION = "io.github.regcli.origin";

export interface StoreEntry {
  name: string;
  descriptor: Descriptor;
}

function parsedName(text: string): Reference | undefined {
  try {
    return parseReference(text, { defaultTag: false });
  } catch {
    return undefined;
  }
}

export function storeHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REGCLI_HOME) return env.REGCLI_HOME;
  const base = env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(base, "regcli");
}

/**
 * The local image store: an OCI layout at $REGCLI_HOME/store whose names are full references. Writers
 * register an ingest marker while they add blobs, so a concurrent garbage collection keeps blobs that a
 * running pull has written but not yet named.
 */
export class LocalStore {
  readonly layout: OciLayout;
  private readonly ingestDir: string;

  constructor(readonly home: string = storeHome()) {
    this.layout = new OciLayout(join(home, "store"), "the local store");
    this.ingestDir = join(home, "ingest");
  }

  async withIngest<T>(action: () => Promise<T>): Promise<T> {
    const end = await this.beginIngest();
    try {
      return await action();
    } finally {
      await end();
    }
  }

  /** Register a writer until the returned function is called (withIngest, for writes that span calls). */
  async beginIngest(): Promise<() => Promise<void>> {
    const marker = join(this.ingestDir, `${process.pid}-${crypto().randomBytes(4).toString("hex")}`);
    const end = () => rm(marker, { force: true }).catch(() => undefined);
    try {
      await writingTo(this.home, async () => {
        await makeDirectory(this.ingestDir);
        await writeFile(marker, String(process.pid));
      });
    } catch (err) {
      await end();
      throw err;
    }
    return end;
  }

  /**
   * The images an identifier names, in every form `images` prints: a name (busybox, name:tag, name@digest), the
   * repository with the digest shown for it (an image pulled by an index digest is stored as its platform's
   * manifest), or a digest, full or short (sha256:0123456789ab, or the hex alone).
   */
  async lookup(text: string): Promise<StoreEntry[]> {
    let entries: StoreEntry[];
    try {
      entries = await this.layout.names();
    } catch (err) {
      if (err instanceof RegcliError && err.kind === "not-found") return []; // no store yet
      throw err;
    }
    const ref = parsedName(text);
    if (ref) {
      const byName = entries.filter((e) => e.name === normalizeName(text));
      if (byName.length) return byName;
      if (ref.digest) {
        const byDigest = entries.filter((e) => e.descriptor.digest === ref.digest && parsedName(e.name)?.name === ref.name);
        if (byDigest.length) return byDigest;
      }
    }
    const short = /^(?:(sha256|sha512):)?([a-f0-9]{6,128})$/.exec(text);
    if (!short) return [];
    const prefix = `${short[1] ?? "sha256"}:${short[2]}`;
    return entries.filter((e) => e.descriptor.digest.startsWith(prefix));
  }

  /** The one image an identifier names (several names of one digest are one image); a clear error otherwise. */
  async findImage(text: string): Promise<StoreEntry> {
    const found = await this.lookup(text);
    if (!found.length) throw new RegcliError("not-found", `no image named ${normalizeName(text) ?? text} in the local store`, { hint: "see regcli images" });
    const digests = new Set(found.map((e) => e.descriptor.digest));
    if (digests.size > 1) {
      throw new RegcliError("usage", `${text} matches ${digests.size} images in the local store`, { hint: `name one: ${found.map((e) => e.name).join(", ")}` });
    }
    return found[0]!;
  }

  /** Start time of the oldest ingest still running (markers of dead processes are cleared). */
  private async oldestLiveIngest(): Promise<number | undefined> {
    let oldest: number | undefined;
    for (const name of await readdir(this.ingestDir).catch(() => [] as string[])) {
      const path = join(this.ingestDir, name);
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (!pid || !alive(pid)) {
        await rm(path, { force: true });
        continue;
      }
      const s = await stat(path).catch(() => undefined);
      if (s && (oldest === undefined || s.mtimeMs < oldest)) oldest = s.mtimeMs;
    }
    return oldest;
  }

  /** Remember which registry repository an image came from, so a push to that registry can mount its blobs. */
  async recordOrigin(name: string, origin: MountOrigin): Promise<void> {
    await this.layout.updateIndex((index) => {
      const entry = index.manifests.find((d) => d.annotations?.[REF_NAME] === name);
      if (entry) entry.annotations = { ...entry.annotations, [ORIGIN_ANNOTATION]: `${origin.registry}/${origin.repository}` };
    });
  }

  /** The store as a source for one image, carrying that image's origin for cross-repository mounts. */
  async sourceFor(name: string): Promise<ImageSource> {
    const entry = await this.layout.find(name).catch(() => undefined);
    const origin = entry?.annotations?.[ORIGIN_ANNOTATION];
    if (!origin) return this.layout;
    const slash = origin.indexOf("/");
    const layout = this.layout;
    const mountOrigin: MountOrigin = { registry: origin.slice(0, slash), repository: origin.slice(slash + 1) };
    return {
      description: layout.description,
      mountOrigin,
      getManifest: (reference) => layout.getManifest(reference),
      resolve: (reference) => layout.resolve(reference),
      openBlob: (desc, options) => layout.openBlob(desc, options),
      listTags: () => layout.listTags(),
      referrers: (digest, filter) => layout.referrers(digest, filter),
    };
  }

  async gc(): Promise<{ removed: number; bytes: number }> {
    await this.layout.init();
    const protect = await this.oldestLiveIngest();
    // Referrers whose image is gone go too: the store holds what `images` can name (see OciLayout.reachableBlobs).
    return this.layout.garbageCollect(protect === undefined ? undefined : protect - 1000, true);
  }
}
