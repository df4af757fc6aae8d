// regcli as a library: the same operations the CLI runs, typed.
export { RegcliError, InvalidReferenceError, EXIT_CODES, type ErrorKind } from "./errors.js";
export {
  parseReference,
  formatReference,
  withTag,
  withDigest,
  apiHost,
  parseListTarget,
  type Reference,
  type ParseOptions,
  type ListTarget,
} from "./reference/index.js";
export { normalizeRegistryName } from "./reference/registry-name.js";
export * from "./oci/index.js";
export { RegistryContext, type RegistryContextOptions } from "./registry/context.js";
export { RegistryClient } from "./registry/client.js";
export { registrySource, registryDestination, RegistryRepository } from "./locations/registry.js";
export type { ImageSource, ImageDestination, MountOrigin, BlobOutcome } from "./locations/types.js";
export { parseLocation, type LocationSpec } from "./locations/parse.js";
export { openSource, openLocation, withSource, type OpenedSource, type OpenedLocation } from "./locations/open.js";
export { CopyEngine, copyAllTags, type CopyOptions, type CopyResult, type CopyEvent } from "./operations/copy.js";
export { list, listLocation, type ListResult } from "./operations/list.js";
export { inspect, getManifest, getConfig, resolveDigest, type InspectResult } from "./operations/inspect.js";
export { openBlob } from "./operations/blob.js";
export { tag, deleteImage } from "./operations/tag.js";
export { login, logout } from "./operations/login.js";
export { getCredential, storeCredential, eraseCredential, type Credential } from "./auth/credentials.js";
export { loadSettings, type Settings } from "./config/settings.js";
