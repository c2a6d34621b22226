/**
 * A real registry for tests: Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port, with its
 * own config and storage in a temporary directory.
 *
 *   const reg = await startRegistry();                 // reg.host = "127.0.0.1:40123"
 *   await pushImage(reg.host, "busybox", "1", {...});  // see oci_builder.ts
 *   await reg.stop();                                  // kills it and removes its storage
 *
 * With `{ htpasswd: await htpasswdLine("user", "pw") }` it requires Basic auth; with `{ token: {...} }`
 * Bearer tokens from a token server of the test's own. With `{ tls: {...} }` it speaks HTTPS (see
 * certs.ts), and `{ storage: other.dir }` serves another test registry's content (push over plain HTTP to
 * one, pull over TLS from the other).
 */
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "../../src/platform/exec.ts";

const REGISTRY_BIN = "/usr/bin/docker-registry";

export interface TestRegistry {
  /** "127.0.0.1:PORT", usable in references ("127.0.0.1:PORT/repo:tag") with plain HTTP. */
  host: string;
  /** The temporary directory holding config.yml, htpasswd and data/. */
  dir: string;
  /** Stops the registry and deletes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on 0, read the port, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One bcrypt htpasswd line for `user`:`password` (docker-registry accepts bcrypt only), made with the
 * `htpasswd` tool from apache2-utils.
 */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  const r = await execFile("htpasswd", ["-nbB", user, password]);
  if (r.code !== 0) throw new Error(`htpasswd failed: ${r.stderr.trim()} (apt-get install -y apache2-utils)`);
  return r.stdout.trim() + "\n";
}

/**
 * Token authentication (distribution's token spec): the registry answers 401 with a Bearer challenge naming
 * `realm` and `service`, and accepts JWTs signed by a key whose certificate is in `rootCertBundle` (PEM),
 * issued by `issuer`, for audience `service`.
 */
export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
}

/** HTTPS for a test registry: PEM files of its certificate and key; with `clientCAs` clients need a certificate. */
export interface RegistryTls {
  certificate: string;
  key: string;
  clientCAs?: string[];
}

/**
 * Starts docker-registry and resolves once GET /v2/ answers (200, or 401 when auth is on). `htpasswd` is
 * the content of an htpasswd file (see htpasswdLine); when given, every request needs Basic auth. `token`
 * turns on Bearer token auth instead (see TokenAuthConfig). `tls` serves HTTPS; `storage` is the `dir` of
 * another test registry whose content this one serves.
 */
export async function startRegistry(opts: { htpasswd?: string; token?: TokenAuthConfig; tls?: RegistryTls; storage?: string } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-registry-"));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const lines = [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(opts.storage ?? dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
    ];
    if (opts.tls !== undefined) {
      lines.push("  tls:", `    certificate: ${opts.tls.certificate}`, `    key: ${opts.tls.key}`);
      if (opts.tls.clientCAs?.length) lines.push("    clientcas:", ...opts.tls.clientCAs.map((c) => `      - ${c}`));
    }
    if (opts.htpasswd !== undefined) {
      await writeFile(join(dir, "htpasswd"), opts.htpasswd);
      lines.push("auth:", "  htpasswd:", "    realm: tsctr-test", `    path: ${join(dir, "htpasswd")}`);
    }
    if (opts.token !== undefined) {
      await writeFile(join(dir, "token-root.crt"), opts.token.rootCertBundle);
      lines.push(
        "auth:",
        "  token:",
        `    realm: ${opts.token.realm}`,
        `    service: ${opts.token.service}`,
        `    issuer: ${opts.token.issuer}`,
        `    rootcertbundle: ${join(dir, "token-root.crt")}`,
      );
    }
    await writeFile(join(dir, "config.yml"), lines.join("\n") + "\n");
    try {
      return await launch(dir, `127.0.0.1:${port}`, opts.tls !== undefined);
    } catch (e) {
      if (attempt >= 2) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
}

async function launch(dir: string, host: string, tls: boolean): Promise<TestRegistry> {
  const child = spawn(REGISTRY_BIN, ["serve", join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => {
    if (stderr.length < 16_384) stderr += b.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", (e) => {
      stderr += String(e);
      exited = true;
      resolve();
    });
  });
  const stop = async (removeDir: boolean) => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exit;
      clearTimeout(timer);
    }
    if (removeDir) await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`docker-registry exited at start: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      // An HTTPS registry answers a plain HTTP request with 400 ("client sent an HTTP request to an HTTPS server").
      if (res.status === 200 || res.status === 401 || (tls && res.status === 400)) {
        child.stderr.removeAllListeners("data");
        child.stderr.resume();
        return { host, dir, stop: () => stop(true) };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop(false);
  throw new Error(`docker-registry did not answer on ${host} within 15 s: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
}
