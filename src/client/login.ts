/**
 * `login` and `logout`: credentials checked against the registry, then saved to (or removed from) Docker's
 * config.json, where every later pull finds them.
 */
import process from "node:process";
import type { Context } from "./context.ts";
import { errorOf } from "../errdefs/mod.ts";
import { dockerConfigPath, normalizeRegistry, storeCredentials } from "../registry/mod.ts";
import type { Credentials } from "../registry/mod.ts";
import { openRegistry } from "./registry.ts";

export interface LoginOptions {
  plainHttp?: boolean;
  skipVerify?: boolean;
  /** Locates config.json (DOCKER_CONFIG, HOME); default process.env. */
  env?: Record<string, string | undefined>;
}

/** The registry a login argument names ("docker.io", "host:port"); InvalidArgument when it names none. */
export function loginRegistry(arg: string): string {
  const registry = normalizeRegistry(arg);
  if (!/^[a-z0-9.-]+(:\d+)?$|^\[[0-9a-f:.]+\](:\d+)?$/.test(registry)) throw errorOf("InvalidArgument", `login: "${arg.slice(0, 200)}" is not a registry host`);
  return registry;
}

/**
 * Checks `creds` against `registry` with the same auth flow a pull uses (GET /v2/, token or Basic), and
 * only when the registry accepts them saves them to config.json (atomically, mode 0600). Returns the
 * file's path. Refused credentials are Unauthorized and nothing is written.
 */
export async function login(ctx: Context, registryArg: string, creds: Credentials, opts: LoginOptions = {}): Promise<string> {
  const registry = loginRegistry(registryArg);
  if (creds.username === "" || creds.username.includes(":")) throw errorOf("InvalidArgument", "login: the username must be non-empty and contain no ':'");
  if (creds.password === "") throw errorOf("InvalidArgument", "login: the password is empty");
  const client = await openRegistry(ctx, { plainHttp: opts.plainHttp, skipVerify: opts.skipVerify, env: opts.env });
  try {
    await client.checkLogin(registry, creds);
  } finally {
    await client.close();
  }
  const path = dockerConfigPath(opts.env ?? process.env);
  await storeCredentials(path, registry, creds);
  return path;
}

/** Removes the saved credentials for a registry; false when there were none. */
export async function logout(registryArg: string, opts: { env?: Record<string, string | undefined> } = {}): Promise<boolean> {
  return storeCredentials(dockerConfigPath(opts.env ?? process.env), loginRegistry(registryArg), undefined);
}
