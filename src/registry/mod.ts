export { Reference, parseReference, DEFAULT_DOMAIN } from "./reference.ts";
export { RegistryClient, MAX_MANIFEST_SIZE } from "./client.ts";
export type { RegistryClientOptions, Resolved } from "./client.ts";
export { parseChallenges, repositoryScope } from "./auth.ts";
export { registryHosts, defaultHost } from "./hosts.ts";
export type { Capability, HostTls, RegistryHost, HostsOptions } from "./hosts.ts";
export { dockerConfigPath, normalizeRegistry, readCredentials, storeCredentials } from "./docker_config.ts";
export type { Challenge, Credentials } from "./auth.ts";
