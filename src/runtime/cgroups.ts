/**
 * The host's cgroups as runc uses them: which hierarchy holds each controller (v1, v2, or a hybrid of
 * both), whether the memory controller is usable, and a container's usage figures read from its cgroup.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorOf } from "../errdefs/mod.ts";

/** The cgroup path tsctr gives runc for a container (relative to each hierarchy's root). */
export function cgroupsPathFor(namespace: string, id: string): string {
  return `/tsctr/${namespace}/${id}`;
}

/** Where each controller is mounted: v1 hierarchies by controller name, and the v2 mount, if any. */
export interface CgroupLayout {
  /** "v2" when /sys/fs/cgroup itself is cgroup2; "v1" (possibly with a v2 mount beside it) otherwise. */
  mode: "v1" | "v2";
  /** v1 mount points by controller ("memory" → "/sys/fs/cgroup/memory"). */
  v1: Record<string, string>;
  /** The cgroup2 mount point and the controllers enabled at its root. */
  v2?: { mount: string; controllers: string[] };
}

/** Whether the memory controller can enforce limits, and the kernel's swap accounting. */
export interface MemorySupport {
  enabled: boolean;
  swapAccounting: boolean;
}

/**
 * Reads the layout from /proc/self/mountinfo and, for v2, the root's cgroup.controllers. A host without
 * any cgroup mount gives mode "v1" with no controllers.
 */
export async function cgroupLayout(): Promise<CgroupLayout> {
  const layout = parseCgroupMounts(await readFile("/proc/self/mountinfo", "utf8"));
  if (layout.v2) {
    const text = await readFile(join(layout.v2.mount, "cgroup.controllers"), "utf8").catch(() => "");
    layout.v2.controllers = text.split(/\s+/).filter((c) => c !== "");
  }
  return layout;
}

/** The controllers a cgroup v1 mount's super options may name (the rest are mount options). */
const V1_CONTROLLERS = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "blkio", "rdma", "misc"];

/** Parses mountinfo lines into a layout (v2 controllers left empty for the caller to read). */
export function parseCgroupMounts(mountinfo: string): CgroupLayout {
  const layout: CgroupLayout = { mode: "v1", v1: {} };
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const mountPoint = line.slice(0, sep).split(" ")[4];
    const [fsType, , superOptions = ""] = line.slice(sep + 3).split(" ");
    if (!mountPoint) continue;
    if (fsType === "cgroup2") {
      if (!layout.v2 || mountPoint === "/sys/fs/cgroup") layout.v2 = { mount: mountPoint, controllers: [] };
      if (mountPoint === "/sys/fs/cgroup") layout.mode = "v2";
    } else if (fsType === "cgroup") {
      for (const opt of superOptions.split(",")) if (V1_CONTROLLERS.includes(opt) && !layout.v1[opt]) layout.v1[opt] = mountPoint;
    }
  }
  return layout;
}

/**
 * Decides from /proc/cgroups and the layout whether memory limits can work. The controller is unusable
 * when /proc/cgroups says enabled 0 (the kernel booted with cgroup_disable=memory, as Raspberry Pi OS
 * does unless cgroup_enable=memory is given), when no v1 hierarchy mounts it on a v1 host, or when the
 * v2 root does not list it. Swap is accounted when the v1 memory root has memory.memsw.* files or on v2.
 */
export function memorySupport(procCgroups: string, layout: CgroupLayout, v1SwapFile: boolean): MemorySupport {
  const line = procCgroups.split("\n").find((l) => l.split(/\s+/)[0] === "memory");
  const kernelEnabled = line !== undefined && line.trim().split(/\s+/)[3] === "1";
  const mounted = layout.mode === "v2" ? (layout.v2?.controllers.includes("memory") ?? false) : layout.v1.memory !== undefined;
  const enabled = kernelEnabled && mounted;
  return { enabled, swapAccounting: enabled && (layout.mode === "v2" || v1SwapFile) };
}

