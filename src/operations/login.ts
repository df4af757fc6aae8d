import { eraseCredential, storeCredential, type Credential, type CredentialOptions } from "../auth/credentials.js";
import type { RegistryContext } from "../registry/context.js";

/** Check credentials against the registry, then store them the way docker does. */
export async function login(ctx: RegistryContext, registry: string, credential: Credential, options?: CredentialOptions): Promise<{ where: string }> {
  await ctx.client(registry).checkLogin();
  return storeCredential(registry, credential, options);
}

export async function logout(registry: string, options?: CredentialOptions): Promise<boolean> {
  return eraseCredential(registry, options);
}
