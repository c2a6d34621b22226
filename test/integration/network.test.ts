/**
 * Container networks end to end with real runc and Debian's CNI plugins: --net none, --net host, the
 * tsctr0 bridge between two containers, published ports on 127.0.0.1, and cleanup after normal ends,
 * failed set-ups, a killed tsctr and bad input. Every tsctr that runs containers runs inside a network
 * namespace this test creates ("the host" below), so the bridge, its iptables rules and its sysctls never
 * touch the real host; the image is pulled from the registry on the real loopback first.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Buffer } from "node:buffer";
import { ErrorKinds } from "../../src/errdefs/mod.ts";
import { createNetns, removeNetns } from "../../src/network/mod.ts";
import { execFile, type ExecResult } from "../../src/platform/exec.ts";
import { isRoot } from "../../src/platform/runtime.ts";
import { layerFromFiles, pushBusyboxImage } from "../helpers/oci_builder.ts";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { makeTsctr, DENO_SOURCE, NODE_SOURCE, REPO, type Tsctr } from "../helpers/tsctr.ts";

// test/helpers/tsctr.ts makes --net none the default of other tests; this one tests the real default
delete process.env.TSCTR_NET;

const CNI = "/usr/lib/cni";
const skip = !isRoot() ? "needs root" : !existsSync(join(CNI, "bridge")) ? "needs containernetworking-plugins" : false;
const EXTRA_APPLETS = ["httpd", "ip", "ifconfig", "ping", "nc"];
const PAGE = "hello from nw\n";

describe("container networks", { skip }, () => {
  let reg: TestRegistry;
  let tsctr: Tsctr;
  let ref: string;
  let base: string;
  let hostNs: string;
  const children: ChildProcess[] = [];

  /** Runs tsctr inside the test's "host" namespace with the same --root and --state. */
  const inHost = (args: string[], env?: NodeJS.ProcessEnv): Promise<ExecResult> =>
    execFile("nsenter", [`--net=${hostNs}`, ...NODE_SOURCE, "--root", tsctr.root, "--state", tsctr.state, ...args], { env: env ?? process.env });
  /** Starts a foreground `tsctr run` in the test's host namespace; collects its output. */
  const start = (args: string[], source: readonly string[] = NODE_SOURCE) => {
    const child = spawn("nsenter", [`--net=${hostNs}`, ...source, "--root", tsctr.root, "--state", tsctr.state, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    const out = { stdout: "", stderr: "" };
    child.stdout!.on("data", (b: Buffer) => (out.stdout += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (out.stderr += b.toString()));
    // "exit", not "close": after tsctr is killed, runc and the container still hold the output pipes.
    const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 128)));
    return { child, out, exited };
  };
  const hostCmd = (cmd: string, args: string[]) => execFile("nsenter", [`--net=${hostNs}`, cmd, ...args]);
  const links = async () => (await hostCmd("ip", ["-o", "link", "show"])).stdout.split("\n").filter(Boolean).map((l) => l.split(": ")[1]!.split("@")[0]!);
  const leases = async () => (await readdir(join(tsctr.state, "cni", "networks", "tsctr0")).catch(() => [] as string[])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));

  /** Asserts the state a finished container leaves: no netns file, veth, lease, port rule or record. */
  async function assertNothingLeft(): Promise<void> {
    assert.deepEqual(await readdir(join(tsctr.state, "netns")).catch(() => []), [], "no netns file");
    assert.deepEqual((await links()).filter((l) => l.startsWith("veth")), [], "no veth");
    assert.deepEqual(await leases(), [], "no IPAM lease");
    assert.deepEqual(await readdir(join(tsctr.state, "cni", "attachments")).catch(() => []), [], "no attachment record");
    const nat = (await hostCmd("iptables-save", ["-t", "nat"])).stdout;
    assert.ok(!/CNI-DN-/.test(nat), `no port rules left:\n${nat}`);
    const mounts = (await execFile("findmnt", ["-rn", "-o", "TARGET"])).stdout;
    assert.ok(!mounts.includes(join(tsctr.state, "netns")), "no netns mount");
  }

  /** Waits until `fn` returns a value (polling), or fails after `ms`. */
  async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Ends a foreground run whose init ignores SIGINT: the third SIGINT kills the container. */
  async function stop(c: ReturnType<typeof start>): Promise<number> {
    for (let i = 0; i < 3; i++) {
      c.child.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 100));
    }
    return c.exited;
  }

  before(async () => {
    reg = await startRegistry();
    tsctr = await makeTsctr();
    base = await mkdtemp(join(tmpdir(), "tsctr-nw-"));
    const web = await layerFromFiles([
      ...EXTRA_APPLETS.map((a) => ({ type: "symlink" as const, path: `/bin/${a}`, target: "busybox" })),
      { type: "dir", path: "/www", mode: 0o755 },
      { type: "file", path: "/www/index.html", mode: 0o644, content: PAGE },
    ]);
    await pushBusyboxImage(reg.host, "nw-busybox", "1", "amd64", { extraLayers: [web] });
    ref = `${reg.host}/nw-busybox:1`;
    const pulled = await tsctr(["pull", "--plain-http", ref]);
    assert.equal(pulled.code, 0, pulled.stderr);
    hostNs = join(base, `nw-host-${process.pid}`);
    await createNetns(hostNs);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await execFile("runc", ["--root", join(tsctr.state, "runc", "default"), "list", "-q"]).then(async (r) => {
      for (const id of r.stdout.split("\n").filter(Boolean)) await execFile("runc", ["--root", join(tsctr.state, "runc", "default"), "delete", "-f", id]);
    });
    for (const f of await readdir(join(tsctr.state, "netns")).catch(() => [])) await removeNetns(join(tsctr.state, "netns", f));
    await removeNetns(hostNs);
    await tsctr.cleanup();
    await rm(base, { recursive: true, force: true });
    await reg.stop();
  });

  it("--net none: a new namespace with only loopback, up", async () => {
    const r = await inHost(["run", "--rm", "--net", "none", ref, "nw-none", "sh", "-c", "ls /sys/class/net; ip -o addr show lo | grep -c 127.0.0.1; cat /sys/class/net/lo/operstate /etc/hostname; grep nw-none /etc/hosts"]);
    assert.equal(r.code, 0, r.stderr);
    const [ifaces, lo4, operstate, hostname, hosts] = r.stdout.trim().split("\n");
    assert.equal(ifaces, "lo");
    assert.equal(lo4, "1");
    assert.equal(operstate, "unknown"); // loopback reports "unknown" once up
    assert.equal(hostname, "nw-none");
    assert.match(hosts!, /^127\.0\.1\.1\tnw-none$/);
    await assertNothingLeft();
  });

  it("--net host: the host's interfaces and its /etc/hosts, read-only", async () => {
    assert.equal((await hostCmd("ip", ["link", "add", "nw-veth0", "type", "veth", "peer", "name", "nw-veth1"])).code, 0);
    const r = await inHost(["run", "--rm", "--net", "host", ref, "nw-host", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '; echo; cat /etc/hosts; echo x >> /etc/hosts || echo read-only"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.split("\n")[0]!, /^lo nw-veth0 nw-veth1 $/);
    assert.ok(r.stdout.includes(await readFile("/etc/hosts", "utf8")), "the host's /etc/hosts");
    assert.match(r.stdout, /read-only\n$/);
    assert.deepEqual(await readdir(join(tsctr.state, "netns")).catch(() => []), []);
    await hostCmd("ip", ["link", "del", "nw-veth0"]);
  });

  it("bridge: two containers reach each other; published ports answer on 127.0.0.1; nothing left after", async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const web = start(["--rm", "-p", `127.0.0.1:${p1}:80`, "-p", `${p2}:80/tcp`, ref, "nw-web", "sh", "-c", "ip -4 -o addr show eth0; exec httpd -f -p 80 -h /www"]);
    try {
      const addr = await until("the web container's address", async () => /inet (\d+\.\d+\.\d+\.\d+)\/16/.exec(web.out.stdout)?.[1]);
      assert.match(addr, /^10\.77\./);
      assert.equal(await leases().then((l) => l.length), 1);
      const r = await inHost(["run", "--rm", ref, "nw-client", "sh", "-c", `ip -4 -o addr show eth0; ping -c 1 -W 5 ${addr} >/dev/null && echo ping-ok; wget -q -O - http://${addr}/index.html`]);
      assert.equal(r.code, 0, r.stderr);
      const own = /inet (10\.77\.\d+\.\d+)\/16/.exec(r.stdout)?.[1];
      assert.ok(own && own !== addr, `the client has its own address in 10.77.0.0/16: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`ping-ok\n${PAGE}$`));
      for (const port of [p1, p2]) {
        const got = await until(`HTTP on 127.0.0.1:${port}`, async () => {
          const g = await hostCmd("curl", ["-sS", "-m", "5", `http://127.0.0.1:${port}/index.html`]);
          return g.code === 0 ? g.stdout : undefined;
        });
        assert.equal(got, PAGE);
      }
      assert.deepEqual(
        await inHost(["run", "--rm", "-p", `127.0.0.1:${p1}:8080`, ref, "nw-clash", "true"]).then((x) => [x.code, /already published/.test(x.stderr)]),
        [ErrorKinds.AlreadyExists, true],
      );
    } finally {
      assert.equal(await stop(web), 137, web.out.stderr);
    }
    await assertNothingLeft();
    assert.deepEqual((await links()).sort(), ["lo", "tsctr0"]);
  });

  it("on Deno too: a published port answers and nothing is left after", async () => {
    const port = await freePort();
    const web = start(["--rm", "-p", `127.0.0.1:${port}:80`, ref, "nw-deno", "httpd", "-f", "-p", "80", "-h", "/www"], DENO_SOURCE);
    try {
      const got = await until(`HTTP on 127.0.0.1:${port}`, async () => {
        const g = await hostCmd("curl", ["-sS", "-m", "5", `http://127.0.0.1:${port}/index.html`]);
        return g.code === 0 ? g.stdout : undefined;
      });
      assert.equal(got, PAGE);
    } finally {
      assert.equal(await stop(web), 137, web.out.stderr);
    }
    await assertNothingLeft();
  });

  it("a port that a host process listens on is refused before anything is made", async () => {
    const port = await freePort();
    const listener = spawn("nsenter", [`--net=${hostNs}`, NODE_SOURCE[0]!, "-e", `require("node:net").createServer().listen(${port}, "127.0.0.1", () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(listener);
    try {
      await new Promise((resolve) => listener.stdout!.once("data", resolve));
      const r = await inHost(["run", "--rm", "-p", `${port}:80`, ref, "nw-busy", "true"]);
      assert.equal(r.code, ErrorKinds.AlreadyExists, r.stderr);
      assert.equal(r.stderr, `tsctr: publish *:${port}/tcp: the port is in use on the host\n`);
      await assertNothingLeft();
    } finally {
      listener.kill("SIGKILL");
    }
  });

  it("a plugin that fails ADD is one clear line, and the plugins before it are undone", async () => {
    const plugins = join(base, "cni-failing");
    await mkdir(plugins, { recursive: true });
    for (const p of ["bridge", "host-local"]) await symlink(join(CNI, p), join(plugins, p));
    await writeFile(join(plugins, "portmap"), `#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] || exit 0\ncat <<'EOF'\n{"cniVersion":"1.0.0","code":999,"msg":"no ports today","details":"test\\nplugin"}\nEOF\nexit 1\n`);
    await chmod(join(plugins, "portmap"), 0o755);
    const r = await inHost(["run", "--rm", ref, "nw-fail", "true"], { ...process.env, TSCTR_CNI_PATH: plugins });
    assert.equal(r.code, ErrorKinds.FailedPrecondition, r.stderr);
    assert.equal(r.stderr, "tsctr: network tsctr0: portmap ADD: no ports today: test plugin (CNI error 999)\n");
    await assertNothingLeft();
    assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "");
  });

  it("after tsctr is killed, containers rm takes the network back", async () => {
    const run = start([ref, "nw-killed", "sleep", "600"]);
    await until("the container's lease", async () => ((await leases()).length === 1 ? true : undefined));
    run.child.kill("SIGKILL");
    await run.exited;
    const runcRoot = join(tsctr.state, "runc", "default");
    await execFile("runc", ["--root", runcRoot, "kill", "nw-killed", "KILL"]);
    // runc (still running in the foreground) reaps the container and deletes it, or leaves it stopped
    await until("the container to stop", async () => (/"running"/.test((await execFile("runc", ["--root", runcRoot, "state", "nw-killed"])).stdout) ? undefined : true));
    assert.equal((await readdir(join(tsctr.state, "netns"))).length, 1);
    // -f: whatever runc reports by now (the orphaned foreground runc may not have reaped it yet)
    const rmd = await inHost(["containers", "rm", "-f", "nw-killed"]);
    assert.equal(rmd.code, 0, rmd.stderr);
    await assertNothingLeft();
  });

  it("CNI CHECK passes on a working attachment and names the plugin once eth0 is gone", async () => {
    const script = `
      import { Network } from ${JSON.stringify(join(REPO, "src", "network", "mod.ts"))};
      import { execFile } from ${JSON.stringify(join(REPO, "src", "platform", "exec.ts"))};
      const net = new Network({ state: ${JSON.stringify(tsctr.state)}, namespace: "default" });
      const got = await net.setup("nw-check", { mode: "bridge" });
      const out = { ips: got.ips };
      try {
        await net.check("nw-check");
        out.first = "ok";
        await execFile("nsenter", ["--net=" + got.netnsPath, "ip", "link", "del", "eth0"]);
        out.second = await net.check("nw-check").then(() => "ok", (e) => e.kind + ": " + e.message);
      } finally {
        await net.teardown("nw-check");
      }
      console.log(JSON.stringify(out));`;
    const r = await execFile("nsenter", [`--net=${hostNs}`, NODE_SOURCE[0]!, "--input-type=module", "-e", script]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ips: string[]; first: string; second: string };
    assert.match(out.ips[0]!, /^10\.77\.\d+\.\d+\/16$/);
    assert.equal(out.first, "ok");
    assert.match(out.second, /^FailedPrecondition: network tsctr0: bridge CHECK: .*eth0/);
    await assertNothingLeft();
  });

  it("a subnet that overlaps a host route is refused before anything is made", async () => {
    assert.equal((await hostCmd("ip", ["link", "add", "nw-veth2", "type", "veth", "peer", "name", "nw-veth3"])).code, 0);
    try {
      await hostCmd("ip", ["addr", "add", "10.99.3.1/24", "dev", "nw-veth2"]);
      await hostCmd("ip", ["link", "set", "nw-veth2", "up"]);
      const r = await inHost(["run", "--rm", ref, "nw-overlap", "true"], { ...process.env, TSCTR_SUBNET: "10.99.0.0/16" });
      assert.equal(r.code, ErrorKinds.FailedPrecondition, r.stderr);
      assert.match(r.stderr, /^tsctr: network tsctr0: subnet 10\.99\.0\.0\/16 overlaps the host's route on nw-veth2: set TSCTR_SUBNET to a free one\n$/);
      await assertNothingLeft();
    } finally {
      await hostCmd("ip", ["link", "del", "nw-veth2"]);
    }
  });

  it("bad input: a malformed -p or an unknown --net is exit 10 and leaves nothing", async () => {
    const cases: [string[], RegExp][] = [
      [["-p", "80"], /invalid publish "80": wrong number of fields/],
      [["-p", "1.2.3:80:80"], /"1\.2\.3" is not an IPv4 address/],
      [["-p", "70000:80"], /"70000" is not a port number/],
      [["-p", "8080:80/sctp"], /unknown protocol "sctp"/],
      [["--net", "bogus"], /invalid network "bogus": expected bridge, none, host/],
      [["--net", "none", "-p", "8080:80"], /publishing ports needs the bridge network/],
      [["-p", "192.0.2.250:8080:80"], /publish 192\.0\.2\.250:8080\/tcp: 192\.0\.2\.250 is not an address of this host/],
    ];
    for (const [flags, re] of cases) {
      const r = await inHost(["run", "--rm", ...flags, ref, "nw-bad", "true"]);
      assert.equal(r.code, ErrorKinds.InvalidArgument, `${flags.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, re);
    }
    assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "");
    assert.deepEqual(await readdir(join(tsctr.state, "default")).catch(() => []), []);
    await assertNothingLeft();
  });
});
