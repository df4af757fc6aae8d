// Shell completion for real: the scripts `regcli completion SHELL` prints, run by bash (its completion function,
// and readline's TAB in a tmux pane), fish (`complete -C`) and zsh (parse only), against the built binary.
import { execFile } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir } from "../helpers/cli.js";
import { makeImage, pushImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const run = promisify(execFile);

describe("regcli completion", () => {
  let reg: TestRegistry;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const scripts: Record<string, string> = {};

  beforeAll(async () => {
    reg = await startRegistry("open");
    await pushImage(reg, "complete/app", "1.0", await makeImage({ seed: "completion" }));
    dir = await tempDir("regcli-completion-");
    const home = join(dir, "home");
    // The scripts call back `regcli`, as a user's shell would find it on PATH.
    await writeFile(join(dir, "regcli"), `#!/bin/sh\nexec '${process.execPath}' '${join(repoRoot, "bin", "regcli.cjs")}' "$@"\n`);
    await chmod(join(dir, "regcli"), 0o755);
    env = { PATH: `${dir}:${process.env.PATH}`, REGCLI_HOME: home, DOCKER_CONFIG: dir, NO_COLOR: "1", HOME: dir, TERM: "xterm" };
    const pulled = await regcli(["pull", `${reg.host}/complete/app:1.0`], { env: { REGCLI_HOME: home } });
    expect(pulled.code, pulled.stderr).toBe(0);
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = await regcli(["completion", shell]);
      expect(r.code, r.stderr).toBe(0);
      scripts[shell] = join(dir, `regcli.${shell}`);
      await writeFile(scripts[shell]!, r.stdout);
    }
  });
  afterAll(async () => reg?.stop());

  /** bash's completion function on a partial command line: COMP_* set as bash sets them, COMPREPLY printed. */
  async function bashComplete(line: string): Promise<string[]> {
    const harness = [
      'source "$1"',
      'COMP_LINE=$2; COMP_POINT=${#2}',
      'read -ra COMP_WORDS <<< "$2"; [[ $2 == *" " ]] && COMP_WORDS+=("")',
      "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))",
      '_regcli regcli "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join("\n");
    const { stdout } = await run("bash", ["--norc", "--noprofile", "-c", harness, "bash", scripts.bash!, line], { env });
    return stdout.split("\n").filter(Boolean);
  }

  it("bash completes commands, subcommands, flags, flag values and local image names", async () => {
    expect(await bashComplete("regcli co")).toEqual(["config", "copy", "completion"]);
    expect(await bashComplete("regcli cop")).toEqual(["copy"]);
    expect(await bashComplete("regcli copy --pro")).toEqual(["--progress"]);
    expect(await bashComplete("regcli copy --pre")).toEqual(["--preserve-digests"]);
    expect(await bashComplete("regcli --progress ")).toEqual(["auto", "tty", "plain", "json", "none"]);
    expect(await bashComplete("regcli ls localhost:5000/app --format ")).toEqual(["text", "json"]);
    expect(await bashComplete("regcli pull x --format d")).toEqual(["docker-archive"]);
    // bash replaces only what follows the last '=' or ':' (COMP_WORDBREAKS).
    expect(await bashComplete("regcli --progress=pl")).toEqual(["plain"]);
    expect(await bashComplete("regcli image ")).toEqual(expect.arrayContaining(["ls", "inspect", "tag", "rm", "save", "load", "prune"]));
    expect(await bashComplete("regcli tag ")).toContain("prune");
    expect(await bashComplete("regcli help image s")).toEqual(["save"]);
    expect(await bashComplete("regcli completion ")).toEqual(["bash", "zsh", "fish"]);
    expect(await bashComplete("regcli image inspect ")).toEqual([`${reg.host}/complete/app:1.0`]);
    expect(await bashComplete("regcli image rm complete/x ")).toEqual([`${reg.host}/complete/app:1.0`]);
    expect(await bashComplete(`regcli image inspect ${reg.host}/complete/a`)).toEqual([`${reg.host.split(":")[1]}/complete/app:1.0`]);
    expect(await bashComplete("regcli inspect store:")).toEqual([`${reg.host}/complete/app:1.0`]);
  });

  /** Type `keys` (TAB as "Tab") into a real interactive shell in a tmux pane; the prompt line once it shows `expected`. */
  async function tabInTerminal(shell: string, setup: string, keys: string[], expected: string): Promise<string> {
    const socket = `regcli-completion-${process.pid}-${shell.split(" ")[0]}`;
    const tmux = (...args: string[]) => run("tmux", ["-L", socket, "-f", "/dev/null", ...args], { env, timeout: 20_000 });
    await tmux("new-session", "-d", "-s", "c", "-x", "200", "-y", "10", shell);
    const screenShows = async (done: (screen: string) => boolean) => {
      let screen = "";
      for (const deadline = Date.now() + 40_000; Date.now() < deadline && !done(screen); ) {
        await new Promise((r) => setTimeout(r, 200));
        screen = (await tmux("capture-pane", "-p", "-t", "c")).stdout;
      }
      return screen;
    };
    try {
      await tmux("send-keys", "-t", "c", `${setup}; clear`, "Enter");
      // Keys typed only at the fresh prompt, once the setup has run.
      await screenShows((screen) => screen.trim() === "$");
      await tmux("send-keys", "-t", "c", ...keys);
      const screen = await screenShows((s) => s.includes(expected));
      return screen.split("\n").find((l) => l.startsWith("$ ")) ?? screen;
    } finally {
      await tmux("kill-server").catch(() => undefined);
    }
  }

  it("real bash and zsh complete on TAB in a terminal (tmux), colons in the image name included", async () => {
    const line = `$ regcli --progress=plain image inspect ${reg.host}/complete/app:1.0`;
    const keys = ["regcli --progress=pl", "Tab", "image ins", "Tab", "127.0", "Tab"];
    expect(await tabInTerminal("bash --norc --noprofile", `PS1='$ '; source ${scripts.bash}`, keys, line)).toBe(line);
    const zsh = `PS1='$ '; autoload -U compinit; compinit -u; source ${scripts.zsh}`;
    expect(await tabInTerminal("zsh -f", zsh, keys, line)).toBe(line);
  }, 180_000);

  it("fish completes from its script (complete -C); zsh's script parses", async () => {
    const fish = async (line: string) => {
      const { stdout } = await run("fish", ["--no-config", "-c", `source ${scripts.fish}; complete -C '${line}'`], { env });
      return stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]);
    };
    expect(await fish("regcli co")).toEqual(expect.arrayContaining(["config", "copy", "completion"]));
    expect(await fish("regcli --progress ")).toEqual(expect.arrayContaining(["auto", "json", "none"]));
    expect(await fish("regcli image inspect ")).toEqual([`${reg.host}/complete/app:1.0`]);
    await run("zsh", ["-n", scripts.zsh!]);
  });

  it("completion takes bash, zsh or fish; __complete stays out of the help", async () => {
    const bad = await regcli(["completion", "tcsh"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('regcli: error: unknown shell "tcsh": use bash, zsh, fish (see regcli completion --help)\n');
    expect((await regcli(["--help"])).stdout).not.toContain("__complete");
  });
});
