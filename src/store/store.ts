import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { OciLayout, REF_NAME } from "../locations/oci-layout.js";
import type { ImageSource, MountOrigin } from "../locations/types.js";
import { writingTo } from "../errors.js";
import { makeDirectory } from "../util/files.js";
import { alive } from "./lock.js";

export const ORIGIN_ANNOTATION = "io.github.regcli.origin";

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
    const marker = join(this.ingestDir, `${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await writingTo(this.home, async () => {
        await makeDirectory(this.ingestDir);
        await writeFile(marker, String(process.pid));
      });
      return await action();
    } finally {
      await rm(marker, { force: true }).catch(() => undefined);
    }
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
      openBlob: (desc) => layout.openBlob(desc),
      listTags: () => layout.listTags(),
    };
  }

  async gc(): Promise<{ removed: number; bytes: number }> {
    await this.layout.init();
    const protect = await this.oldestLiveIngest();
    return this.layout.garbageCollect(protect === undefined ? undefined : protect - 1000);
  }
}
