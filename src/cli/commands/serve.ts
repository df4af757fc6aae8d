import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import { humanSize, note, printLine } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/serve.js")) });


interface ServeFlags {
  addr: string;
  root: string;
  tlsCert?: string;
  tlsKey?: string;
  htpasswd?: string;
  readOnly?: boolean;
  delete?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .description("run an OCI Distribution registry on a directory (streaming, crash-safe, optional TLS and Basic auth)")
    .option("--addr <host:port>", "address to listen on", "127.0.0.1:5000")
    .option("--root <dir>", "storage directory", "./registry-data")
    .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM)")
    .option("--tls-key <file>", "private key for --tls-cert (PEM)")
    .option("--htpasswd <file>", "require Basic auth against this bcrypt htpasswd file (htpasswd -B)")
    .option("--read-only", "refuse every write")
    .option("--delete", "allow deleting manifests and blobs (off by default, like Distribution)")
    .addHelpText("after", "\nExamples:\n  regcli serve --addr 127.0.0.1:5000 --root ./registry-data &\n  regcli serve --addr 0.0.0.0:5443 --tls-cert cert.pem --tls-key key.pem --htpasswd ./htpasswd --delete\n  regcli serve gc --root ./registry-data --dry-run")
    .action(async (opts: ServeFlags) => {
      const { serve } = await load();
      if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new RegcliError("usage", "--tls-cert and --tls-key go together");
      const { server, url } = await serve({
        addr: opts.addr,
        root: opts.root,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        htpasswd: opts.htpasswd,
        readOnly: opts.readOnly,
        deleteEnabled: opts.delete,
        log: note,
      });
      note(`regcli serve: listening on ${url}, storage ${opts.root}${opts.readOnly ? ", read-only" : ""}${opts.delete ? ", deletes allowed" : ""}`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.stop().then(resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
  cmd
    .command("gc")
    .description("remove blobs that no manifest references (--root as for serve); in a --proxy cache, also cached manifests past the TTL")
    .option("--dry-run", "only list what would be removed")
    .addHelpText("after", "\nExample:\n  regcli serve gc --root ./registry-data --dry-run")
    .action(async (opts: { dryRun?: boolean }, gc: Command) => {
      const { garbageCollect } = await load();
      const { root } = gc.optsWithGlobals<{ root: string }>();
      const r = await garbageCollect(root, opts.dryRun === true);
      for (const line of [...r.manifests, ...r.blobs]) printLine(line);
      const expired = r.manifests.length ? ` and ${r.manifests.length} expired cached manifests` : "";
      note(opts.dryRun ? `${r.blobs.length} blobs${expired} would be removed` : `removed ${r.blobs.length} blobs, ${humanSize(r.bytes)}${expired}`);
    });
}
