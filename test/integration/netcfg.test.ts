/**
 * Where and how tsctr talks to registries, through the CLI against real docker-registry instances:
 * hosts.toml mirrors for docker.io (offline `tsctr pull busybox`), mirror fallback, HTTPS with a CA and
 * client certificates from hosts.toml, --skip-verify, login/logout with Docker's config.json; and bad
 * answers from a small registry front written here (redirect loops, HTML, endless manifests, failing
 * token services), with credentials never shown.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, htpasswdLine, startRegistry } from "../helpers/registry.ts";
import type { TestRegistry } from "../helpers/registry.ts";
import { makePki } from "../helpers/certs.ts";
import { layerFromFiles, pushBusyboxImage, pushImage } from "../helpers/oci_builder.ts";
import { spawn } from "node:child_process";
import { DENO_SOURCE, NODE_SOURCE, makeTsctr } from "../helpers/tsctr.ts";
import type { Tsctr } from "../helpers/tsctr.ts";
import { RegistryClient, parseReference } from "../../src/registry/mod.ts";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ErrorKind } from "../../src/errdefs/mod.ts";

const PLATFORM = ["--platform", "linux/amd64"];

/** A temporary hosts directory with `files` (path relative to it → content). */
async function hostsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-netcfg-hosts-"));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** Runs `fn` with a fresh tsctr (own --root/--state; from source on Node unless `command`) and removes everything afterwards. */
async function withTsctr(fn: (tsctr: Tsctr) => Promise<void>, command = NODE_SOURCE): Promise<void> {
  const tsctr = await makeTsctr(command);
  try {
    await fn(tsctr);
  } finally {
    await tsctr.cleanup();
  }
}

