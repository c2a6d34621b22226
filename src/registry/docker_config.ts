/**
 * Registry credentials in Docker's `config.json`, shared with docker, nerdctl and podman:
 * `{"auths": {"<registry>": {"auth": base64("user:password")}}}` at `$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`. Docker Hub's key is `https://index.docker.io/v1/`; other registries are keyed
 * by host[:port] (older tools wrote URLs, which are read too). Other fields of the file are kept as they are.
 */
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { writeFileAtomic } from "../platform/durable.ts";
import type { Credentials } from "./auth.ts";
import { DEFAULT_DOMAIN } from "./reference.ts";

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}
interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  [other: string]: unknown;
}

/** Where Docker keeps its config: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker"), "config.json");
}

/**
 * The registry a login argument or config key names, as references write it: "docker.io" for Docker Hub
 * (and its aliases and URLs), else host[:port] without scheme or path. "" when nothing is left.
 */
export function normalizeRegistry(s: string): string {
  const host = s.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]!.toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DEFAULT_DOMAIN : host;
}

/** The key Docker uses in `auths` for `registry` (normalised). */
export function configKey(registry: string): string {
  return registry === DEFAULT_DOMAIN ? DOCKER_HUB_KEY : registry;
}

async function readConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (isErrno(e, "ENOENT")) return {};
    throw errorOf("InvalidArgument", `read credentials ${path}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
  if (text.trim() === "") return {};
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw errorOf("InvalidArgument", `read credentials ${path}: not valid JSON`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw errorOf("InvalidArgument", `read credentials ${path}: not a JSON object`);
  const auths = (j as DockerConfig).auths;
  if (auths !== undefined && (typeof auths !== "object" || auths === null || Array.isArray(auths))) throw errorOf("InvalidArgument", `read credentials ${path}: "auths" is not an object`);
  return j as DockerConfig;
}

function decode(e: AuthEntry): Credentials | undefined {
  if (typeof e?.auth === "string" && e.auth !== "") {
    const plain = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = plain.indexOf(":");
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (typeof e?.username === "string" && typeof e.password === "string" && e.username !== "") return { username: e.username, password: e.password };
  return undefined;
}

/**
 * Reads the credentials in the config at `path` (absent file: none). Returns a lookup by registry as
 * references write it ("docker.io", "127.0.0.1:5000"). A file that is not JSON throws InvalidArgument
 * naming the file, never its content.
 */
export async function readCredentials(path: string): Promise<(registry: string) => Credentials | undefined> {
  const cfg = await readConfig(path);
  const byRegistry = new Map<string, Credentials>();
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    const creds = decode(entry);
    const registry = normalizeRegistry(key);
    // An exact key (as Docker writes it) wins over a URL form of the same registry.
    if (creds && (!byRegistry.has(registry) || key === configKey(registry))) byRegistry.set(registry, creds);
  }
  return (registry) => byRegistry.get(normalizeRegistry(registry));
}

/**
 * Saves (or with `creds` undefined, removes) the credentials for `registry` in the config at `path`,
 * keeping everything else in the file. The file is replaced atomically, mode 0600. Returns false when
 * removing found nothing to remove.
 */
export async function storeCredentials(path: string, registry: string, creds: Credentials | undefined): Promise<boolean> {
  const cfg = await readConfig(path);
  const auths: Record<string, AuthEntry> = { ...(cfg.auths ?? {}) };
  const name = normalizeRegistry(registry);
  let found = false;
  for (const key of Object.keys(auths)) {
    if (normalizeRegistry(key) === name) {
      delete auths[key];
      found = true;
    }
  }
  if (creds) auths[configKey(name)] = { auth: Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64") };
  else if (!found) return false;
  await writeFileAtomic(path, JSON.stringify({ ...cfg, auths }, null, "\t") + "\n", { mode: 0o600 });
  return true;
}
