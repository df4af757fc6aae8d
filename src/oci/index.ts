export * from "./media-types.js";
export * from "./digest.js";
export * from "./types.js";
export * from "./manifest.js";
export * from "./convert.js";
export * from "./referrers.js";
