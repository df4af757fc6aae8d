// The README and docs/ ship with the repository: every file they point to must be in it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { register as registerSync } from "../../src/cli/commands/sync.js";
import { parseSyncConfig } from "../../src/operations/sync-config.js";
import { repoRoot } from "../helpers/cli.js";

const documents = ["README.md", ...readdirSync(join(repoRoot, "docs")).filter((f) => f.endsWith(".md")).map((f) => join("docs", f))];

describe("documentation links", () => {
  it.each(documents)("%s points only to files inside the repository", (doc) => {
    const text = readFileSync(join(repoRoot, doc), "utf8");
    const targets = [
      ...[...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t)),
      // Paths written as code that leave the directory (`../x/y.md`).
      ...[...text.matchAll(/`(\.\.\/[^`\s]+)`/g)].map((m) => m[1]!),
    ];
    for (const target of targets) {
      const path = resolve(dirname(join(repoRoot, doc)), target);
      expect(relative(repoRoot, path).startsWith(".."), `${doc}: ${target} is outside the repository`).toBe(false);
      expect(existsSync(path), `${doc}: ${target} does not exist`).toBe(true);
    }
  });
});

describe("scale-out examples (examples/)", () => {
  const program = new Command();
  registerSync(program);
  const syncFlags = new Set(program.commands.find((c) => c.name() === "sync")!.options.map((o) => o.long));
  /** The words of a regcli sync command line; every flag in it must be one `regcli sync` has. */
  const syncCommand = (words: string[]): string[] => {
    const rest = words.slice(words.indexOf("regcli") + 1);
    expect(rest[0]).toBe("sync");
    for (const flag of rest.filter((w) => w.startsWith("-"))) expect(syncFlags, flag).toContain(flag);
    return rest;
  };
  const read = (path: string) => readFileSync(join(repoRoot, path), "utf8");

  it("the Kubernetes Indexed Job: completions = parallelism = --shards, config from the ConfigMap, config.json from a Secret", () => {
    const docs = parseAllDocuments(read("examples/kubernetes/sync-job.yaml"));
    for (const doc of docs) expect(doc.errors).toEqual([]);
    const [configMap, job] = ["ConfigMap", "Job"].map((kind) => docs.map((d) => d.toJS()).find((d) => d.kind === kind));
    expect(job.spec.completionMode).toBe("Indexed");
    const pod = job.spec.template.spec;
    const container = pod.containers[0];
    const words = syncCommand([...(container.command ?? []), ...(container.args ?? [])]);
    const shards = Number(words[words.indexOf("--shards") + 1]);
    expect(shards).toBeGreaterThan(1);
    expect(job.spec.completions).toBe(shards);
    expect(job.spec.parallelism).toBe(shards);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });

    const mountOf = (path: string) => {
      const mount = container.volumeMounts.find((m: { mountPath: string }) => path.startsWith(`${m.mountPath}/`));
      return { file: path.slice(mount.mountPath.length + 1), volume: pod.volumes.find((v: { name: string }) => v.name === mount.name) };
    };
    const config = mountOf(words[words.indexOf("--config") + 1]!);
    expect(config.volume.configMap.name).toBe(configMap.metadata.name);
    expect(parseSyncConfig(configMap.data[config.file], config.file).length).toBeGreaterThan(0);
    const dockerConfig = container.env.find((e: { name: string }) => e.name === "DOCKER_CONFIG").value;
    const auth = mountOf(`${dockerConfig}/config.json`);
    expect(auth.volume.secret.items).toContainEqual({ key: "config.json", path: auth.file });
  });

  it("the GitHub Actions matrix: one job per shard, --shard INDEX/N with N the matrix size", () => {
    const workflow = parseYaml(read("examples/github-actions/sync.yml"));
    const job = workflow.jobs.sync;
    const shards: number[] = job.strategy.matrix.shard;
    expect(shards).toEqual(shards.map((_, i) => i));
    const run: string = job.steps.find((s: { run?: string }) => s.run?.includes("regcli sync")).run;
    // ${{ matrix.shard }} as one word: <matrix.shard>
    const words = syncCommand(run.replace(/\$\{\{\s*(.+?)\s*\}\}/g, "<$1>").trim().split(/\s+/));
    expect(words[words.indexOf("--shard") + 1]).toBe(`<matrix.shard>/${shards.length}`);
  });
});
