// Progress output for real: bars on a pseudo-terminal (util-linux `script`, and tmux for a small pane), JSON
// events, --quiet.
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regcli, repoRoot, tempDir, withoutScriptFrame, type CliResult } from "../helpers/cli.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { makeImage, pushImage, type TestImage } from "../helpers/images.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const run = promisify(execFile);

/** Every stderr line of a --progress json run, parsed: each must be one JSON event with a time and a type. */
function jsonEvents(r: CliResult): Array<Record<string, unknown> & { type: string }> {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  return lines.map((line) => {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`stderr line is not JSON: ${JSON.stringify(line)}\n(exit ${r.code}, stderr:\n${r.stderr})`);
    }
    expect(event.time, line).toEqual(expect.any(String));
    expect(event.type, line).toEqual(expect.any(String));
    return event as Record<string, unknown> & { type: string };
  });
}

describe("progress", () => {
  let reg: TestRegistry;
  let img: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open");
    img = await makeImage({ layers: 2, layerSize: 8 * 1024 * 1024, seed: "progress" });
    await pushImage(reg, "progress/app", "1", img);
  });
  afterAll(async () => reg?.stop());

  it("draws per-blob bars and a total line on a terminal, stdout still carries only the digest", async () => {
    const home = await tempDir("regcli-tty-");
    const typescript = join(home, "typescript");
    const command = `stty cols 120 rows 40; REGCLI_HOME=${home} ${process.execPath} ${join(repoRoot, "bin", "regcli.cjs")} --plain-http pull ${reg.host}/progress/app:1`;
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color" };
    delete env.NO_COLOR;
    await run("script", ["-qfec", command, typescript], { env, timeout: 60_000 });
    const screen = withoutScriptFrame(await readFile(typescript, "utf8"));
    expect(screen).toMatch(/Resolving 127\.0\.0\.1:\d+\/progress\/app:1/); // ora while the manifest resolves
    for (const layer of img.layers) expect(screen).toContain(`${layer.digest.slice(0, 19)}: \x1b[32mPull complete`);
    expect(screen).toMatch(/Total: 3\/3 blobs {2}\d+(\.\d)? MiB/);
    expect(screen).toContain("\x1b[0J"); // the live region is redrawn in place
    expect(screen).toContain(img.manifestDigest);
  });

  it("--progress json prints one JSON event per line on stderr; --quiet prints only the result", async () => {
    const home = await tempDir("regcli-json-");
    const r = await regcli(["--plain-http", "--progress", "json", "pull", `${reg.host}/progress/app:1`], { env: { REGCLI_HOME: home } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(img.manifestDigest);
    const events = r.stderr.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const done = events.filter((e) => e.type === "blob");
    expect(done.map((e) => e.digest).sort()).toEqual([img.config.digest, ...img.layers.map((l) => l.digest)].sort());
    expect(events.some((e) => e.type === "blob-progress" && e.bytes > 0)).toBe(true);
    expect(events.find((e) => e.type === "image")).toMatchObject({ digest: img.manifestDigest });
    const quiet = await regcli(["--plain-http", "-q", "pull", `${reg.host}/progress/app:1`], { env: { REGCLI_HOME: await tempDir("regcli-q-") } });
    expect(quiet.code).toBe(0);
    expect(quiet.stdout.trim()).toBe(img.manifestDigest);
    expect(quiet.stderr).toBe("");
  });

  it("copy --compress: a re-compressed layer's upload has the events of a copied blob (blob-start, then blob) and its counts", async () => {
    const r = await regcli(["--plain-http", "--progress", "json", "copy", "--compress", "zstd", `${reg.host}/progress/app:1`, `${reg.host}/progress/zstd:1`]);
    expect(r.code, r.stderr).toBe(0);
    const events = jsonEvents(r);
    const recompressed = events.filter((e) => e.type === "blob-recompressed");
    expect(recompressed.map((e) => e.from).sort()).toEqual(img.layers.map((l) => l.digest).sort());
    for (const { to } of recompressed) {
      expect(events.filter((e) => e.digest === to).map((e) => `${e.type} ${e.outcome ?? ""}`.trim())).toEqual(["blob-start", "blob uploaded"]);
    }
    // The config is mounted from the source repository: no bytes, so no blob-start.
    expect(events.filter((e) => e.digest === img.config.digest).map((e) => `${e.type} ${e.outcome ?? ""}`.trim())).toEqual(["blob mounted"]);
    expect(events.find((e) => e.type === "done")).toMatchObject({ blobsUploaded: 2, blobsMounted: 1, blobsExisting: 0 });
  });

  it("--progress json: every stderr line of every transferring command is an event, the summary and errors too", async () => {
    const home = await tempDir("regcli-jsonall-");
    const out = await tempDir("regcli-jsonall-out-");
    const env = { REGCLI_HOME: home };
    const json = (args: string[]) => regcli(["--plain-http", "--progress", "json", ...args], { env });
    const blobs = [img.config, ...img.layers];
    const total = blobs.reduce((n, b) => n + b.size, 0);
    const done = (r: CliResult) => {
      expect(r.code, r.stderr).toBe(0);
      const events = jsonEvents(r);
      expect(events.filter((e) => e.type === "error")).toEqual([]);
      const last = events.at(-1)!;
      expect(last.type, r.stderr).toBe("done");
      return last;
    };
    const source = `${reg.host}/progress/app:1`;
    expect(done(await json(["pull", source]))).toMatchObject({ digest: img.manifestDigest, skipped: false, blobsDownloaded: 3, bytesDownloaded: total, blobsExisting: 0 });
    expect(done(await json(["pull", source]))).toMatchObject({ skipped: true, blobsDownloaded: 0 });
    expect(done(await json(["pull", source, "-o", join(out, "layout")]))).toMatchObject({ blobsDownloaded: 3 });
    expect(done(await json(["pull", source, "-o", join(out, "image.tar")]))).toMatchObject({ blobsDownloaded: 3 });
    expect(done(await json(["pull", source, "-o", join(out, "oci.tar"), "--format", "oci-archive"]))).toMatchObject({ blobsDownloaded: 3 });
    expect(done(await json(["copy", source, `${reg.host}/progress/copied:1`]))).toMatchObject({ skipped: false, blobsMounted: 3, digest: img.manifestDigest });
    expect(done(await json(["copy", "--all-tags", `${reg.host}/progress/app`, `${reg.host}/progress/mirror`]))).toMatchObject({ tagsCopied: 1, tagsUpToDate: 0 });
    expect(done(await json(["copy", source, `oci:${join(out, "copy-layout")}:1`]))).toMatchObject({ blobsUploaded: 3 });
    // A note of a command (image tag) is an event too.
    const tagged = await json(["image", "tag", source, `${reg.host}/progress/pushed:1`]);
    expect(tagged.code, tagged.stderr).toBe(0);
    expect(jsonEvents(tagged).map((e) => e.type)).toEqual(["note"]);
    expect(done(await json(["push", `${reg.host}/progress/pushed:1`]))).toMatchObject({ skipped: false, digest: img.manifestDigest });
    expect(done(await json(["push", join(out, "image.tar"), `${reg.host}/progress/from-tar:1`]))).toMatchObject({ skipped: false });
    expect(done(await json(["image", "save", source, "-o", join(out, "saved.tar")]))).toMatchObject({ output: join(out, "saved.tar") });
    const loaded = await json(["image", "load", "-i", join(out, "saved.tar")]);
    expect(loaded.code, loaded.stderr).toBe(0);
    jsonEvents(loaded);
    // Failures: the error is the last event, with the exit code the process ends with.
    const missing = await json(["pull", `${reg.host}/progress/app:nope`]);
    const unreachable = await json(["--retries", "0", "copy", source, "127.0.0.1:1/progress/app:1"]);
    const usage = await json(["copy", source]);
    const badFlag = await json(["pull", source, "--no-such-flag"]);
    for (const [r, code] of [[missing, 4], [unreachable, 5], [usage, 2], [badFlag, 2]] as const) {
      expect(r.code, r.stderr).toBe(code);
      const events = jsonEvents(r);
      expect(events.at(-1), r.stderr).toMatchObject({ type: "error", exitCode: code, message: expect.any(String) });
      expect(events.filter((e) => e.type === "error")).toHaveLength(1);
    }
    expect(missing.stderr).toContain("progress/app:nope");
  });

  it("pull counts downloads as downloads, and of a resumed blob only the bytes it moved", async () => {
    const out = await tempDir("regcli-resume-");
    const layout = join(out, "layout");
    const layer = img.layers[0]!;
    // A partial of the first layer, as a pull cut mid-blob keeps it: the next pull resumes from its end.
    const held = 3 * 1024 * 1024 + 17;
    await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
    await writeFile(join(layout, "blobs", "sha256", `${layer.digest.slice(7)}.partial`), layer.data.subarray(0, held));
    const r = await regcli(["--plain-http", "--progress", "plain", "pull", `${reg.host}/progress/app:1`, "-o", layout, "--preserve-digests", "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming at 3\.0 MiB/);
    const result = JSON.parse(r.stdout);
    const total = [img.config, ...img.layers].reduce((n, b) => n + b.size, 0);
    expect(result.stats).toEqual({ blobsDownloaded: 3, bytesDownloaded: total - held, blobsExisting: 0, manifests: 1 });
    expect(r.stderr).toMatch(/Pulled .*: 3 blobs \(\d+\.\d MiB\) downloaded, 0 already present/);
  });

  it("an image already there is reported up to date, not as 0 blobs copied; counts are in the singular for one", async () => {
    const home = await tempDir("regcli-uptodate-");
    const source = `${reg.host}/progress/app:1`;
    const first = await regcli(["--plain-http", "copy", source, `${reg.host}/progress/same:1`]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/Copied .* 0 blobs \(0 B\) uploaded, 3 mounted, 0 already present/);
    const again = await regcli(["--plain-http", "copy", source, `${reg.host}/progress/same:1`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Up to date: .*progress\/same:1 already has .*progress\/app:1/);
    expect(again.stderr).not.toMatch(/blobs/);
    expect(again.stderr.match(/Up to date/g), "said once, by the summary").toHaveLength(1);
    const all = await regcli(["--plain-http", "copy", "--all-tags", `${reg.host}/progress/app`, `${reg.host}/progress/all`]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toMatch(/Copied 1 tag, 0 blobs \(0 B\) uploaded, 3 mounted/);
    const allAgain = await regcli(["--plain-http", "copy", "--all-tags", `${reg.host}/progress/app`, `${reg.host}/progress/all`]);
    expect(allAgain.stderr).toMatch(/Up to date: .*progress\/all has all 1 tag of .*progress\/app/);
    expect(allAgain.stderr).toMatch(/^Up to date .*progress\/all sha256:/m); // several images: a line for each
    const pulled = await regcli(["--plain-http", "pull", source], { env: { REGCLI_HOME: home } });
    expect(pulled.stderr).toMatch(/3 blobs \(.*\) downloaded/);
    const pulledAgain = await regcli(["--plain-http", "pull", source], { env: { REGCLI_HOME: home } });
    expect(pulledAgain.stderr).toMatch(/Up to date: .*progress\/app:1/);
    expect(pulledAgain.stderr.match(/Up to date/g)).toHaveLength(1);
    const pushed = await regcli(["--plain-http", "push", source], { env: { REGCLI_HOME: home } });
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stderr).toMatch(/Up to date: .*progress\/app:1 already has this image/);
  });

  it("--progress tty on a pipe says why it shows plain lines; --progress takes only known modes, for every command", async () => {
    const r = await regcli(["--plain-http", "--progress", "tty", "pull", `${reg.host}/progress/app:1`], { env: { REGCLI_HOME: await tempDir("regcli-ttypipe-") } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split("\n")[0]).toBe("--progress tty: stderr is not a terminal, so progress is shown as plain lines");
    expect(r.stderr).toMatch(/Pull complete/);
    for (const args of [["ls", `${reg.host}/progress/app`], ["version"], ["inspect", `${reg.host}/progress/app:1`]]) {
      const bad = await regcli(["--plain-http", "--progress", "fancy", ...args]);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(/unknown --progress "fancy": use auto, tty, plain, json, none/);
      expect(bad.stdout).toBe("");
    }
  });
});

describe("bars in a terminal smaller than the bars (tmux)", () => {
  const ROWS = 6;
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: TestImage;
  beforeAll(async () => {
    reg = await startRegistry("open");
    img = await makeImage({ layers: 12, layerSize: 1536 * 1024, seed: "tmux-many" });
    await pushImage(reg, "progress/many", "1", img);
    proxy = await startFaultProxy(reg.url);
    // Each layer's first GET sends a little, trickles for 2 s, then stalls: regcli (--timeout 1) resumes it with a
    // Range request, which goes through. So 8 bars (-j 8) stay on screen for a few seconds.
    const layers = new Set(img.layers.map((l) => l.digest));
    proxy.rules = [
      {
        method: "GET",
        path: /\/blobs\/sha256:/,
        when: (r) => !r.headers.range && layers.has(r.path.split("/").pop()!),
        fault: { kind: "stall", after: 64 * 1024, trickle: { bytes: 16 * 1024, everyMs: 100, forMs: 2000 } },
      },
    ];
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  /** Pull in a detached 80x6 tmux pane; returns the screens seen while it ran and the pane's whole history after. */
  async function pullInTmux(colour: boolean, args = `--plain-http --timeout 1 pull -j 8 ${proxy.host}/progress/many:1`): Promise<{ screens: string[]; history: string }> {
    const home = await tempDir("regcli-tmux-");
    const socket = `regcli-test-${process.pid}-${colour ? "c" : "n"}`;
    const tmux = (...args: string[]) => run("tmux", ["-L", socket, "-f", "/dev/null", ...args], { timeout: 20_000 });
    const regcliCommand = [
      colour ? "env -u NO_COLOR" : "env NO_COLOR=1",
      `REGCLI_HOME=${home}`,
      `DOCKER_CONFIG=${home}`,
      "TERM=xterm-256color",
      process.execPath,
      join(repoRoot, "bin", "regcli.cjs"),
      args,
    ].join(" ");
    // The command waits for "go" so that the pane has its final size (no status line) before regcli starts.
    const shell = `tmux -L ${socket} wait-for go; ${regcliCommand}; echo "EXIT=$?"; sleep 120`;
    await tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", String(ROWS), shell);
    try {
      await tmux("set-option", "-t", "t", "status", "off");
      await tmux("set-option", "-t", "t", "history-limit", "5000");
      expect((await tmux("display-message", "-p", "-t", "t", "#{pane_height}")).stdout.trim()).toBe(String(ROWS));
      await tmux("wait-for", "-S", "go");
      const screens: string[] = [];
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const screen = (await tmux("capture-pane", "-p", "-e", "-t", "t")).stdout;
        screens.push(screen);
        if (/EXIT=\d+/.test(screen)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const history = (await tmux("capture-pane", "-p", "-e", "-S", "-1000", "-t", "t")).stdout;
      return { screens, history };
    } finally {
      await tmux("kill-server").catch(() => undefined);
    }
  }

  const bars = (text: string) => text.split("\n").filter((l) => /: Downloading \[/.test(l));
  const more = (text: string) => text.split("\n").filter((l) => /\+\d+ more: /.test(l));
  // SGR sequences (colour, bold) as capture-pane -e reproduces them.
  const SGR = /\x1b\[[0-9;]*m/;

  it("caps the live bars to the pane's height, folds the rest into one row, leaves no stale bars in the scrollback", async () => {
    const { screens, history } = await pullInTmux(true);
    expect(history, history).toContain("EXIT=0");
    expect(history).toContain(img.manifestDigest);
    // Every layer has its permanent line, and the redraws left no copies of bars in the history.
    for (const layer of img.layers) expect(history).toContain(`${layer.digest.slice(0, 19)}: `);
    expect(bars(history).length, history).toBeLessThanOrEqual(1);
    expect(more(history).length).toBeLessThanOrEqual(1);
    // While it ran: bars were drawn, never more rows than fit (6 rows less the total line, the cursor's line and a
    // spare), the rest folded into one "+N more: X of Y" row.
    expect(screens.some((s) => bars(s).length > 0)).toBe(true);
    expect(Math.max(...screens.map((s) => bars(s).length + more(s).length))).toBeLessThanOrEqual(ROWS - 3);
    expect(screens.some((s) => /\+\d+ more: \d+(\.\d)? (KiB|MiB) of \d+(\.\d)? MiB/.test(s))).toBe(true);
    expect(history).toMatch(SGR); // capture-pane -e does show colours when there are some
  });

  it("sync: one overall line (images done/total, bytes) under the images' lines, no line per blob, no stale copies in the scrollback", async () => {
    const dst = await startRegistry("open");
    try {
      for (const repo of ["progress/s1", "progress/s2", "progress/s3"]) await pushImage(reg, repo, "1", await makeImage({ seed: repo }));
      const { screens, history } = await pullInTmux(true, `--plain-http --timeout 1 sync -j 8 '${proxy.host}/progress/*' ${dst.host}/mirror`);
      const plain = history.replace(/\x1b\[[0-9;]*m/g, "");
      expect(plain, plain).toContain("EXIT=0");
      const overall = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((l) => /^Images: \d+\/\d+ +Total: /.test(l));
      // While it ran, the overall line counted the images and bytes.
      expect(screens.some((s) => overall(s).some((l) => /^Images: \d\/4 +Total: \d+\/\d+ blobs +\d+(\.\d)? (B|KiB|MiB)/.test(l)))).toBe(true);
      // After: the last overall line only, every image's line, and no line per blob.
      expect(overall(history), plain).toEqual([expect.stringMatching(/^Images: 4\/4 +Total: (\d+)\/\1 blobs/)]);
      expect(plain.match(/^copied +\S+ -> /gm)?.length, plain).toBe(4);
      expect(plain).not.toMatch(/: Copied /);
      expect(bars(plain).length).toBe(0);
    } finally {
      await dst.stop();
    }
  });

  it("NO_COLOR takes the colours away, not the bars", async () => {
    const { screens, history } = await pullInTmux(false);
    expect(history, history).toContain("EXIT=0");
    expect(screens.some((s) => bars(s).length > 0)).toBe(true);
    for (const s of screens) expect(s).not.toMatch(SGR);
    expect(history).not.toMatch(SGR);
  });
});

