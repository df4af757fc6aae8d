import { eraseCredential, storeCredential, type Credential, type CredentialOptions } from "../auth/credentials.js";
import { TokenCache } from "../auth/token-cache.js";
import { apiHost } from "../reference/index.js";
import type { RegistryContext } from "../registry/context.js";

/** Check credentials against the registry, then store them the way docker does. */
export async function login(ctx: RegistryContext, registry: string, credential: Credential, options?: CredentialOptions): Promise<{ where: string }> {
  await ctx.client(registry).checkLogin();
  return storeCredential(registry, credential, options);
}

/** Remove the stored credentials, and the tokens earlier runs kept for the registry. */
export async function logout(registry: string, options?: CredentialOptions): Promise<boolean> {
  new TokenCache().forget(apiHost(registry));
  return eraseCredential(registry, options);
}
