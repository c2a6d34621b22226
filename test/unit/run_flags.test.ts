/** The container-shaping `run` flags: parsing, capability sets, seccomp compilation, cgroup probing, spec settings. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ImageConfig } from "../../src/images/types.ts";
import { generateSpec } from "../../src/runtime/mod.ts";
import { capabilitySet, normalizeCapability, DEFAULT_CAPABILITIES } from "../../src/runtime/capabilities.ts";
import { memorySupport, parseCgroupMounts, memoryDisabledError } from "../../src/runtime/cgroups.ts";
import { parseDeviceFlag } from "../../src/runtime/devices.ts";
import { parseMountFlag, parseTmpfsFlag, parseVolumeFlag, specMount } from "../../src/runtime/mounts.ts";
import { parseCpus, parseSize, specResources } from "../../src/runtime/resources.ts";
import { compileSeccomp, executableArchitecture, parseSeccompProfile } from "../../src/runtime/seccomp.ts";
import { DEFAULT_SECCOMP_PROFILE } from "../../src/runtime/seccomp_default.ts";
import type { ContainerSettings } from "../../src/runtime/spec_settings.ts";
import { readEnvFiles } from "../../src/client/run_settings.ts";

const invalid = (re: RegExp) => (e: unknown) => isKind(e, "InvalidArgument") && re.test((e as Error).message);

describe("-v, --mount and --tmpfs", () => {
  it("parses host paths and volume names with options", () => {
    assert.deepEqual(parseVolumeFlag("/srv/data/:/data"), { type: "bind", source: "/srv/data/", destination: "/data", readonly: false });
    assert.deepEqual(parseVolumeFlag("/srv:/data:ro,rshared"), { type: "bind", source: "/srv", destination: "/data", readonly: true, propagation: "rshared" });
    assert.deepEqual(parseVolumeFlag("cache:/var/cache/:nocopy"), { type: "volume", source: "cache", destination: "/var/cache", readonly: false, noCopy: true });
  });

  it("refuses malformed values, each with the reason", () => {
    assert.throws(() => parseVolumeFlag("/only"), invalid(/expected SRC:DST/));
    assert.throws(() => parseVolumeFlag("/a:relative"), invalid(/absolute path/));
    assert.throws(() => parseVolumeFlag("/a:/"), invalid(/other than \//));
    assert.throws(() => parseVolumeFlag("/a:/b:"), invalid(/unknown option ""/));
    assert.throws(() => parseVolumeFlag("/a:/b:ro,bogus"), invalid(/unknown option "bogus"/));
    assert.throws(() => parseVolumeFlag("./rel:/b"), invalid(/neither an absolute host path nor a volume name/));
    assert.throws(() => parseVolumeFlag("vol:/b:shared"), invalid(/propagation applies to host paths/));
    assert.throws(() => parseVolumeFlag("/a:/b:c:d"), invalid(/expected SRC:DST/));
  });

  it("parses --mount with Docker's keys and aliases", () => {
    assert.deepEqual(parseMountFlag("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave"), { type: "bind", source: "/h", destination: "/c", readonly: true, propagation: "rslave" });
    assert.deepEqual(parseMountFlag("src=v1,dst=/c"), { type: "volume", source: "v1", destination: "/c", readonly: false, noCopy: false });
    assert.deepEqual(parseMountFlag("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770"), { type: "tmpfs", destination: "/t", readonly: false, size: 64 << 20, mode: 0o1770 });
    assert.throws(() => parseMountFlag("type=bind,src=rel,dst=/c"), invalid(/absolute host path/));
    assert.throws(() => parseMountFlag("type=tmpfs,src=/x,dst=/c"), invalid(/"src" does not apply to type=tmpfs/));
    assert.throws(() => parseMountFlag("type=bind,src=/a"), invalid(/dst= is required/));
    assert.throws(() => parseMountFlag("type=bind,src=/a,dst=/b,ro=maybe"), invalid(/expected true or false/));
    assert.throws(() => parseMountFlag("type=tmpfs,dst=/t,tmpfs-size=64"), invalid(/a unit is required/));
    assert.deepEqual(parseTmpfsFlag("/run:size=1m,mode=755"), { type: "tmpfs", destination: "/run", readonly: false, size: 1 << 20, mode: 0o755 });
  });

  it("makes spec mounts: recursive private binds, tmpfs with size and mode", () => {
    assert.deepEqual(specMount(parseVolumeFlag("/h:/c:ro")), { destination: "/c", type: "bind", source: "/h", options: ["rbind", "ro", "rprivate"] });
    assert.deepEqual(specMount(parseVolumeFlag("v:/c"), "/root/volumes/v/_data").source, "/root/volumes/v/_data");
    assert.deepEqual(specMount(parseTmpfsFlag("/t:size=1m")).options, ["nosuid", "nodev", "rw", "size=1048576", "mode=1777"]);
  });
});

describe("limits", () => {
  it("needs a unit on sizes and a positive CPU count", () => {
    assert.equal(parseSize("256m", "--memory"), 256 << 20);
    assert.equal(parseSize("1.5G", "--memory"), 1.5 * 1024 ** 3);
    assert.equal(parseSize("512kb", "--memory"), 512 << 10);
    assert.throws(() => parseSize("256", "--memory"), invalid(/invalid --memory "256": a unit is required/));
    assert.throws(() => parseSize("12x", "--memory"), invalid(/expected a number and a unit/));
    assert.equal(parseCpus("1.5"), 1.5);
    assert.throws(() => parseCpus("0"), invalid(/--cpus/));
    assert.throws(() => parseCpus("1.234"), invalid(/--cpus/));
  });

  it("becomes linux.resources; no swap by default where swap is accounted", () => {
    assert.deepEqual(specResources({ memory: 64 << 20, cpus: 1.5, pidsLimit: 20 }, true), { memory: { limit: 64 << 20, swap: 64 << 20 }, cpu: { quota: 150000, period: 100000 }, pids: { limit: 20 } });
    assert.deepEqual(specResources({ memory: 64 << 20 }, false), { memory: { limit: 64 << 20 } });
    assert.deepEqual(specResources({ memory: 64 << 20, memorySwap: -1 }, true), { memory: { limit: 64 << 20, swap: -1 } });
  });
});

describe("capabilities", () => {
  it("accepts names with or without CAP_, any case, and ALL", () => {
    assert.equal(normalizeCapability("net_admin"), "CAP_NET_ADMIN");
    assert.equal(normalizeCapability("CAP_SYS_TIME"), "CAP_SYS_TIME");
    assert.equal(normalizeCapability("all"), "ALL");
    assert.throws(() => normalizeCapability("NET_FLY"), invalid(/invalid capability "NET_FLY"/));
  });

  it("follows Docker's add/drop rules", () => {
    assert.deepEqual(capabilitySet({}), [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(capabilitySet({ drop: ["ALL"], add: ["NET_ADMIN"] }), ["CAP_NET_ADMIN"]);
    assert.equal(capabilitySet({ add: ["ALL"], drop: ["SYS_ADMIN"] }).includes("CAP_SYS_ADMIN"), false);
    assert.equal(capabilitySet({ add: ["ALL"] }).length, 41);
    assert.equal(capabilitySet({ privileged: true, known: ["CAP_CHOWN", "CAP_KILL"] }).join(), "CAP_CHOWN,CAP_KILL");
    assert.equal(capabilitySet({ drop: ["chown"] }).includes("CAP_CHOWN"), false);
  });
});

describe("seccomp", () => {
  const syscalls = (caps: string[], arch = "amd64") => compileSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: caps, arch }).syscalls ?? [];
  const allowed = (caps: string[], name: string, arch?: string) => syscalls(caps, arch).some((r) => r.action === "SCMP_ACT_ALLOW" && r.names.includes(name) && !r.args);

  it("denies with EPERM by default on the host's architectures", () => {
    const f = compileSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: "arm64" });
    assert.equal(f.defaultAction, "SCMP_ACT_ERRNO");
    assert.equal(f.defaultErrnoRet, 1);
    assert.deepEqual(f.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    assert.ok(allowed([], "set_tls", "arm64") && !allowed([], "arch_prctl", "arm64"));
    assert.ok(allowed([], "arch_prctl", "amd64") && !allowed([], "set_tls", "amd64"));
  });

  it("allows namespace and mount syscalls only with CAP_SYS_ADMIN; clone without it only without CLONE_NEW* flags", () => {
    for (const name of ["unshare", "mount", "setns", "clone"]) assert.equal(allowed([...DEFAULT_CAPABILITIES], name), false, name);
    for (const name of ["unshare", "mount", "setns", "clone"]) assert.equal(allowed(["CAP_SYS_ADMIN"], name), true, name);
    const clone = syscalls([...DEFAULT_CAPABILITIES]).find((r) => r.names.includes("clone"));
    assert.deepEqual(clone?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
    const clone3 = syscalls([]).find((r) => r.names.includes("clone3"));
    assert.deepEqual([clone3?.action, clone3?.errnoRet], ["SCMP_ACT_ERRNO", 38]);
    assert.ok(allowed(["CAP_SYS_BOOT"], "reboot") && !allowed([], "reboot"));
    assert.ok(allowed([], "chroot") === false && allowed(["CAP_SYS_CHROOT"], "chroot"));
  });

  it("builds the filter for runc's own architecture, read from its ELF header", async () => {
    assert.equal(await executableArchitecture(process.execPath), { x64: "amd64", arm64: "arm64" }[process.arch as string]);
    assert.equal(await executableArchitecture("/etc/passwd"), undefined);
    assert.equal(await executableArchitecture("/nonexistent"), undefined);
  });

  it("checks custom profiles", () => {
    assert.equal(parseSeccompProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }, "p.json").defaultAction, "SCMP_ACT_ALLOW");
    assert.throws(() => parseSeccompProfile({ defaultAction: "SCMP_ACT_MAYBE" }, "p.json"), invalid(/seccomp profile p.json: unknown defaultAction/));
    assert.throws(() => parseSeccompProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ action: "SCMP_ACT_ERRNO" }] }, "p.json"), invalid(/syscalls\[0\] has no names/));
    assert.throws(() => parseSeccompProfile([], "p.json"), invalid(/expected a JSON object/));
  });
});

describe("cgroups", () => {
  const hybrid = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  ].join("\n");
  const unified = "30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";

  it("finds v1 hierarchies beside a v2 mount, or a unified v2 host", () => {
    const h = parseCgroupMounts(hybrid);
    assert.equal(h.mode, "v1");
    assert.deepEqual(h.v1, { memory: "/sys/fs/cgroup/memory", cpu: "/sys/fs/cgroup/cpu,cpuacct", cpuacct: "/sys/fs/cgroup/cpu,cpuacct" });
    assert.equal(h.v2?.mount, "/sys/fs/cgroup/unified");
    const u = parseCgroupMounts(unified);
    assert.equal(u.mode, "v2");
    assert.equal(u.v2?.mount, "/sys/fs/cgroup");
  });

  it("detects a memory controller the kernel disabled (Raspberry Pi OS without cgroup_enable=memory)", () => {
    const on = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t4\t1\nmemory\t4\t65\t1\n";
    const off = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t80\t1\nmemory\t0\t80\t0\n";
    assert.deepEqual(memorySupport(on, parseCgroupMounts(hybrid), true), { enabled: true, swapAccounting: true });
    assert.deepEqual(memorySupport(on, parseCgroupMounts(hybrid), false), { enabled: true, swapAccounting: false });
    const pi = parseCgroupMounts(unified);
    pi.v2!.controllers = ["cpuset", "cpu", "io", "pids"];
    assert.equal(memorySupport(off, pi, false).enabled, false);
    pi.v2!.controllers.push("memory");
    assert.equal(memorySupport(on, pi, false).enabled, true);
    assert.equal(memorySupport("", parseCgroupMounts(hybrid), true).enabled, false);
    const err = memoryDisabledError("--memory");
    assert.ok(isKind(err, "FailedPrecondition"));
    assert.match(err.message, /memory cgroup controller is disabled.*cgroup_enable=memory/);
  });
});

describe("spec settings", () => {
  const image: ImageConfig = { architecture: "amd64", os: "linux", config: { Cmd: ["sh"] }, rootfs: { type: "layers", diff_ids: [] } };
  const spec = (settings: ContainerSettings) => generateSpec({ id: "c1", namespace: "default", image, settings });

  it("applies the default seccomp profile, masks and read-only /sys unless privileged", () => {
    const s = spec({});
    assert.equal(s.linux.seccomp?.defaultAction, "SCMP_ACT_ERRNO");
    assert.ok((s.linux.maskedPaths ?? []).includes("/proc/kcore"));
    assert.equal(s.process.noNewPrivileges, true);
    const p = spec({ privileged: true, devices: [{ path: "/dev/sda", type: "b", major: 8, minor: 0, access: "rwm" }] });
    assert.equal(p.linux.seccomp, undefined);
    assert.deepEqual(p.linux.maskedPaths, []);
    assert.deepEqual(p.linux.resources?.devices, [{ allow: true, access: "rwm" }]);
    assert.deepEqual(p.linux.devices, [{ path: "/dev/sda", type: "b", major: 8, minor: 0 }]);
    assert.ok(p.mounts.find((m) => m.destination === "/sys")?.options?.includes("rw"));
    assert.equal(p.process.capabilities.bounding?.length, 41);
    assert.equal(spec({ seccomp: "unconfined" }).linux.seccomp, undefined);
  });

  it("sets read-only root, mounts over defaults, propagation, devices and limits", () => {
    const s = spec({
      readOnly: true,
      mounts: [specMount(parseTmpfsFlag("/dev/shm:size=1m")), specMount(parseVolumeFlag("/h:/c:rshared"))],
      devices: [{ path: "/dev/ttyUSB0", type: "c", major: 188, minor: 0, access: "rw" }],
      resources: { memory: 64 << 20, pidsLimit: 10 },
      swapAccounting: true,
      noNewPrivileges: false,
    });
    assert.equal(s.root.readonly, true);
    assert.equal(s.mounts.filter((m) => m.destination === "/dev/shm").length, 1);
    assert.equal(s.mounts.find((m) => m.destination === "/dev/shm")?.options?.includes("size=1048576"), true);
    assert.equal(s.linux.rootfsPropagation, "rshared");
    assert.deepEqual(s.linux.resources?.devices?.at(-1), { allow: true, type: "c", major: 188, minor: 0, access: "rw" });
    assert.deepEqual(s.linux.resources?.memory, { limit: 64 << 20, swap: 64 << 20 });
    assert.deepEqual(s.linux.resources?.pids, { limit: 10 });
    assert.equal(s.process.noNewPrivileges, false);
  });

  it("parses --device values", () => {
    assert.deepEqual(parseDeviceFlag("/dev/ttyUSB0"), { hostPath: "/dev/ttyUSB0", containerPath: "/dev/ttyUSB0", access: "rwm" });
    assert.deepEqual(parseDeviceFlag("/dev/ttyUSB0:/dev/modem:wr"), { hostPath: "/dev/ttyUSB0", containerPath: "/dev/modem", access: "rw" });
    assert.deepEqual(parseDeviceFlag("/dev/i2c-1:r"), { hostPath: "/dev/i2c-1", containerPath: "/dev/i2c-1", access: "r" });
    assert.throws(() => parseDeviceFlag("/dev/a:/dev/b:xyz"), invalid(/r, w and m/));
    assert.throws(() => parseDeviceFlag("dev/a"), invalid(/absolute/));
  });
});

describe("env files", () => {
  it("reads K=V lines, skips comments and blanks, takes bare names from the environment", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sp-env-"));
    try {
      const file = join(dir, "env");
      await writeFile(file, "# comment\nA=1\n\n  B=two words\nSP_TEST_UNSET\nSP_TEST_SET\nC=x=y\r\n");
      process.env.SP_TEST_SET = "from-host";
      assert.deepEqual(await readEnvFiles([file]), ["A=1", "B=two words", "SP_TEST_SET=from-host", "C=x=y"]);
      await writeFile(file, "OK=1\nBAD KEY=2\n");
      await assert.rejects(readEnvFiles([file]), invalid(/env:2: invalid variable name "BAD KEY"/));
      await assert.rejects(readEnvFiles([join(dir, "missing")]), (e) => isKind(e, "NotFound"));
    } finally {
      delete process.env.SP_TEST_SET;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
