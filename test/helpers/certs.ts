/**
 * Throw-away X.509 material for TLS tests, made with the openssl command line: a CA, a server certificate
 * for 127.0.0.1 signed by it, and a client certificate signed by a second CA.
 *
 *   const pki = await makePki();     // pki.dir holds ca.pem, server.pem, server.key, client-ca.pem, client.pem, client.key
 *   await pki.cleanup();
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "../../src/platform/exec.ts";

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCa: string;
  clientCert: string;
  clientKey: string;
  cleanup(): Promise<void>;
}

async function openssl(args: string[]): Promise<void> {
  const r = await execFile("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

/** A CA (EC P-256 keys, 2 days) and a certificate signed by it for `cn` with the given subjectAltName. */
async function issue(dir: string, name: string, caName: string, cn: string, ext: string): Promise<void> {
  const p = (s: string) => join(dir, s);
  await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`), "-subj", `/CN=${cn}`]);
  await writeFile(p(`${name}.ext`), ext);
  await openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${caName}.pem`), "-CAkey", p(`${caName}.key`), "-CAcreateserial", "-days", "2", "-out", p(`${name}.pem`), "-extfile", p(`${name}.ext`)]);
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.pem`), "-days", "2", "-subj", `/CN=${cn}`]);
}

/** Creates a server CA, a server certificate for IP 127.0.0.1 and localhost, a client CA and a client certificate. */
export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-pki-"));
  await makeCa(dir, "ca", "tsctr test CA");
  await issue(dir, "server", "ca", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await makeCa(dir, "client-ca", "tsctr test client CA");
  await issue(dir, "client", "client-ca", "tsctr-client", "extendedKeyUsage=clientAuth\n");
  const p = (s: string) => join(dir, s);
  return {
    dir,
    ca: p("ca.pem"),
    serverCert: p("server.pem"),
    serverKey: p("server.key"),
    clientCa: p("client-ca.pem"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
