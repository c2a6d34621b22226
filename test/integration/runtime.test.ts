/**
 * The runtime service against real runc: generated specs run busybox containers in real namespaces.
 * Needs root, runc and a static busybox at /bin/busybox (Debian's busybox-static).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, rmdir, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Buffer } from "node:buffer";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ImageConfig } from "../../src/images/types.ts";
import { isRoot, runtimeName } from "../../src/platform/runtime.ts";
import { execFile, execOk } from "../../src/platform/exec.ts";
import { Runc, findRunc, forwardSignals, generateSpec, removeBundle, resolveUser, writeBundle, type RuncState, type SpecOptions } from "../../src/runtime/mod.ts";

const BUSYBOX = "/bin/busybox";
const APPLETS = ["sh", "echo", "cat", "id", "ls", "mount", "true", "false", "sleep", "ps", "wc", "mkdir", "pwd", "tty", "test", "env"];
const NAMESPACE = "tsctr-test";
const MODULE = fileURLToPath(new URL("../../src/runtime/mod.ts", import.meta.url));

const skip = !isRoot() ? "needs root" : !existsSync(BUSYBOX) ? `needs a static busybox at ${BUSYBOX}` : false;

interface Prepared {
  id: string;
  bundle: string;
}

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** A minimal rootfs: busybox and its applet links, passwd/group with root and nobody. */
async function makeRootfs(rootfs: string): Promise<void> {
  for (const d of ["bin", "etc", "proc", "sys", "dev", "mnt", "tmp", "work"]) await mkdir(join(rootfs, d), { recursive: true });
  await chmod(join(rootfs, "tmp"), 0o1777);
  await copyFile(BUSYBOX, join(rootfs, "bin/busybox"));
  await chmod(join(rootfs, "bin/busybox"), 0o755);
  for (const applet of APPLETS) await symlink("busybox", join(rootfs, "bin", applet));
  await writeFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  await writeFile(join(rootfs, "etc/group"), "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
}

/** One test's world: a temp dir and a runc with its own --root in it. */
class Scene {
  readonly tmp: string;
  readonly runc: Runc;

  constructor(tmp: string, runc: Runc) {
    this.tmp = tmp;
    this.runc = runc;
  }

  /** Writes a bundle for an image with `config`, the way `tsctr run` will. */
  async prepare(name: string, config: NonNullable<ImageConfig["config"]>, opts: Partial<SpecOptions> = {}): Promise<Prepared> {
    const id = `${name}-${process.pid}-${++seq}`;
    const bundle = join(this.tmp, id);
    await makeRootfs(join(bundle, "rootfs"));
    const image: ImageConfig = { architecture: "amd64", os: "linux", config, rootfs: { type: "layers", diff_ids: [] } };
    const user = await resolveUser(join(bundle, "rootfs"), config.User);
    await writeBundle(bundle, generateSpec({ id, namespace: NAMESPACE, image, user, ...opts }));
    return { id, bundle };
  }

  /** Runs a prepared container to its end with piped output; always deletes it afterwards. */
  async runToEnd(c: Prepared): Promise<Finished> {
    const { child, exited } = this.runc.run(c.id, c.bundle, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
    try {
      return { code: await exited, stdout, stderr };
    } finally {
      await this.runc.delete(c.id, { force: true });
    }
  }

  async run(name: string, config: NonNullable<ImageConfig["config"]>, opts: Partial<SpecOptions> = {}): Promise<Finished> {
    return this.runToEnd(await this.prepare(name, config, opts));
  }

  /** Polls runc until the container is running. */
  async waitRunning(id: string): Promise<RuncState> {
    for (let i = 0; i < 200; i++) {
      const state = await this.runc.state(id).catch(() => undefined);
      if (state?.status === "running") return state;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`container ${id} never reached running`);
  }
}

let seq = 0;

/** Runs `fn` in a fresh Scene; afterwards force-deletes its containers and removes every file it made. */
async function scene(fn: (s: Scene) => Promise<void>): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "tsctr-runtime-"));
  const runc = new Runc({ binary: await findRunc(), root: join(tmp, "runc") });
  try {
    await fn(new Scene(tmp, runc));
  } finally {
    for (const c of await runc.list().catch(() => [])) await runc.delete(c.id, { force: true }).catch(() => {});
    await rm(tmp, { recursive: true, force: true });
    for (const hierarchy of await readdir("/sys/fs/cgroup").catch(() => [])) {
      await rmdir(join("/sys/fs/cgroup", hierarchy, "tsctr", NAMESPACE)).catch(() => {});
    }
  }
}

