/**
 * Registry authentication (distribution token spec): parsing WWW-Authenticate challenges, getting Bearer
 * tokens from the realm named by the challenge, Basic credentials, and a cache of Authorization values per
 * host and scope that honours a token's expires_in.
 */
import { Buffer } from "node:buffer";
import { errorOf } from "../errdefs/mod.ts";
import { httpError } from "./errors.ts";
import { readCapped, readErrorBody } from "./transport.ts";
import type { Transport } from "./transport.ts";

export interface Credentials {
  username: string;
  password: string;
}

/** One challenge of a WWW-Authenticate header: scheme lowercased ("bearer", "basic"), params by lowercased name. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate values (RFC 7235) into challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`.
 * Several challenges may share one value; quoted strings may contain commas and backslash escapes.
 */
export function parseChallenges(values: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const v of values) {
    let i = 0;
    let cur: Challenge | undefined;
    const skip = (chars: string) => {
      while (i < v.length && chars.includes(v[i]!)) i++;
    };
    const token = () => {
      const start = i;
      while (i < v.length && !" \t,=".includes(v[i]!)) i++;
      return v.slice(start, i);
    };
    while (i < v.length) {
      skip(" \t,");
      const name = token();
      if (name === "") {
        i++;
        continue;
      }
      skip(" \t");
      if (v[i] === "=" && cur) {
        i++;
        skip(" \t");
        let value = "";
        if (v[i] === '"') {
          i++;
          while (i < v.length && v[i] !== '"') {
            if (v[i] === "\\" && i + 1 < v.length) i++;
            value += v[i];
            i++;
          }
          i++;
        } else {
          value = token();
        }
        cur.params[name.toLowerCase()] = value;
      } else {
        cur = { scheme: name.toLowerCase(), params: {} };
        out.push(cur);
      }
    }
  }
  return out;
}

/** The Authorization value for Basic credentials. */
export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;
}

/** The scope that grants pulling from repository `path` ("library/busybox"). */
export function pullScope(path: string): string {
  return repositoryScope(path, ["pull"]);
}

/**
 * A repository scope of the token spec, e.g. `repository:team/app:pull,push` to push; a cross-repository
 * mount asks for `repository:<target>:pull,push` and `repository:<source>:pull` in one token request.
 */
export function repositoryScope(path: string, actions: readonly ("pull" | "push")[]): string {
  return `repository:${path}:${actions.join(",")}`;
}

/**
 * The scopes that grant pushing to repository `path`, and pulling from `from` for a cross-repository mount:
 * "repository:a:pull,push" or "repository:a:pull,push repository:b:pull" (one token for both).
 */
export function pushScope(path: string, from?: string): string {
  const own = repositoryScope(path, ["pull", "push"]);
  return from && from !== path ? `${own} ${repositoryScope(from, ["pull"])}` : own;
}

/**
 * Gets a Bearer token for `scope` (one scope, several joined by spaces, or none for a login check) from the
 * challenge's realm (GET realm?service=…&scope=…&scope=…), sending Basic `creds` when given. Returns the
 * Authorization value and how many seconds from now it stays valid (expires_in counted from issued_at
 * when the service sends it; 60 when absent, as the token spec says). Throws Unauthorized when the token
 * service refuses or answers without a token, Unavailable when it cannot be reached or answers 5xx.
 */
export async function fetchToken(
  transport: Transport,
  registryHost: string,
  challenge: Challenge,
  scope: string,
  creds: Credentials | undefined,
): Promise<{ authorization: string; ttlSeconds: number }> {
  const realm = challenge.params.realm;
  let url: URL;
  try {
    url = new URL(realm ?? "");
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("not http(s)");
  } catch {
    throw errorOf("Unauthorized", `registry ${registryHost} sent a Bearer challenge without a usable realm`);
  }
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  for (const s of scope.split(" ")) if (s !== "") url.searchParams.append("scope", s);
  if (creds) url.searchParams.set("account", creds.username);
  const headers: Record<string, string> = { accept: "application/json" };
  if (creds) headers.authorization = basicAuthorization(creds);
  const res = await transport.get(url.toString(), headers, url.host);
  if (res.status === 401 || res.status === 403) {
    await res.body.dump();
    const who = creds ? "the credentials" : "anonymous access";
    throw errorOf("Unauthorized", `token service ${url.host} of registry ${registryHost} refused ${who} for ${scope}`);
  }
  if (res.status !== 200) {
    const body = await readErrorBody(res.body);
    throw httpError(url.host, res.status, `a token for registry ${registryHost}`, `token service ${url.host} of registry ${registryHost} not found (404)`, body);
  }
  const bytes = await readCapped(res.body, 1 << 20, () => errorOf("Unauthorized", `token service ${url.host} answered more than 1 MiB`), url.host);
  let j: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    j = JSON.parse(new TextDecoder().decode(bytes)) as typeof j;
  } catch {
    throw errorOf("Unauthorized", `token service ${url.host} of registry ${registryHost} answered with invalid JSON`);
  }
  const token = typeof j.token === "string" && j.token !== "" ? j.token : j.access_token;
  if (typeof token !== "string" || token === "") throw errorOf("Unauthorized", `token service ${url.host} of registry ${registryHost} returned no token`);
  return { authorization: `Bearer ${token}`, ttlSeconds: tokenTtl(j.expires_in, j.issued_at, Date.now()) };
}

/**
 * Seconds a token stays valid from `now` (ms): `expiresIn` seconds (60 when absent or invalid) counted
 * from `issuedAt` (RFC 3339) when that is given and not in the future, else from now; never below 0.
 */
export function tokenTtl(expiresIn: unknown, issuedAt: unknown, now: number): number {
  const ttl = typeof expiresIn === "number" && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 60;
  const issued = typeof issuedAt === "string" ? Date.parse(issuedAt) : NaN;
  if (Number.isNaN(issued) || issued > now) return ttl;
  return Math.max(0, ttl - (now - issued) / 1000);
}

/** Authorization values per host and scope; entries with a TTL expire a few seconds early. */
export class AuthCache {
  readonly #entries = new Map<string, { value: string; expiresAt: number }>();

  /** The cached Authorization for host+scope, or undefined when absent or expired. */
  get(host: string, scope: string): string | undefined {
    const key = `${host} ${scope}`;
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (Date.now() >= e.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Remembers `value` for host+scope, for `ttlSeconds` (minus a safety margin) or for ever when omitted. */
  set(host: string, scope: string, value: string, ttlSeconds?: number): void {
    const margin = ttlSeconds === undefined ? 0 : Math.min(10, ttlSeconds / 10);
    const expiresAt = ttlSeconds === undefined ? Infinity : Date.now() + (ttlSeconds - margin) * 1000;
    this.#entries.set(`${host} ${scope}`, { value, expiresAt });
  }

  /** Forgets host+scope (after the registry rejected the cached value). */
  delete(host: string, scope: string): void {
    this.#entries.delete(`${host} ${scope}`);
  }
}
