import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import { parseDuration } from "../../util/duration.js";
import { collect, createContext, credentialFromFlags, parseSize, type Sides } from "../context.js";
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
  proxy?: string;
  proxyNamespace?: string[];
  proxyUsername?: string;
  proxyPasswordStdin?: boolean;
  proxyTtl: string;
  proxyMaxSize?: string;
}

/** NAME=URL of --proxy-namespace. */
function parseNamespace(text: string): { name: string; url: string } {
  const eq = text.indexOf("=");
  const name = eq < 0 ? "" : text.slice(0, eq);
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(name) || !text.slice(eq + 1)) {
    throw new RegcliError("usage", `invalid --proxy-namespace "${text}": expected NAME=URL, e.g. hub=https://registry-1.docker.io`);
  }
  return { name, url: text.slice(eq + 1) };
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
    .option("--proxy <url>", "be a read-only pull-through cache of this registry (e.g. https://registry-1.docker.io)")
    .option("--proxy-namespace <name=url>", "serve NAME/... as a pull-through cache of URL, other repositories as usual (repeatable)", collect)
    .option("--proxy-username <user>", "upstream user name (with --proxy-password-stdin); otherwise the upstream's credentials from the usual sources")
    .option("--proxy-password-stdin", "read the upstream password or token from standard input")
    .option("--proxy-ttl <duration>", "serve a cached tag this long before asking upstream again (e.g. 30s, 5m, 1h)", "5m")
    .option("--proxy-max-size <size>", "keep the storage under SIZE (e.g. 10GiB) by evicting the least recently used cached blobs that no manifest within --proxy-ttl needs")
    .addHelpText(
      "after",
      "\nExamples:\n  regcli serve --addr 127.0.0.1:5000 --root ./registry-data &\n  regcli serve --addr 0.0.0.0:5443 --tls-cert cert.pem --tls-key key.pem --htpasswd ./htpasswd --delete\n  regcli serve --addr 0.0.0.0:5000 --root ./cache --proxy https://registry-1.docker.io\n  regcli serve --proxy-namespace hub=https://registry-1.docker.io --proxy-namespace ghcr=https://ghcr.io\n  regcli serve gc --root ./registry-data --dry-run\n\nWith --proxy, manifests and blobs are fetched from upstream once and then served from --root; tags are\nasked about again (HEAD) after --proxy-ttl, digests never. When upstream is down, cached tags are served\nwith a Warning header and uncached ones answer 503. --ca-file, --retries and --timeout apply to upstream.\n--proxy-max-size SIZE (e.g. 50GiB) removes the least recently used cached blobs that no manifest within\n--proxy-ttl needs, and partial downloads no fetch is writing, once the storage is over SIZE;\nserve gc also removes cached manifests past --proxy-ttl.\n\nAs the docker.io mirror of a Docker daemon (/etc/docker/daemon.json, then restart dockerd):\n  { \"registry-mirrors\": [\"http://cache.lan:5000\"] }\nof podman, skopeo and buildah (registries.conf):\n  [[registry]]\n  prefix = \"docker.io\"\n  location = \"docker.io\"\n  [[registry.mirror]]\n  location = \"cache.lan:5000\"\n  insecure = true     # plain HTTP; leave out when serving with --tls-cert",
    )
    .action(async (opts: ServeFlags, command: Command) => {
      const { serve, proxyRegistry } = await load();
      if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new RegcliError("usage", "--tls-cert and --tls-key go together");
      const namespaces = (opts.proxyNamespace ?? []).map(parseNamespace);
      const proxying = opts.proxy !== undefined || namespaces.length > 0;
      if (!proxying && (opts.proxyUsername || opts.proxyPasswordStdin)) throw new RegcliError("usage", "--proxy-username and --proxy-password-stdin need --proxy or --proxy-namespace");
      if (!proxying && opts.proxyMaxSize !== undefined) throw new RegcliError("usage", "--proxy-max-size needs --proxy or --proxy-namespace");
      const cacheMaxBytes = opts.proxyMaxSize === undefined ? undefined : parseSize(opts.proxyMaxSize, "--proxy-max-size");
      let proxy: Parameters<typeof serve>[0]["proxy"];
      if (proxying) {
        if (Boolean(opts.proxyUsername) !== Boolean(opts.proxyPasswordStdin)) throw new RegcliError("usage", "--proxy-username and --proxy-password-stdin go together (passwords are never taken as arguments)");
        const ttlMs = parseDuration(opts.proxyTtl);
        const urls = opts.proxy !== undefined ? [opts.proxy] : namespaces.map((n) => n.url);
        const registries = urls.map(proxyRegistry);
        const credential = await credentialFromFlags({ username: opts.proxyUsername, passwordStdin: opts.proxyPasswordStdin });
        if (credential && opts.proxy === undefined && namespaces.length > 1) {
          throw new RegcliError("usage", "--proxy-username is for one upstream; with several --proxy-namespace upstreams, give their credentials with regcli login or --authfile");
        }
        const sides: Sides = credential ? { source: { registry: registries[0]!, credential } } : {};
        const context = (await createContext(command, undefined, sides, { memoryTokens: true })).source;
        proxy = { context, upstream: opts.proxy, namespaces, ttlMs };
      }
      const { server, url } = await serve({
        addr: opts.addr,
        root: opts.root,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        htpasswd: opts.htpasswd,
        readOnly: opts.readOnly,
        deleteEnabled: opts.delete,
        log: note,
        proxy,
        cacheMaxBytes,
      });
      const caching = [...(opts.proxy ? [`a cache of ${opts.proxy}`] : []), ...namespaces.map((n) => `${n.name}/ caching ${n.url}`)];
      note(`regcli serve: listening on ${url}, storage ${opts.root}${opts.readOnly ? ", read-only" : ""}${opts.delete ? ", deletes allowed" : ""}${caching.length ? `, ${caching.join(", ")}` : ""}`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.stop().then(() => proxy?.context.close(true)).then(resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
  cmd
    .command("gc")
    .description("remove blobs that no manifest references (--root as for serve); in a --proxy cache, also cached manifests past the TTL and partial downloads untouched for an hour")
    .option("--dry-run", "only list what would be removed")
    .addHelpText("after", "\nExample:\n  regcli serve gc --root ./registry-data --dry-run")
    .action(async (opts: { dryRun?: boolean }, gc: Command) => {
      const { garbageCollect } = await load();
      const { root } = gc.optsWithGlobals<{ root: string }>();
      const r = await garbageCollect(root, opts.dryRun === true);
      for (const line of [...r.manifests, ...r.blobs, ...r.partials]) printLine(line);
      const expired = `${r.manifests.length ? ` and ${r.manifests.length} expired cached manifests` : ""}${r.partials.length ? ` and ${r.partials.length} stale partial downloads` : ""}`;
      note(opts.dryRun ? `${r.blobs.length} blobs${expired} would be removed` : `removed ${r.blobs.length} blobs, ${humanSize(r.bytes)}${expired}`);
    });
}