function assertExit(r: { code: number | null; stdout: string; stderr: string }, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

test("hosts.toml mirrors for docker.io", async (t) => {
  const mirror = await startRegistry();
  const empty = await startRegistry();
  try {
    const img = await pushBusyboxImage(mirror.host, "library/busybox", "latest", "amd64");

    await t.test("`tsctr pull busybox` works offline through a local mirror", () =>
      withTsctr(async (tsctr) => {
        const dir = await hostsDir({ "docker.io/hosts.toml": `server = "https://registry-1.docker.io"\n\n[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n` });
        try {
          const r = await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", "busybox"]);
          assertExit(r, 0, "pull busybox");
          const ls = await tsctr(["images", "ls"]);
          assert.match(ls.stdout, /docker\.io\/library\/busybox:latest/);
          assert.ok(ls.stdout.includes(img.digest.slice(7, 19)) || ls.stdout.includes(img.digest), ls.stdout);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    await t.test("a mirror that is down and one without the image fall back to the next mirror", () =>
      withTsctr(async (tsctr) => {
        const down = `127.0.0.1:${await freePort()}`;
        const dir = await hostsDir({
          "docker.io/hosts.toml": [
            `[host."http://${down}"]`,
            '  capabilities = ["pull", "resolve"]',
            `[host."http://${empty.host}"]`,
            '  capabilities = ["pull", "resolve"]',
            `[host."http://${mirror.host}/v2"]`,
            '  capabilities = ["pull", "resolve"]',
            "",
          ].join("\n"),
        });
        try {
          const r = await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", "docker.io/library/busybox:latest"]);
          assertExit(r, 0, "pull through the third mirror");
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    await t.test("when every host fails, the error names the upstream's failure and what each mirror did", () =>
      withTsctr(async (tsctr) => {
        const [down, server] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
        const dir = await hostsDir({ "docker.io/hosts.toml": `server = "http://${server}"\n[host."http://${down}"]\n[host."http://${empty.host}"]\n` });
        try {
          const r = await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", "busybox"]);
          assertExit(r, 14, "pull with every host failing");
          assert.equal(r.stderr, `tsctr: cannot reach registry ${server}: connection refused (mirrors before it: ${down}: connection refused; ${empty.host} answered 404)\n`);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    await t.test("a mirror only for pull is not asked to resolve a tag; a malformed hosts.toml names file and line", () =>
      withTsctr(async (tsctr) => {
        const dir = await hostsDir({
          [`${mirror.host}/hosts.toml`]: `server = "http://127.0.0.1:${await freePort()}"\n[host."http://${mirror.host}"]\n  capabilities = ["pull"]\n`,
          "docker.io/hosts.toml": `[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"\n`,
        });
        try {
          // resolve goes to the (down) server only: the mirror's pull capability is not enough.
          const r = await tsctr(["--hosts-dir", dir, "pull", "--plain-http", ...PLATFORM, "-q", `${mirror.host}/library/busybox:latest`]);
          assertExit(r, 14, "resolve through a down server");
          assert.match(r.stderr, /^tsctr: cannot reach registry 127\.0\.0\.1:\d+: connection refused\n$/);
          const bad = await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", "busybox"]);
          assertExit(bad, 10, "malformed hosts.toml");
          assert.equal(bad.stderr, `tsctr: ${join(dir, "docker.io", "hosts.toml")} line 2: unterminated array: expected "]"\n`);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));
  } finally {
    await mirror.stop();
    await empty.stop();
  }
});

test("HTTPS registries: CA and client certificates from hosts.toml, --skip-verify", async (t) => {
  const pki = await makePki();
  const plain = await startRegistry();
  let tls: TestRegistry | undefined;
  let mtls: TestRegistry | undefined;
  try {
    await pushBusyboxImage(plain.host, "busybox", "1", "amd64");
    await pushBusyboxImage(plain.host, "library/busybox", "1", "amd64");
    tls = await startRegistry({ storage: plain.dir, tls: { certificate: pki.serverCert, key: pki.serverKey } });
    mtls = await startRegistry({ storage: plain.dir, tls: { certificate: pki.serverCert, key: pki.serverKey, clientCAs: [pki.clientCa] } });
    const tlsHost = tls.host;
    const mtlsHost = mtls.host;

    await t.test("an unknown CA is refused as Unavailable, naming the host", () =>
      withTsctr(async (tsctr) => {
        const r = await tsctr(["pull", ...PLATFORM, "-q", `${tlsHost}/busybox:1`]);
        assertExit(r, 14, "pull with an unknown CA");
        assert.match(r.stderr, new RegExp(`^tsctr: cannot reach registry ${tlsHost}: TLS certificate`));
      }));

    await t.test("a CA in the system's store (SSL_CERT_FILE here) is trusted without any configuration", () =>
      withTsctr(async (tsctr) => {
        const r = await tsctr(["pull", ...PLATFORM, "-q", `${tlsHost}/busybox:1`], { env: { ...process.env, SSL_CERT_FILE: pki.ca } });
        assertExit(r, 0, "pull with the CA in the system store");
      }));

    await t.test("the CA named in hosts.toml (a path relative to the file) is trusted", () =>
      withTsctr(async (tsctr) => {
        const dir = await hostsDir({ [`${tlsHost}/hosts.toml`]: `server = "https://${tlsHost}"\nca = "ca.pem"\n`, [`${tlsHost}/ca.pem`]: await readFile(pki.ca, "utf8") });
        try {
          assertExit(await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", `${tlsHost}/busybox:1`]), 0, "pull with the CA");
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    await t.test("--skip-verify pulls and warns on stderr", () =>
      withTsctr(async (tsctr) => {
        const r = await tsctr(["pull", "--skip-verify", ...PLATFORM, "-q", `${tlsHost}/busybox:1`]);
        assertExit(r, 0, "pull --skip-verify");
        assert.match(r.stderr, /^tsctr: warning: --skip-verify: TLS certificates are not verified.*\n$/);
      }));

    await t.test("a registry that requires a client certificate gets the one from hosts.toml `client`", () =>
      withTsctr(async (tsctr) => {
        const ca = `server = "https://${mtlsHost}"\nca = ["${pki.ca}"]\n`;
        const without = await hostsDir({ [`${mtlsHost}/hosts.toml`]: ca });
        const withCert = await hostsDir({ [`${mtlsHost}/hosts.toml`]: `${ca}client = [["${pki.clientCert}", "${pki.clientKey}"]]\n` });
        try {
          const r = await tsctr(["--hosts-dir", without, "pull", ...PLATFORM, "-q", `${mtlsHost}/busybox:1`]);
          assertExit(r, 14, "pull without a client certificate");
          assert.match(r.stderr, new RegExp(`cannot reach registry ${mtlsHost}`));
          assertExit(await tsctr(["--hosts-dir", withCert, "pull", ...PLATFORM, "-q", `${mtlsHost}/busybox:1`]), 0, "pull with a client certificate");
        } finally {
          await rm(without, { recursive: true, force: true });
          await rm(withCert, { recursive: true, force: true });
        }
      }));

    await t.test("on Deno too: a mirror of docker.io with a CA and a client certificate", () =>
      withTsctr(async (tsctr) => {
        const dir = await hostsDir({ "docker.io/hosts.toml": `[host."https://${mtlsHost}"]\n  ca = "${pki.ca}"\n  client = [["${pki.clientCert}", "${pki.clientKey}"]]\n` });
        try {
          assertExit(await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", "docker.io/busybox:1"]), 0, "pull on Deno through an mTLS mirror");
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }, DENO_SOURCE));

    await t.test("a missing CA file is InvalidArgument naming it", () =>
      withTsctr(async (tsctr) => {
        const dir = await hostsDir({ [`${tlsHost}/hosts.toml`]: `server = "https://${tlsHost}"\nca = "/nonexistent/ca.pem"\n` });
        try {
          const r = await tsctr(["--hosts-dir", dir, "pull", ...PLATFORM, "-q", `${tlsHost}/busybox:1`]);
          assertExit(r, 10, "missing CA file");
          assert.equal(r.stderr, `tsctr: read CA file /nonexistent/ca.pem for registry ${tlsHost}: ENOENT\n`);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));
  } finally {
    await tls?.stop();
    await mtls?.stop();
    await plain.stop();
    await pki.cleanup();
  }
});

test("login and logout with Docker's config.json (htpasswd registry)", async (t) => {
  const reg = await startRegistry({ htpasswd: await htpasswdLine("alice", "s3cret-pw") });
  const cfgDir = await mkdtemp(join(tmpdir(), "tsctr-netcfg-docker-"));
  const env = { ...process.env, DOCKER_CONFIG: cfgDir };
  const cfg = join(cfgDir, "config.json");
  try {
    const layer = await layerFromFiles([{ type: "file", path: "/private.txt", content: "for alice\n" }]);
    await pushImage(reg.host, "private/app", "1", { layers: [layer], auth: { username: "alice", password: "s3cret-pw" } });

    await t.test("a wrong password is exit 15 and saves nothing; never shown, even with --debug", () =>
      withTsctr(async (tsctr) => {
        const r = await tsctr(["--debug", "login", "--plain-http", "-u", "alice", "--password-stdin", reg.host], { env, input: "wrong-pw-123\n" });
        assertExit(r, 15, "login with a wrong password");
        assert.match(r.stderr, new RegExp(`^tsctr: registry ${reg.host} refused the credentials\n`));
        for (const secret of ["wrong-pw-123", Buffer.from("alice:wrong-pw-123").toString("base64")]) assert.ok(!(r.stdout + r.stderr).includes(secret));
        await assert.rejects(stat(cfg), { code: "ENOENT" });
      }));

    await t.test("login saves config.json 0600; a later pull uses it; logout removes it", () =>
      withTsctr(async (tsctr) => {
        const r = await tsctr(["login", "--plain-http", "--username", "alice", "--password-stdin", reg.host], { env, input: "s3cret-pw\n" });
        assertExit(r, 0, "login");
        assert.match(r.stdout, /Login succeeded/);
        assert.equal((await stat(cfg)).mode & 0o777, 0o600);
        const saved = JSON.parse(await readFile(cfg, "utf8"));
        assert.deepEqual(saved, { auths: { [reg.host]: { auth: Buffer.from("alice:s3cret-pw").toString("base64") } } });

        assertExit(await tsctr(["pull", "--plain-http", ...PLATFORM, "-q", `${reg.host}/private/app:1`], { env }), 0, "pull with saved credentials");

        const out = await tsctr(["logout", reg.host], { env });
        assertExit(out, 0, "logout");
        assert.deepEqual(JSON.parse(await readFile(cfg, "utf8")), { auths: {} });
        const denied = await tsctr(["pull", "--plain-http", ...PLATFORM, "-q", `${reg.host}/private/app:1`], { env });
        assertExit(denied, 15, "pull after logout");
      }));

    await t.test("without --password-stdin the password is asked on the terminal, without echo", async () => {
      const base = await mkdtemp(join(tmpdir(), "tsctr-netcfg-tty-"));
      const ttyCfg = join(base, "docker");
      try {
        const cmd = [...NODE_SOURCE, "--root", join(base, "root"), "--state", join(base, "state"), "login", "--plain-http", "-u", "alice", reg.host].join(" ");
        // script(1) runs the command on a new pseudo-terminal; the password is typed once the prompt shows.
        const child = spawn("script", ["-qec", cmd, "/dev/null"], { env: { ...process.env, DOCKER_CONFIG: ttyCfg }, stdio: ["pipe", "pipe", "pipe"] });
        let screen = "";
        let typed = false;
        child.stdout.on("data", (b: Buffer) => {
          screen += b.toString();
          if (!typed && screen.includes("Password: ")) {
            typed = true;
            child.stdin.write("s3cret-pw\r");
          }
        });
        const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
        assert.equal(code, 0, screen);
        assert.match(screen, /Password: /);
        assert.match(screen, /Login succeeded/);
        assert.ok(!screen.includes("s3cret-pw"), `the password was echoed: ${JSON.stringify(screen)}`);
        assert.equal(JSON.parse(await readFile(join(ttyCfg, "config.json"), "utf8")).auths[reg.host].auth, Buffer.from("alice:s3cret-pw").toString("base64"));
      } finally {
        await rm(base, { recursive: true, force: true });
      }
    });

    await t.test("--user on pull overrides config.json; a wrong one never shows in --debug output", () =>
      withTsctr(async (tsctr) => {
        await writeFile(cfg, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from("alice:stale-pw").toString("base64") } } }));
        const bad = await tsctr(["--debug", "pull", "--plain-http", ...PLATFORM, "-q", `${reg.host}/private/app:1`], { env });
        assertExit(bad, 15, "pull with stale saved credentials");
        assert.ok(!bad.stderr.includes("stale-pw") && !bad.stderr.includes(Buffer.from("alice:stale-pw").toString("base64")), bad.stderr);
        assertExit(await tsctr(["pull", "--plain-http", "--user", "alice:s3cret-pw", ...PLATFORM, "-q", `${reg.host}/private/app:1`], { env }), 0, "pull --user");
      }));
  } finally {
    await reg.stop();
    await rm(cfgDir, { recursive: true, force: true });
  }
});

async function rejectsKind(p: Promise<unknown>, kind: ErrorKind, re: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isKind(e, kind), `expected ${kind}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

/**
 * A registry front with Bearer auth (token "good-token" for dave:pa55word from /token) and misbehaving
 * repositories: `loop` redirects to itself, `html` answers a web page, `endless` a manifest that never
 * ends; repositories `tok500`, `tokjson` and `toknone` name token endpoints that fail in those ways.
 * Repositories `ok`, `short` and `old` serve a small manifest; their tokens live 300 s, 1 s, or were issued
 * two minutes ago for 60 s. `tokenRequests` counts token requests by endpoint.
 */
async function startFront(): Promise<{ host: string; tokenRequests: Map<string, number>; close(): Promise<void> }> {
  const good = `Basic ${Buffer.from("dave:pa55word").toString("base64")}`;
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"0".repeat(64)}`, size: 2 }, layers: [] });
  const lifetimes: Record<string, { expires_in: number; issued_at: string }> = {
    "/token": { expires_in: 300, issued_at: new Date().toISOString() },
    "/tokenshort": { expires_in: 1, issued_at: "" },
    "/tokenold": { expires_in: 60, issued_at: new Date(Date.now() - 120_000).toISOString() },
  };
  const tokenRequests = new Map<string, number>();
  let host = "";
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", `http://${host}`);
    const life = lifetimes[url.pathname];
    if (life) {
      tokenRequests.set(url.pathname, (tokenRequests.get(url.pathname) ?? 0) + 1);
      if (req.headers.authorization !== undefined && req.headers.authorization !== good) return res.writeHead(401).end();
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "good-token", ...life, issued_at: life.issued_at || new Date().toISOString() }));
    }
    if (url.pathname === "/token500") return res.writeHead(500).end("down");
    if (url.pathname === "/tokjson") return res.writeHead(200, { "content-type": "application/json" }).end("{not json");
    if (url.pathname === "/toknone") return res.writeHead(200, { "content-type": "application/json" }).end("{}");
    const repo = /^\/v2\/([^/]+)\//.exec(url.pathname)?.[1] ?? "";
    if (req.headers.authorization !== "Bearer good-token") {
      const realm = { tok500: "/token500", tokjson: "/tokjson", toknone: "/toknone", short: "/tokenshort", old: "/tokenold" }[repo] ?? "/token";
      return res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}${realm}",service="front"` }).end();
    }
    if (url.pathname === "/v2/") return res.writeHead(200).end("{}");
    if (["ok", "short", "old"].includes(repo)) return res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(manifest);
    if (repo === "loop") return res.writeHead(302, { location: url.pathname }).end();
    if (repo === "html") return res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><html><body>Please log in to the Wi-Fi</body></html>");
    if (repo === "endless") {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const write = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", write);
      };
      return write();
    }
    res.writeHead(404).end();
  };
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return { host, tokenRequests, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

test("bad answers: redirect loops, HTML, endless manifests, failing token services; Bearer login", async (t) => {
  const front = await startFront();
  const client = new RegistryClient({ plainHttp: true, credentials: () => ({ username: "dave", password: "pa55word" }) });
  const ref = (repo: string) => parseReference(`${front.host}/${repo}:1`);
  try {
    await t.test("a Bearer token is reused until expires_in (counted from issued_at) runs out", async () => {
      const twice = async (repo: string, pauseMs = 0) => {
        await client.resolve(ref(repo));
        await new Promise((r) => setTimeout(r, pauseMs));
        await client.resolve(ref(repo));
      };
      await twice("ok");
      assert.equal(front.tokenRequests.get("/token"), 1, "a 300 s token serves both requests");
      await twice("short");
      assert.equal(front.tokenRequests.get("/tokenshort"), 1, "a 1 s token serves a request right after");
      await twice("short", 1100);
      assert.equal(front.tokenRequests.get("/tokenshort"), 2, "and is fetched again once expired");
      await twice("old");
      assert.equal(front.tokenRequests.get("/tokenold"), 2, "a token issued 2 min ago for 60 s is already expired");
    });

    await t.test("a redirect loop stops after 10 hops with an error naming the registry", () =>
      rejectsKind(client.resolve(ref("loop")), "Unavailable", new RegExp(`^registry ${front.host}: more than 10 redirects \\(a redirect loop\\?\\)`)));

    await t.test("an HTML page instead of a manifest is named as such", () =>
      rejectsKind(client.resolve(ref("html")), "Unavailable", new RegExp(`^manifest ${front.host}/html:1: registry ${front.host} sent an HTML page \\(text/html\\)`)));

    await t.test("an endless manifest body is cut at 4 MiB", () =>
      rejectsKind(client.resolve(ref("endless")), "ResourceExhausted", /larger than the 4194304 byte limit/));

    await t.test("a token service that answers 500, invalid JSON or no token is a clear error without the credentials", async () => {
      const cases: [string, ErrorKind, RegExp][] = [
        ["tok500", "Unavailable", new RegExp(`^registry ${front.host} answered 500 for a token for registry ${front.host}$`)],
        ["tokjson", "Unauthorized", new RegExp(`^token service ${front.host} of registry ${front.host} answered with invalid JSON$`)],
        ["toknone", "Unauthorized", new RegExp(`^token service ${front.host} of registry ${front.host} returned no token$`)],
      ];
      for (const [repo, kind, re] of cases) {
        await assert.rejects(client.resolve(ref(repo)), (e) => {
          assert.ok(isKind(e, kind), `${repo}: ${(e as Error).message}`);
          assert.match((e as Error).message, re);
          assert.ok(!String((e as Error).stack).includes("pa55word"));
          return true;
        });
      }
    });

    await t.test("login answers a Bearer challenge with a token fetched with the credentials", () =>
      withTsctr(async (tsctr) => {
        const cfgDir = await mkdtemp(join(tmpdir(), "tsctr-netcfg-docker-"));
        const env = { ...process.env, DOCKER_CONFIG: cfgDir };
        try {
          const bad = await tsctr(["--debug", "login", "--plain-http", "-u", "dave", "--password-stdin", front.host], { env, input: "not-it-42" });
          assertExit(bad, 15, "Bearer login with a wrong password");
          assert.ok(!bad.stderr.includes("not-it-42") && !bad.stderr.includes(Buffer.from("dave:not-it-42").toString("base64")), bad.stderr);
          assertExit(await tsctr(["login", "--plain-http", "-u", "dave", "--password-stdin", front.host], { env, input: "pa55word" }), 0, "Bearer login");
          assert.equal(JSON.parse(await readFile(join(cfgDir, "config.json"), "utf8")).auths[front.host].auth, Buffer.from("dave:pa55word").toString("base64"));
        } finally {
          await rm(cfgDir, { recursive: true, force: true });
        }
      }));
  } finally {
    await client.close();
    await front.close();
  }
});