describe("runtime with real runc", { skip }, () => {
  it("captures the output of echo", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("echo", { Cmd: ["echo", "hello from tsctr"] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "hello from tsctr\n");
    }));

  it("passes the container's exit code through", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("exit", { Cmd: ["sh", "-c", "exit 7"] });
      assert.equal(r.code, 7);
    }));

  it("keeps the Entrypoint and replaces Cmd with the args override", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("entry", { Entrypoint: ["echo", "entry"], Cmd: ["image-cmd"] }, { args: ["override"] });
      assert.equal(r.stdout, "entry override\n");
    }));

  it("overrides the image Env by key and keeps the rest", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("env", { Env: ["FOO=image", "BAR=kept"], Cmd: ["sh", "-c", 'echo "$FOO $BAR $PATH $HOME"'] }, { env: ["FOO=override"] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "override kept /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root\n");
    }));

  it("starts in the image's WorkingDir, or / without one", { timeout: 30_000 }, () =>
    scene(async (t) => {
      assert.equal((await t.run("cwd", { WorkingDir: "/work", Cmd: ["pwd"] })).stdout, "/work\n");
      assert.equal((await t.run("cwd-default", { Cmd: ["pwd"] })).stdout, "/\n");
    }));

  it("runs as the image's User resolved from the rootfs passwd file", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("user", { User: "nobody", Cmd: ["sh", "-c", "id -u; id -g"] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "65534\n65534\n");
    }));

  it("runs in its own pid namespace, hostname and cgroup", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const c = await t.prepare("pidns", { Cmd: ["sh", "-c", "echo $$; ps -o pid,comm; cat /proc/self/cgroup; cat /proc/sys/kernel/hostname"] });
      const r = await t.runToEnd(c);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines[0], "1");
      const pids = lines.filter((l) => /^\s*\d+\s+\S+$/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
      assert.equal(pids.filter((p) => p !== 1).length, 1, `only sh and ps are visible: ${r.stdout}`);
      assert.ok(pids.includes(1));
      assert.match(r.stdout, new RegExp(`:/tsctr/${NAMESPACE}/${c.id}$`, "m"));
      assert.equal(lines[lines.length - 1], c.id);
    }));

  it("masks /proc paths and makes /proc/sys read-only", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const hostTimers = await readFile("/proc/timer_list", "utf8").catch(() => "");
      const r = await t.run("masked", { Cmd: ["sh", "-c", "cat /proc/kcore | wc -c; cat /proc/timer_list | wc -c; echo x > /proc/sys/kernel/domainname && echo proc-sys-writable"] });
      const [kcore, timers] = r.stdout.trim().split("\n").map(Number);
      assert.equal(kcore, 0, "reading /proc/kcore gives nothing");
      if (hostTimers.length > 0) assert.equal(timers, 0, "reading /proc/timer_list gives nothing");
      assert.doesNotMatch(r.stdout, /proc-sys-writable/);
      assert.notEqual(r.code, 0);
    }));

  it("cannot write to /sys", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("sys", { Cmd: ["sh", "-c", "mkdir /sys/tsctr-test"] });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Read-only file system/);
    }));

  it("cannot mount without CAP_SYS_ADMIN", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const r = await t.run("mount", { Cmd: ["mount", "-t", "tmpfs", "none", "/mnt"] });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /denied|not permitted/i);
    }));

  it("ends a trapping container with a forwarded SIGTERM", { timeout: 30_000 }, () =>
    scene(async (t) => {
      // A PID 1 without a handler ignores SIGTERM (the kernel protects a namespace's init), so the shell traps it.
      const c = await t.prepare("signal", { Cmd: ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; echo ready; sleep 100 & wait"] });
      const { child, exited } = t.runc.run(c.id, c.bundle, { stdio: ["ignore", "pipe", "inherit"] });
      let stdout = "";
      const ready = new Promise<void>((resolve) =>
        child.stdout?.on("data", (b: Buffer) => {
          stdout += b.toString();
          if (stdout.includes("ready")) resolve();
        }),
      );
      const stop = forwardSignals(child);
      try {
        await ready;
        process.kill(process.pid, "SIGTERM");
        assert.equal(await exited, 143);
        assert.match(stdout, /got TERM/);
      } finally {
        stop();
        await t.runc.delete(c.id, { force: true });
      }
    }));

  it("kills a sleep 100 container with runc kill (137 = 128+SIGKILL)", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const c = await t.prepare("kill", { Cmd: ["sleep", "100"] });
      const { exited } = t.runc.run(c.id, c.bundle, { stdio: ["ignore", "ignore", "inherit"] });
      try {
        await t.waitRunning(c.id);
        await t.runc.kill(c.id, "SIGKILL");
        assert.equal(await exited, 137);
      } finally {
        await t.runc.delete(c.id, { force: true });
      }
    }));

  it("reports state and list, and delete --force removes the container and its cgroup", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const c = await t.prepare("delete", { Cmd: ["sleep", "100"] });
      const { exited } = t.runc.run(c.id, c.bundle, { stdio: ["ignore", "ignore", "inherit"] });
      try {
        const state = await t.waitRunning(c.id);
        assert.equal(state.id, c.id);
        assert.equal(state.bundle, c.bundle);
        assert.ok(state.pid > 0);
        const cgroup = await readFile(`/proc/${state.pid}/cgroup`, "utf8");
        assert.match(cgroup, new RegExp(`:/tsctr/${NAMESPACE}/${c.id}$`, "m"));
        assert.ok((await t.runc.list()).some((e) => e.id === c.id && e.status === "running"));
        await t.runc.delete(c.id, { force: true });
        assert.equal(await exited, 137);
        assert.ok(!(await t.runc.list()).some((e) => e.id === c.id));
        await assert.rejects(t.runc.state(c.id), (e) => isKind(e, "NotFound"));
        await assert.rejects(t.runc.delete(c.id), (e) => isKind(e, "NotFound"));
        await assert.rejects(t.runc.kill(c.id, "TERM"), (e) => isKind(e, "NotFound"));
        for (const hierarchy of await readdir("/sys/fs/cgroup")) {
          assert.ok(!existsSync(join("/sys/fs/cgroup", hierarchy, "tsctr", NAMESPACE, c.id)), `cgroup left in ${hierarchy}`);
        }
      } finally {
        await t.runc.delete(c.id, { force: true });
      }
    }));

  it("rejects with runc's message when the command is not in the image", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const c = await t.prepare("notfound", { Cmd: ["no-such-command"] });
      const { exited } = t.runc.run(c.id, c.bundle, { stdio: ["ignore", "ignore", "ignore"] });
      try {
        await assert.rejects(exited, (e) => isKind(e, "FailedPrecondition") && /executable file not found/.test((e as Error).message));
        assert.ok(!(await t.runc.list()).some((e) => e.id === c.id));
      } finally {
        await t.runc.delete(c.id, { force: true });
      }
    }));

  it("removeBundle refuses while the rootfs is mounted, then removes everything", { timeout: 30_000 }, () =>
    scene(async (t) => {
      const c = await t.prepare("bundle", { Cmd: ["true"] });
      await execOk("mount", ["-t", "tmpfs", "tmpfs", join(c.bundle, "rootfs")]);
      try {
        await assert.rejects(removeBundle(c.bundle), (e) => isKind(e, "FailedPrecondition"));
        assert.ok(existsSync(join(c.bundle, "config.json")));
      } finally {
        await execOk("umount", [join(c.bundle, "rootfs")]);
      }
      await removeBundle(c.bundle);
      assert.ok(!existsSync(c.bundle));
      await removeBundle(c.bundle);
    }));

  it("runs with a terminal inside a pty (script)", { timeout: 30_000, skip: !existsSync("/usr/bin/script") && "needs script(1)" }, () =>
    scene(async (t) => {
      const c = await t.prepare("tty", { Cmd: ["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty; echo TERM=$TERM; exit 3"] }, { tty: true });
      const code = [
        `const { Runc, forwardSignals } = await import(process.env.T_MODULE);`,
        `const runc = new Runc({ binary: process.env.T_RUNC, root: process.env.T_ROOT });`,
        `const { child, exited } = runc.run(process.env.T_ID, process.env.T_BUNDLE, { tty: true });`,
        `const stop = forwardSignals(child);`,
        `process.exitCode = await exited;`,
        `stop();`,
      ].join("\n");
      const env = { ...process.env, T_MODULE: MODULE, T_RUNC: t.runc.binary, T_ROOT: t.runc.root, T_ID: c.id, T_BUNDLE: c.bundle, T_CODE: code, T_NODE: process.execPath };
      try {
        const command = runtimeName() === "deno" ? '"$T_NODE" eval "$T_CODE"' : '"$T_NODE" --input-type=module -e "$T_CODE"';
        const r = await execFile("script", ["-qec", command, "/dev/null"], { env });
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stdout, /\/dev\/pts\/0\r?\n/);
        assert.match(r.stdout, /both-tty/);
        assert.match(r.stdout, /TERM=xterm/);
      } finally {
        await t.runc.delete(c.id, { force: true });
      }
    }));
});
