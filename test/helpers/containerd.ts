// A private containerd for interop tests (docs: outside-clients.md): its own root, state and sockets, no CRI.
import { spawn } from "node:child_process";
import { openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tool, tempDir, type CliResult } from "./cli.js";

export interface TestContainerd {
  /** `ctr --address SOCK -n test ARGS`. */
  ctr(args: string[]): Promise<CliResult>;
  stop(): Promise<void>;
}

const DISABLED = ["grpc.v1.cri", "snapshotter.v1.btrfs", "snapshotter.v1.aufs", "snapshotter.v1.zfs", "snapshotter.v1.devmapper", "tracing.processor.v1.otlp", "internal.v1.tracing"];

export async function startContainerd(): Promise<TestContainerd> {
  const dir = await tempDir("regcli-containerd-");
  const socket = join(dir, "containerd.sock");
  const plugins = DISABLED.map((p) => `"io.containerd.${p}"`).join(", ");
  writeFileSync(
    join(dir, "config.toml"),
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = [${plugins}]\n[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${socket}.ttrpc"\n`,
  );
  const log = openSync(join(dir, "containerd.log"), "a");
  const child = spawn("containerd", ["--config", join(dir, "config.toml")], { stdio: ["ignore", log, log] });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const ctr = (args: string[]) => tool("ctr", ["--address", socket, "-n", "test", ...args]);
  for (let i = 0; ; i++) {
    if ((await ctr(["version"])).code === 0) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`containerd did not start (see ${dir}/containerd.log)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ctr,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
