/**
 * Opening a registry client the way every command that talks to registries does: hosts and mirrors from
 * the hosts directory (--hosts-dir), credentials from Docker's config.json, and the command's own
 * --plain-http, --skip-verify and --user.
 *
 *   const registry = await openRegistry(ctx, { plainHttp: opts.plainHttp, user: opts.user });
 *   try { await registry.resolve(ref) } finally { await registry.close() }
 */
import process from "node:process";
import type { Context } from "./context.ts";
import { errorOf } from "../errdefs/mod.ts";
import { RegistryClient, dockerConfigPath, normalizeRegistry, readCredentials, registryHosts } from "../registry/mod.ts";
import type { Credentials } from "../registry/mod.ts";

export interface RegistryOptions {
  /** The registry itself speaks http:// (hosts from hosts.toml keep their own scheme). */
  plainHttp?: boolean;
  /** Verify no TLS certificate, on any of the registry's hosts. */
  skipVerify?: boolean;
  /** "user:password" for the registry of the reference; overrides config.json (not sent to mirrors). */
  user?: string;
  /** The registry `user` applies to ("docker.io", "127.0.0.1:5000"). */
  userRegistry?: string;
  /** The environment that locates config.json (DOCKER_CONFIG, HOME); default process.env. */
  env?: Record<string, string | undefined>;
}

/** Splits "user:password" at its first colon; anything without both halves is InvalidArgument. */
export function parseUser(user: string): Credentials {
  const colon = user.indexOf(":");
  if (colon <= 0) throw errorOf("InvalidArgument", "invalid --user: expected user:password");
  return { username: user.slice(0, colon), password: user.slice(colon + 1) };
}

/**
 * A registry client for `ctx` and the command's options. Guarantees: config.json is read once, now (a
 * malformed one is InvalidArgument naming the file); hosts.toml files are read when a registry is first
 * used; the caller closes the client.
 */
export async function openRegistry(ctx: Context, opts: RegistryOptions = {}): Promise<RegistryClient> {
  const fromConfig = await readCredentials(dockerConfigPath(opts.env ?? process.env));
  const override = opts.user === undefined ? undefined : parseUser(opts.user);
  const overrideFor = opts.userRegistry === undefined ? undefined : normalizeRegistry(opts.userRegistry);
  return new RegistryClient({
    hosts: (domain) => registryHosts(domain, { hostsDir: ctx.hostsDir, plainHttp: opts.plainHttp, skipVerify: opts.skipVerify }),
    credentials: (registry) => (override && (overrideFor === undefined || normalizeRegistry(registry) === overrideFor) ? override : fromConfig(registry)),
  });
}
