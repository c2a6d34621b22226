/**
 * A Bearer token server for tests (distribution's token spec), in front of a docker-registry started with
 * `startRegistry({ token: { realm, service, issuer, rootCertBundle: certPem } })`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { randomBytes, sign } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "../../src/platform/exec.ts";

interface Access {
  type: "repository";
  name: string;
  actions: string[];
}

/**
 * A token server per the distribution token spec: GET /token?service=…&scope=… answers a JWT (RS256, the
 * certificate in x5c) granting every requested repository scope (several `scope` parameters make one token).
 * Anonymous requests get tokens; requests with Basic credentials must carry bob:hunter2. Every request is
 * recorded, its scopes joined by a space.
 */
export async function startTokenServer(service: string, issuer: string) {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-token-"));
  const r = await execFile("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2", "-subj", "/CN=tsctr-test-token"]);
  assert.equal(r.code, 0, r.stderr);
  const key = await readFile(join(dir, "key.pem"), "utf8");
  const certPem = await readFile(join(dir, "cert.pem"), "utf8");
  await rm(dir, { recursive: true, force: true });
  // x5c holds base64 DER, which is the PEM body without its armour and line breaks.
  const x5c = certPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

  const signed = (access: Access[], sub: string) => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64u({ typ: "JWT", alg: "RS256", x5c: [x5c] });
    const claims = b64u({ iss: issuer, sub, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString("hex"), access });
    const sig = sign("RSA-SHA256", Buffer.from(`${head}.${claims}`), key).toString("base64url");
    return `${head}.${claims}.${sig}`;
  };
  /** A signed token granting `actions` on repository `name` (also used by tests to push). */
  const mint = (name: string, actions: string[], sub = "") => signed([{ type: "repository", name, actions }], sub);

  const requests: { scope: string | null; service: string | null; authorization: string | undefined }[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const scopes = url.searchParams.getAll("scope");
    requests.push({ scope: scopes.length ? scopes.join(" ") : null, service: url.searchParams.get("service"), authorization: req.headers.authorization });
    const access = scopes.map((sc) => /^repository:([^:]+):((?:pull|push)(?:,(?:pull|push))?)$/.exec(sc)).map((m) => m && { type: "repository", name: m[1]!, actions: m[2]!.split(",") });
    let sub = "";
    if (req.headers.authorization) {
      const [user, pw] = Buffer.from(req.headers.authorization.replace(/^Basic /, ""), "base64").toString().split(":");
      if (user !== "bob" || pw !== "hunter2") {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ details: "bad credentials" }));
        return;
      }
      sub = "bob";
    }
    if (url.pathname !== "/token" || access.length === 0 || access.includes(null) || url.searchParams.get("service") !== service) {
      res.writeHead(400).end();
      return;
    }
    // Docker Hub answers both fields; send access_token only to check the client reads it.
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: signed(access as Access[], sub), expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certPem,
    mint,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
