/**
 * Where to reach a registry: containerd's hosts directory layout. `<hosts-dir>/<registry>/hosts.toml`
 * lists mirrors (`[host."…"]`, tried in file order) and the upstream (`server`, tried last), each with its
 * capabilities, TLS settings and extra headers:
 *
 *   server = "https://registry-1.docker.io"
 *   [host."http://10.0.0.2:5000"]
 *     capabilities = ["pull", "resolve"]
 *   [host."https://mirror.site:8443"]
 *     ca = "/etc/tsctr/certs.d/site-ca.pem"           # or an array; relative paths are from this file's dir
 *     client = [["client.crt", "client.key"]]         # or "client.pem" (certificate and key in one file)
 *     skip_verify = false
 *     [host."https://mirror.site:8443".header]
 *       x-site = "edge-7"
 *
 * Without a file the registry itself is the only host (https://, or http:// with --plain-http;
 * registry-1.docker.io for docker.io). `<hosts-dir>/_default/hosts.toml` applies to registries without
 * their own directory.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { apiHostOf } from "./reference.ts";
import { isTable, parseToml } from "./toml.ts";
import type { TomlTable, TomlValue } from "./toml.ts";

export type Capability = "pull" | "resolve" | "push";
const CAPABILITIES: readonly Capability[] = ["pull", "resolve", "push"];

/** TLS settings of one host: files are named, not yet read (see tlsMaterial in tls.ts). */
export interface HostTls {
  skipVerify: boolean;
  /** Extra CA certificate files (PEM), trusted besides the system's. */
  ca: string[];
  /** Client certificates: a PEM file with certificate and key, or a certificate and a key file. */
  clients: { cert: string; key?: string }[];
}

/** One place to send API requests for a registry: a mirror or the upstream itself. */
export interface RegistryHost {
  scheme: "http" | "https";
  /** host[:port] as in a URL's `host` (the default port omitted). */
  host: string;
  /** The API root path, "/v2" unless the host URL names another (containerd's `/v2` suffix rule). */
  path: string;
  capabilities: ReadonlySet<Capability>;
  tls: HostTls;
  /** Extra request headers (lowercased names). */
  headers: Record<string, string[]>;
  /** True for the registry's own server, false for a mirror. */
  upstream: boolean;
}

export interface HostsOptions {
  /** The hosts directory; undefined means none is consulted. */
  hostsDir?: string;
  /** The default upstream speaks http:// (a local registry). */
  plainHttp?: boolean;
  /** Verify no TLS certificate, on every host. */
  skipVerify?: boolean;
}

/**
 * The hosts to try for registry `domain` ("docker.io", "localhost:5000"), mirrors first and the upstream
 * last. Guarantees at least one host. A malformed hosts.toml throws InvalidArgument naming the file and line.
 */
export async function registryHosts(domain: string, opts: HostsOptions = {}): Promise<RegistryHost[]> {
  const upstream = defaultHost(domain, opts);
  if (!opts.hostsDir) return [upstream];
  for (const dir of [domain, "_default"]) {
    const file = join(opts.hostsDir, dir, "hosts.toml");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if (isErrno(e, "ENOENT") || isErrno(e, "ENOTDIR")) continue;
      throw errorOf("InvalidArgument", `read hosts file ${file}: ${(e as Error).message}`);
    }
    return parseHostsFile(text, file, upstream, opts);
  }
  return [upstream];
}

/** The registry's own server with no configuration: https (or http) on its API host, every capability. */
export function defaultHost(domain: string, opts: HostsOptions = {}): RegistryHost {
  return {
    scheme: opts.plainHttp ? "http" : "https",
    host: apiHostOf(domain),
    path: "/v2",
    capabilities: new Set(CAPABILITIES),
    tls: { skipVerify: opts.skipVerify ?? false, ca: [], clients: [] },
    headers: {},
    upstream: true,
  };
}

/**
 * Parses one hosts.toml (`file` names it in errors; relative certificate paths are resolved from its
 * directory) into its hosts: `[host."…"]` entries in file order, then `server` (or `upstream`).
 */
