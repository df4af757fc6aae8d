import type { Command } from "commander";
import { RegcliError } from "../../errors.js";
import { normalizeRegistryName } from "../../reference/registry-name.js";
import { credentialFromFlags, withContext, type GlobalOptions } from "../context.js";
import { err, note } from "../output.js";

/** Operations load when a command runs, not when the CLI starts. */
const load = async () => ({ ...(await import("../../operations/login.js")) });


export function register(program: Command): void {
  program
    .command("login")
    .description("check credentials against a registry and store them like `docker login` (credential helper or config.json)")
    .argument("[registry]", "registry host", "docker.io")
    .addHelpText("after", "\nExample:\n  echo \"$TOKEN\" | regcli login registry.example.com -u ci-bot --password-stdin")
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { login } = await load();
      const registry = normalizeRegistryName(text);
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      if (!globals.username || !globals.passwordStdin) {
        throw new RegcliError("usage", "login needs -u USER and --password-stdin (the password is read from standard input)");
      }
      const credential = (await credentialFromFlags(globals))!;
      const stored = await withContext(cmd, undefined, (ctx) => {
        ctx.options.credentialOverride = { registry, credential };
        return login(ctx, registry, credential);
      });
      if (!globals.quiet) note(`${err.green("Login Succeeded")} for ${registry} (stored in ${stored.where})`);
    });
  program
    .command("logout")
    .description("remove stored credentials for a registry")
    .argument("[registry]", "registry host", "docker.io")
    .addHelpText("after", "\nExample:\n  regcli logout registry.example.com")
    .action(async (text: string, _opts: unknown, cmd: Command) => {
      const { logout } = await load();
      const registry = normalizeRegistryName(text);
      const removed = await logout(registry);
      if (!cmd.optsWithGlobals<GlobalOptions>().quiet) note(removed ? `Removed credentials for ${registry}` : `Not logged in to ${registry}`);
    });
}
