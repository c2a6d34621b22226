/**
 * TLS settings for undici's connector: the trusted roots (Node's bundled CAs, the system's, and a host's
 * extra CA files), client certificates, and skip_verify. Only hosts with settings of their own, or whose
 * certificate Node's bundled roots cannot verify, come here (see Transport). A secure context is built once per host and
 * reused for every connection (building one costs tens of milliseconds); the same material is passed as
 * plain options too, for runtimes whose node:tls ignores `secureContext` (Deno). node:tls itself loads on the
 * first such host (a pull over plain HTTP, or from hosts Node's roots verify, never loads it: ~5 ms of start-up).
 */
import { readFile } from "node:fs/promises";
import type tls from "node:tls";
import { errorOf } from "../errdefs/mod.ts";
import type { HostTls } from "./hosts.ts";

export interface ConnectTls {
  rejectUnauthorized: boolean;
  ca?: string[];
  cert?: string[];
  key?: string[];
  secureContext?: tls.SecureContext;
}

let roots: string[] | undefined;

/** Node's bundled root CAs plus the operating system's store (read once, on the first https connection). */
function trustedRoots(tlsModule: typeof tls): string[] {
  if (roots) return roots;
  const t = tlsModule as { getCACertificates?: (type: string) => string[] };
  const all = t.getCACertificates ? [...t.getCACertificates("default"), ...t.getCACertificates("system")] : [...tlsModule.rootCertificates];
  return (roots = [...new Set(all)]);
}

async function readPem(path: string, what: string, host: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw errorOf("InvalidArgument", `read ${what} ${path} for registry ${host}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}

/**
 * The connect options for `host` with settings `t`: roots are the trusted ones plus t.ca; each client
 * entry adds a certificate and its key (from the same file when no key file is named). An unreadable or
 * invalid file throws InvalidArgument naming it and the host.
 */
export async function connectTls(t: HostTls, host: string): Promise<ConnectTls> {
  const extra = await Promise.all(t.ca.map((p) => readPem(p, "CA file", host)));
  const cert: string[] = [];
  const key: string[] = [];
  for (const c of t.clients) {
    const certPem = await readPem(c.cert, "client certificate", host);
    cert.push(certPem);
    key.push(c.key === undefined ? certPem : await readPem(c.key, "client key", host));
  }
  const out: ConnectTls = { rejectUnauthorized: !t.skipVerify };
  if (extra.length === 0 && cert.length === 0 && t.skipVerify) return out;
  const tls = await import("node:tls");
  out.ca = [...trustedRoots(tls), ...extra];
  if (cert.length) {
    out.cert = cert;
    out.key = key;
  }
  try {
    out.secureContext = tls.createSecureContext({ ca: out.ca, cert: out.cert, key: out.key });
  } catch (e) {
    const files = [...t.ca, ...t.clients.flatMap((c) => [c.cert, c.key ?? []].flat())].join(", ");
    throw errorOf("InvalidArgument", `load TLS material for registry ${host} (${files}): ${(e as Error).message.split("\n")[0]}`);
  }
  return out;
}