export function parseHostsFile(text: string, file: string, upstream: RegistryHost, opts: HostsOptions = {}): RegistryHost[] {
  const doc = parseToml(text, file);
  const fail: Fail = (detail) => {
    throw errorOf("InvalidArgument", `${file}: ${detail}`);
  };
  const base = dirname(file);
  const hostOf = (url: string, t: TomlTable, isUpstream: boolean, where: string): RegistryHost => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      return fail(`${where}: "${url}" is not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") fail(`${where}: "${url}" must be http:// or https://`);
    if (u.username || u.password || u.search || u.hash) fail(`${where}: "${url}" must not carry credentials, a query or a fragment`);
    let path = u.pathname.replace(/\/+$/, "");
    if (optBool(t.override_path, `${where}.override_path`, fail) !== true && !path.endsWith("/v2")) path += "/v2";
    return {
      scheme: u.protocol === "http:" ? "http" : "https",
      host: u.host,
      path,
      capabilities: capabilities(t.capabilities, `${where}.capabilities`, fail),
      tls: {
        skipVerify: (opts.skipVerify ?? false) || optBool(t.skip_verify, `${where}.skip_verify`, fail) === true,
        ca: stringList(t.ca, `${where}.ca`, fail).map((p) => absolute(p, base)),
        clients: clientCerts(t.client, `${where}.client`, fail).map((c) => ({ cert: absolute(c.cert, base), key: c.key === undefined ? undefined : absolute(c.key, base) })),
      },
      headers: headers(t.header, `${where}.header`, fail),
      upstream: isUpstream,
    };
  };

  const out: RegistryHost[] = [];
  const hosts = doc.host;
  if (hosts !== undefined && !isTable(hosts)) fail('"host" must be a table of [host."<url>"] entries');
  for (const [url, t] of Object.entries(hosts ?? {})) {
    if (!isTable(t)) fail(`host "${url}" must be a table`);
    out.push(hostOf(url, t, false, `host."${url}"`));
  }
  const server = doc.server;
  if (server !== undefined && typeof server !== "string") fail('"server" must be a string URL');
  if (server !== undefined) out.push(hostOf(server, doc, true, "server"));
  else if (["capabilities", "ca", "client", "skip_verify", "header"].some((k) => k in doc)) out.push(hostOf(`${upstream.scheme}://${upstream.host}`, doc, true, "server"));
  else out.push(upstream);
  return out;
}

function absolute(p: string, base: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

type Fail = (detail: string) => never;

function optBool(v: TomlValue | undefined, where: string, fail: Fail): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  return fail(`${where} must be true or false`);
}

function stringList(v: TomlValue | undefined, where: string, fail: Fail): string[] {
  if (v === undefined) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  return fail(`${where} must be a string or an array of strings`);
}

function capabilities(v: TomlValue | undefined, where: string, fail: Fail): Set<Capability> {
  if (v === undefined) return new Set(CAPABILITIES);
  const list = stringList(v, where, fail);
  for (const c of list) if (!CAPABILITIES.includes(c as Capability)) fail(`${where}: unknown capability "${c}" (pull, resolve, push)`);
  return new Set(list as Capability[]);
}

function clientCerts(v: TomlValue | undefined, where: string, fail: Fail): { cert: string; key?: string }[] {
  if (v === undefined) return [];
  if (typeof v === "string") return [{ cert: v }];
  if (!Array.isArray(v)) return fail(`${where} must be a path, or an array of paths and [cert, key] pairs`);
  // containerd accepts a single [cert, key] pair written without the outer array, too.
  if (v.length === 2 && v.every((x) => typeof x === "string") && /\.key$/i.test(v[1] as string)) return [{ cert: v[0] as string, key: v[1] as string }];
  return v.map((x) => {
    if (typeof x === "string") return { cert: x };
    // ["client.pem", ""]: containerd's way of saying the key is in the certificate's file.
    if (Array.isArray(x) && x.length >= 1 && x.length <= 2 && x.every((y) => typeof y === "string")) return { cert: x[0] as string, key: (x[1] as string | undefined) || undefined };
    return fail(`${where}: each entry must be a path or a [cert, key] pair`);
  });
}

function headers(v: TomlValue | undefined, where: string, fail: Fail): Record<string, string[]> {
  if (v === undefined) return {};
  if (!isTable(v)) return fail(`${where} must be a table`);
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) fail(`${where}: "${k}" is not a valid header name`);
    const list = stringList(val, `${where}.${k}`, fail);
    if (list.some((s) => /[\r\n\0]/.test(s))) fail(`${where}.${k}: a header value must be one line`);
    out[k.toLowerCase()] = list;
  }
  return out;
}
