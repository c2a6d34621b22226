export { Reference, parseReference, DEFAULT_DOMAIN } from "./reference.ts";
export { RegistryClient, MAX_MANIFEST_SIZE } from "./client.ts";
export type { RegistryClientOptions, Resolved } from "./client.ts";
export { parseChallenges } from "./auth.ts";
export type { Challenge, Credentials } from "./auth.ts";
export { resumableBlob } from "./resumable.ts";
export type { ResumableOptions, RetryEvent } from "./resumable.ts";
export { DEFAULT_RETRY } from "./retry.ts";
export type { RetryPolicy } from "./retry.ts";