/** Probes this host's memory controller (see memorySupport). */
export async function probeMemory(layout: CgroupLayout): Promise<MemorySupport> {
  const procCgroups = await readFile("/proc/cgroups", "utf8").catch(() => "");
  const v1Root = layout.v1.memory;
  const swapFile = v1Root ? await readFile(join(v1Root, "memory.memsw.limit_in_bytes"), "utf8").then(() => true, () => false) : false;
  return memorySupport(procCgroups, layout, swapFile);
}

/** The loud refusal of a memory limit on a kernel whose memory controller is off (FailedPrecondition). */
export function memoryDisabledError(flag: string): Error {
  return errorOf(
    "FailedPrecondition",
    `${flag}: the kernel's memory cgroup controller is disabled, so the limit cannot be enforced: add "cgroup_enable=memory cgroup_memory=1" to the kernel command line (on Raspberry Pi OS: /boot/firmware/cmdline.txt) and reboot`,
  );
}

/** One reading of a container's cgroup. Memory in bytes (page cache that can be dropped not counted). */
export interface CgroupStats {
  memoryUsage: number;
  /** undefined when unlimited. */
  memoryLimit?: number;
  /** Total CPU time used, in nanoseconds. */
  cpuNanos: number;
  pids: number;
  pidsLimit?: number;
}

/**
 * Reads usage from the cgroup at `path` (as given to runc) under `layout`: memory, CPU and pids files of
 * v1 (memory, cpuacct, pids hierarchies) or v2. NotFound when the cgroup does not exist.
 */
export async function readCgroupStats(layout: CgroupLayout, path: string): Promise<CgroupStats> {
  const useV2 = layout.mode === "v2" || (layout.v1.memory === undefined && layout.v2 !== undefined);
  const read = async (dir: string | undefined, file: string) => {
    if (dir === undefined) return undefined;
    return readFile(join(dir, path, file), "utf8").catch(() => undefined);
  };
  if (useV2) {
    const dir = layout.v2!.mount;
    const current = await read(dir, "cgroup.procs");
    if (current === undefined) throw errorOf("NotFound", `cgroup ${path}: not found under ${dir}`);
    const [mem, max, stat, cpu, pids, pidsMax] = await Promise.all(["memory.current", "memory.max", "memory.stat", "cpu.stat", "pids.current", "pids.max"].map((f) => read(dir, f)));
    return {
      memoryUsage: Math.max(0, num(mem) - statField(stat, "inactive_file")),
      memoryLimit: limitOf(max),
      cpuNanos: statField(cpu, "usage_usec") * 1000,
      pids: num(pids),
      pidsLimit: limitOf(pidsMax),
    };
  }
  const memDir = layout.v1.memory;
  const anyDir = memDir ?? layout.v1.pids ?? layout.v1.cpuacct;
  if ((await read(anyDir, "cgroup.procs")) === undefined) throw errorOf("NotFound", `cgroup ${path}: not found`);
  const [mem, max, stat, cpu, pids, pidsMax] = await Promise.all([
    read(memDir, "memory.usage_in_bytes"),
    read(memDir, "memory.limit_in_bytes"),
    read(memDir, "memory.stat"),
    read(layout.v1.cpuacct, "cpuacct.usage"),
    read(layout.v1.pids, "pids.current"),
    read(layout.v1.pids, "pids.max"),
  ]);
  const limit = num(max);
  return {
    memoryUsage: Math.max(0, num(mem) - statField(stat, "total_inactive_file")),
    // v1 reports "no limit" as the largest page-aligned 64-bit number
    memoryLimit: limit > 0 && limit < 2 ** 62 ? limit : undefined,
    cpuNanos: num(cpu),
    pids: num(pids),
    pidsLimit: limitOf(pidsMax),
  };
}

function num(text: string | undefined): number {
  const n = Number((text ?? "").trim());
  return Number.isFinite(n) ? n : 0;
}

function limitOf(text: string | undefined): number | undefined {
  const t = (text ?? "").trim();
  return t === "" || t === "max" ? undefined : num(t);
}

function statField(text: string | undefined, key: string): number {
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.split(" ");
    if (k === key) return num(v);
  }
  return 0;
}
