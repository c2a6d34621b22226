export { Reference, parseReference, DEFAULT_DOMAIN } from "./reference.ts";
export { RegistryClient, MAX_MANIFEST_SIZE } from "./client.ts";
export type { RegistryClientOptions, Resolved } from "./client.ts";
export { parseChallenges } from "./auth.ts";
export type { Challenge, Credentials } from "./auth.ts";
export { blobExists, pushBlob, putManifest, DEFAULT_CHUNK_SIZE } from "./push.ts";
export type { BlobOutcome, PushBlobOptions } from "./push.ts";
