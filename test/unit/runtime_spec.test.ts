/** Spec generation, user resolution, in-root path resolution and bundle files: no runc, no root needed. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ImageConfig } from "../../src/images/types.ts";
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  exitStatus,
  findRunc,
  generateSpec,
  mergeEnv,
  readFileInRoot,
  removeBundle,
  resolveInRoot,
  resolveUser,
  writeBundle,
  type SpecOptions,
} from "../../src/runtime/mod.ts";

function image(config: ImageConfig["config"]): ImageConfig {
  return { architecture: "amd64", os: "linux", config, rootfs: { type: "layers", diff_ids: [] } };
}

function spec(config: ImageConfig["config"], opts: Partial<SpecOptions> = {}) {
  return generateSpec({ id: "c1", namespace: "default", image: image(config), ...opts });
}

describe("generateSpec", () => {
  it("runs Entrypoint + Cmd, and an args override replaces only Cmd", () => {
    assert.deepEqual(spec({ Entrypoint: ["/init", "-v"], Cmd: ["serve"] }).process.args, ["/init", "-v", "serve"]);
    assert.deepEqual(spec({ Entrypoint: ["/init", "-v"], Cmd: ["serve"] }, { args: ["sh", "-c", "x"] }).process.args, ["/init", "-v", "sh", "-c", "x"]);
    assert.deepEqual(spec({ Cmd: ["sh"] }, { args: ["echo", "hi"] }).process.args, ["echo", "hi"]);
    assert.deepEqual(spec({ Entrypoint: null, Cmd: ["sh"] }, { args: [] }).process.args, ["sh"]);
  });

  it("refuses an image with nothing to run", () => {
    assert.throws(() => spec({}), (e) => isKind(e, "InvalidArgument") && /no command/.test((e as Error).message));
    assert.throws(() => spec(undefined), (e) => isKind(e, "InvalidArgument"));
  });

  it("overrides Env by key in place, appends new keys, and defaults PATH", () => {
    const s = spec({ Env: ["A=1", "PATH=/img/bin", "B=2"], Cmd: ["x"] }, { env: ["B=override", "C=3", "A=again"] });
    assert.deepEqual(s.process.env, ["A=again", "PATH=/img/bin", "B=override", "C=3"]);
    assert.deepEqual(spec({ Cmd: ["x"] }).process.env, [`PATH=${DEFAULT_PATH}`]);
  });

  it("adds TERM with a tty and HOME from the user unless the image sets them", () => {
    const s = spec({ Cmd: ["x"] }, { tty: true, user: { uid: 1, gid: 1, home: "/home/u" } });
    assert.equal(s.process.terminal, true);
    assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, "TERM=xterm", "HOME=/home/u"]);
    assert.deepEqual(spec({ Env: ["TERM=vt100", "HOME=/h"], Cmd: ["x"] }, { tty: true, user: { uid: 1, gid: 1, home: "/home/u" } }).process.env, ["TERM=vt100", "HOME=/h", `PATH=${DEFAULT_PATH}`]);
  });

  it("mergeEnv keeps the first value without replace", () => {
    assert.deepEqual(mergeEnv(["A=1"], ["A=2", "B"], false), ["A=1", "B"]);
  });

  it("takes cwd from WorkingDir, defaults to /, refuses a relative one", () => {
    assert.equal(spec({ Cmd: ["x"], WorkingDir: "/srv" }).process.cwd, "/srv");
    assert.equal(spec({ Cmd: ["x"] }).process.cwd, "/");
    assert.equal(spec({ Cmd: ["x"], WorkingDir: "" }).process.cwd, "/");
    assert.throws(() => spec({ Cmd: ["x"], WorkingDir: "srv" }), (e) => isKind(e, "InvalidArgument"));
  });

  it("uses the container ID as hostname and /tsctr/<namespace>/<id> as cgroup path", () => {
    const s = generateSpec({ id: "web", namespace: "prod", image: image({ Cmd: ["x"] }) });
    assert.equal(s.hostname, "web");
    assert.equal(s.linux.cgroupsPath, "/tsctr/prod/web");
    assert.equal(spec({ Cmd: ["x"] }, { hostname: "h" }).hostname, "h");
    assert.deepEqual(s.root, { path: "rootfs", readonly: false });
  });

  it("applies the default user, capabilities, limits and namespaces", () => {
    const s = spec({ Cmd: ["x"] });
    assert.deepEqual(s.process.user, { uid: 0, gid: 0, additionalGids: [] });
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual(s.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(s.process.capabilities.effective, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(s.process.capabilities.permitted, [...DEFAULT_CAPABILITIES]);
    assert.equal(s.process.capabilities.ambient, undefined);
    assert.equal(s.process.capabilities.inheritable, undefined);
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    assert.ok(!DEFAULT_CAPABILITIES.includes("CAP_SYS_ADMIN"));
    assert.deepEqual(s.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
    assert.deepEqual(s.linux.namespaces.map((n) => n.type).sort(), ["ipc", "mount", "network", "pid", "uts"]);
    assert.ok(s.linux.namespaces.every((n) => n.path === undefined));
  });

  it("mounts the standard filesystems, /sys read-only", () => {
    const s = spec({ Cmd: ["x"] });
    const byDest = new Map(s.mounts.map((m) => [m.destination, m]));
    assert.deepEqual([...byDest.keys()], ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]);
    assert.ok(byDest.get("/dev")?.options?.includes("size=65536k"));
    assert.ok(byDest.get("/dev/pts")?.options?.includes("newinstance"));
    assert.ok(byDest.get("/dev/pts")?.options?.includes("gid=5"));
    assert.ok(byDest.get("/dev/shm")?.options?.includes("size=65536k"));
    for (const dest of ["/sys", "/sys/fs/cgroup"]) assert.ok(byDest.get(dest)?.options?.includes("ro"), dest);
  });

  it("masks and write-protects the runtime-spec default paths and denies all but standard devices", () => {
    const s = spec({ Cmd: ["x"] });
    assert.ok(s.linux.maskedPaths?.includes("/proc/kcore"));
    assert.ok(s.linux.maskedPaths?.includes("/sys/firmware"));
    assert.deepEqual(s.linux.readonlyPaths, ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    const devices = s.linux.resources?.devices ?? [];
    assert.deepEqual(devices[0], { allow: false, access: "rwm" });
    assert.deepEqual(devices.slice(1).map((d) => `${d.type} ${d.major}:${d.minor ?? "*"}`), ["c 1:3", "c 1:5", "c 1:7", "c 1:8", "c 1:9", "c 5:0", "c 5:2", "c 136:*"]);
  });

  it("is deterministic and does not share arrays between specs", () => {
    const a = spec({ Cmd: ["x"] });
    a.process.capabilities.bounding?.push("CAP_SYS_ADMIN");
    a.linux.maskedPaths?.pop();
    assert.deepEqual(spec({ Cmd: ["x"] }), generateSpec({ id: "c1", namespace: "default", image: image({ Cmd: ["x"] }) }));
    assert.ok(!spec({ Cmd: ["x"] }).process.capabilities.bounding?.includes("CAP_SYS_ADMIN"));
  });
});

/** Runs `fn` with a fresh temp dir holding rootfs/etc/{passwd,group}; removes it afterwards. */
async function withRootfs(fn: (rootfs: string, tmp: string) => Promise<void>): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "tsctr-user-"));
  try {
    const rootfs = join(tmp, "rootfs");
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await writeFile(
      join(rootfs, "etc/passwd"),
      "# comment\nroot:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n",
    );
    await writeFile(join(rootfs, "etc/group"), "root:x:0:\nwheel:x:10:root,app\nvideo:x:44:app\napp:x:1000:app\nnogroup:x:65534:\n");
    await fn(rootfs, tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

describe("resolveUser and files in a rootfs", () => {
  it("resolves the empty user to root with root's supplementary groups", async () => {
    await withRootfs(async (rootfs) => {
      assert.deepEqual(await resolveUser(rootfs, ""), { uid: 0, gid: 0, additionalGids: [10], home: "/root" });
      assert.deepEqual(await resolveUser(rootfs, undefined), { uid: 0, gid: 0, additionalGids: [10], home: "/root" });
    });
  });

  it("resolves a name, a uid, and the groups that list the user", async () => {
    await withRootfs(async (rootfs) => {
      assert.deepEqual(await resolveUser(rootfs, "nobody"), { uid: 65534, gid: 65534, additionalGids: [], home: "/nonexistent" });
      assert.deepEqual(await resolveUser(rootfs, "app"), { uid: 1000, gid: 1000, additionalGids: [10, 44], home: "/home/app" });
      assert.deepEqual(await resolveUser(rootfs, "1000"), { uid: 1000, gid: 1000, additionalGids: [10, 44], home: "/home/app" });
    });
  });

  it("accepts a uid without a passwd entry (gid 0)", async () => {
    await withRootfs(async (rootfs) => {
      assert.deepEqual(await resolveUser(rootfs, "4242"), { uid: 4242, gid: 0, additionalGids: [] });
      assert.deepEqual(await resolveUser(rootfs, "4242:4343"), { uid: 4242, gid: 4343, additionalGids: [] });
    });
  });

  it("takes an explicit group by name or number, without supplementary groups", async () => {
    await withRootfs(async (rootfs) => {
      assert.deepEqual(await resolveUser(rootfs, "app:video"), { uid: 1000, gid: 44, additionalGids: [], home: "/home/app" });
      assert.deepEqual(await resolveUser(rootfs, "nobody:0"), { uid: 65534, gid: 0, additionalGids: [], home: "/nonexistent" });
    });
  });

  it("rejects unknown names with Docker's message", async () => {
    await withRootfs(async (rootfs) => {
      await assert.rejects(resolveUser(rootfs, "ghost"), (e) => isKind(e, "InvalidArgument") && (e as Error).message === "unable to find user ghost: no matching entries in passwd file");
      await assert.rejects(resolveUser(rootfs, "app:ghosts"), (e) => isKind(e, "InvalidArgument") && (e as Error).message === "unable to find group ghosts: no matching entries in group file");
      await assert.rejects(resolveUser(rootfs, "app:"), (e) => isKind(e, "InvalidArgument"));
      await assert.rejects(resolveUser(rootfs, ":0"), (e) => isKind(e, "InvalidArgument"));
    });
  });

  it("needs no passwd file for numeric users but does for names", async () => {
    await withRootfs(async (rootfs, tmp) => {
      const empty = join(tmp, "empty");
      await mkdir(empty);
      assert.deepEqual(await resolveUser(empty, "12:34"), { uid: 12, gid: 34, additionalGids: [] });
      assert.deepEqual(await resolveUser(empty, ""), { uid: 0, gid: 0, additionalGids: [] });
      await assert.rejects(resolveUser(empty, "nobody"), (e) => isKind(e, "InvalidArgument"));
    });
  });

  it("resolves symlinks inside the rootfs, never out of it", async () => {
    await withRootfs(async (rootfs, tmp) => {
      const root = join(tmp, "linked");
      await mkdir(join(root, "real"), { recursive: true });
      await mkdir(join(tmp, "outside"), { recursive: true });
      await writeFile(join(tmp, "outside/passwd"), "evil:x:0:0::/:/bin/sh\n");
      await writeFile(join(root, "real/passwd"), "inner:x:7:7::/in:/bin/sh\n");
      await symlink("/real", join(root, "etc"));
      assert.equal(await resolveInRoot(root, "/etc/passwd"), join(root, "real/passwd"));
      assert.deepEqual(await resolveUser(root, "inner"), { uid: 7, gid: 7, additionalGids: [], home: "/in" });

      await symlink("../../../../outside/passwd", join(root, "real/up"));
      await symlink(join(tmp, "outside/passwd"), join(root, "real/abs"));
      assert.equal(await resolveInRoot(root, "/etc/up"), join(root, "outside/passwd"));
      assert.equal(await resolveInRoot(root, "/etc/abs"), join(root, tmp, "outside/passwd"));
      assert.equal(await readFileInRoot(root, "/etc/up"), undefined);
      assert.equal(await readFileInRoot(root, "/etc/abs"), undefined);
      assert.equal(await resolveInRoot(root, "/../../.."), root);
    });
  });

  it("stops at symlink loops and refuses non-regular files without blocking", async () => {
    await withRootfs(async (rootfs, tmp) => {
      const root = join(tmp, "odd");
      await mkdir(join(root, "etc"), { recursive: true });
      await symlink("group", join(root, "etc/passwd"));
      await symlink("passwd", join(root, "etc/group"));
      await assert.rejects(resolveUser(root, "x"), (e) => isKind(e, "InvalidArgument") && /symbolic links/.test((e as Error).message));
      const fifoRoot = join(tmp, "fifo");
      await mkdir(join(fifoRoot, "etc"), { recursive: true });
      execFileSync("mkfifo", [join(fifoRoot, "etc/passwd")]);
      await assert.rejects(resolveUser(fifoRoot, "x"), (e) => isKind(e, "InvalidArgument") && /not a regular file/.test((e as Error).message));
    });
  });
});

describe("bundles and runc helpers", () => {
  it("writeBundle writes config.json and the rootfs dir; removeBundle removes them", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "tsctr-bundle-"));
    try {
      const dir = join(tmp, "b");
      const s = spec({ Cmd: ["x"] });
      const paths = await writeBundle(dir, s);
      assert.deepEqual(paths, { dir, config: join(dir, "config.json"), rootfs: join(dir, "rootfs") });
      assert.deepEqual(JSON.parse(await readFile(paths.config, "utf8")), s);
      assert.ok((await stat(paths.rootfs)).isDirectory());
      assert.equal((await stat(paths.config)).mode & 0o777, 0o600);
      await removeBundle(dir);
      await assert.rejects(stat(dir));
      await removeBundle(dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("findRunc says how to install runc when it is missing", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "tsctr-path-"));
    try {
      await assert.rejects(findRunc(tmp), (e) => isKind(e, "FailedPrecondition") && (e as Error).message === "runc not found: install it (apt-get install runc)");
      await writeFile(join(tmp, "runc"), "#!/bin/sh\n", { mode: 0o755 });
      assert.equal(await findRunc(`/nonexistent:${tmp}`), join(tmp, "runc"));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("exitStatus maps signals to 128+n", () => {
    assert.equal(exitStatus(7, null), 7);
    assert.equal(exitStatus(null, "SIGKILL"), 137);
    assert.equal(exitStatus(null, "SIGTERM"), 143);
  });
});
