import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import { normalizeRegistryName } from "../../reference/registry-name.js";
import { askLine, askSecret } from "../confirm.js";
import { credentialFromFlags, withContext, type GlobalOptions } from "../context.js";
import { err, note } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/login.js")) });

/** Where credentials go and are read from: --authfile, else the default sources (see the README's Credentials). */
const authFileOf = (globals: GlobalOptions) => (globals.authfile !== undefined ? { authFile: globals.authfile } : undefined);

export function register(program: Command): void {
  program
    .command("login")
    .description("check credentials against a registry and store them like `docker login`: in --authfile, else $REGISTRY_AUTH_FILE, else Docker's config.json (or its credential helper)")
    .argument("[registry]", "registry host", "docker.io")
    .option("-p, --password <password>", "the password or token (insecure: it shows in the process list and shell history; prefer --password-stdin)")
    .addHelpText(
      "after",
      "\nOn a terminal, login asks for what is not given (the password without echo).\n\nExamples:\n  regcli login registry.example.com\n  echo \"$TOKEN\" | regcli login registry.example.com -u ci-bot --password-stdin\n  regcli --authfile ./auth.json login registry.example.com -u ci-bot --password-stdin < token.txt",
    )
    .action(async (text: string, opts: { password?: string }, cmd: Command) => {
      const { login } = await load();
      const registry = normalizeRegistryName(text);
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      if (opts.password !== undefined && globals.passwordStdin) throw new RegcliError("usage", "--password and --password-stdin are mutually exclusive");
      if (opts.password !== undefined) note("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
      let credential = globals.passwordStdin ? await credentialFromFlags(globals) : undefined;
      if (!credential) {
        const username = globals.username || (await askLine("Username: "))?.trim();
        if (username === undefined) {
          throw new RegcliError("usage", `login needs -u USER${opts.password === undefined ? " and a password" : ""} (no terminal to ask on)`, { hint: "pipe the password to --password-stdin" });
        }
        if (!username) throw new RegcliError("usage", "login needs a user name");
        const password = opts.password ?? (await askSecret("Password: "));
        if (password === undefined) throw new RegcliError("usage", "login needs a password (no terminal to ask on)", { hint: "pipe it to --password-stdin" });
        if (!password) throw new RegcliError("usage", "login needs a password");
        credential = { username, password };
      }
      const stored = await withContext(cmd, undefined, (ctx) => {
        ctx.options.credentialOverride = { registry, credential };
        return login(ctx, registry, credential, authFileOf(globals));
      });
      if (!globals.quiet) note(`${err.green("Login Succeeded")} for ${registry} (stored in ${stored.where})`);
    });
  program
    .command("logout")
    .description("remove stored credentials for a registry: from --authfile, else from every file regcli reads them from")
    .argument("[registry]", "registry host", "docker.io")
    .addHelpText("after", "\nExample:\n  regcli logout registry.example.com")
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { logout } = await load();
      const registry = normalizeRegistryName(text);
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const removed = await logout(registry, authFileOf(globals));
      if (!globals.quiet) note(removed ? `Removed credentials for ${registry}` : `Not logged in to ${registry}`);
    });
}
