/**
 * The `run` flags that shape a container (mounts, env files, user, privileges, devices, seccomp, limits),
 * checked against the host in two steps: `checkRunFlags` before anything is made (so bad input leaves no
 * record, snapshot, bundle or cgroup), and `containerSettings` once the root filesystem is mounted
 * (volumes are then made and filled from the image).
 */
import { readFile, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import process from "node:process";
import type { Context } from "./context.ts";
import { createVolume, populateVolume, VOLUMES_LABEL } from "./volumes.ts";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { ALL_CAPABILITIES, cgroupLayout, checkDestinations, checkLimits, executableArchitecture, hostDevices, memoryDisabledError, parseSeccompProfile, probeMemory, resolveDevice, specMount, type ContainerSettings, type DeviceRequest, type HostDevice, type MountRequest, type ResourceLimits, type SeccompProfile, type SpecMount } from "../runtime/mod.ts";

/** The shaping flags of `run`, syntax already checked by the command-line parser. */
export interface RunFlags {
  mounts?: MountRequest[];
  envFiles?: string[];
  /** uid[:gid] or name[:group], resolved in the image; replaces the image's User. */
  user?: string;
  cwd?: string;
  hostname?: string;
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  devices?: DeviceRequest[];
  /** "unconfined", or the path of a seccomp profile (Docker's JSON format); default tsctr's profile. */
  seccomp?: string;
  noNewPrivileges?: boolean;
  resources?: ResourceLimits;
}

/** Flags checked against the host, with what was read on the way. */
export interface CheckedRunFlags {
  flags: RunFlags;
  /** K=V entries from the env files, in order. */
  env: string[];
  devices: HostDevice[];
  seccomp?: SeccompProfile | "unconfined";
  swapAccounting: boolean;
  knownCapabilities: string[];
}

/**
 * Checks the flags on the host without changing anything: bind sources and devices exist (NotFound),
 * env files and the seccomp profile read and parse, limits fit the host, and a memory limit has a
 * working memory controller (FailedPrecondition naming the kernel parameter otherwise).
 */
export async function checkRunFlags(flags: RunFlags): Promise<CheckedRunFlags> {
  const mounts = flags.mounts ?? [];
  checkDestinations(mounts);
  for (const m of mounts) {
    if (m.type !== "bind") continue;
    try {
      await stat(m.source);
    } catch (err) {
      if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) throw errorOf("NotFound", `bind mount ${m.source}: no such file or directory on the host (tsctr does not create bind sources)`);
      throw err;
    }
  }
  const limits = flags.resources ?? {};
  checkLimits(limits, availableParallelism());
  let swapAccounting = false;
  if (limits.memory !== undefined) {
    const memory = await probeMemory(await cgroupLayout());
    if (!memory.enabled) throw memoryDisabledError("--memory");
    if (limits.memorySwap !== undefined && limits.memorySwap !== limits.memory && !memory.swapAccounting) {
      throw errorOf("FailedPrecondition", `--memory-swap: the kernel does not account swap: add "swapaccount=1" to the kernel command line and reboot, or leave --memory-swap out`);
    }
    swapAccounting = memory.swapAccounting;
  }
  const [env, devices, seccomp, knownCapabilities] = await Promise.all([
    readEnvFiles(flags.envFiles ?? []),
    (async () => [...(flags.privileged ? await hostDevices() : []), ...(await Promise.all((flags.devices ?? []).map(resolveDevice)))])(),
    readSeccomp(flags.seccomp),
    grantableCapabilities(),
  ]);
  return { flags, env, devices, seccomp, swapAccounting, knownCapabilities };
}

/** The container labels that record what it uses (its volumes, for `volume rm`). */
export function runLabels(flags: RunFlags): Record<string, string> {
  const volumes = [...new Set((flags.mounts ?? []).flatMap((m) => (m.type === "volume" ? [m.source] : [])))];
  return volumes.length > 0 ? { [VOLUMES_LABEL]: volumes.join(",") } : {};
}

/**
 * The spec settings for a container whose root filesystem is mounted at `rootfs`: volumes are created
 * when missing and, when empty, filled from the image's directory at their destination (unless nocopy).
 * The seccomp filter is built for the architecture of `runcBinary`, which installs it.
 */
export async function containerSettings(ctx: Context, checked: CheckedRunFlags, rootfs: string, runcBinary: string): Promise<ContainerSettings> {
  const { flags } = checked;
  const mounts: SpecMount[] = [];
  for (const m of flags.mounts ?? []) {
    if (m.type !== "volume") {
      mounts.push(specMount(m));
      continue;
    }
    const { mountpoint } = await createVolume(ctx, m.source);
    if (!m.noCopy) await populateVolume(mountpoint, rootfs, m.destination);
    mounts.push(specMount(m, mountpoint));
  }
  return {
    mounts,
    readOnly: flags.readOnly,
    privileged: flags.privileged,
    capAdd: flags.capAdd,
    capDrop: flags.capDrop,
    knownCapabilities: checked.knownCapabilities,
    devices: checked.devices,
    seccomp: checked.seccomp,
    noNewPrivileges: flags.noNewPrivileges,
    resources: flags.resources,
    swapAccounting: checked.swapAccounting,
    arch: await executableArchitecture(runcBinary),
  };
}

/**
 * Reads env files as Docker does: one K=V per line, '#' comments and blank lines skipped, a bare K takes
 * this process's value (or is skipped when unset). NotFound for a missing file, InvalidArgument with the
 * file and line for a malformed entry.
 */
export async function readEnvFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const text = await readUserFile(path, "env file");
    text.split("\n").forEach((raw, i) => {
      const line = raw.replace(/\r$/, "").replace(/^\s+/, "");
      if (line === "" || line.startsWith("#")) return;
      const eq = line.indexOf("=");
      const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
      if (key === "" || /\s/.test(key)) throw errorOf("InvalidArgument", `env file ${path}:${i + 1}: invalid variable name ${JSON.stringify(key)}`);
      if (eq >= 0) out.push(line);
      else if (process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
    });
  }
  return out;
}

async function readSeccomp(choice: string | undefined): Promise<SeccompProfile | "unconfined" | undefined> {
  if (choice === undefined) return undefined;
  if (choice === "unconfined") return "unconfined";
  const text = await readUserFile(choice, "seccomp profile");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw errorOf("InvalidArgument", `seccomp profile ${choice}: not JSON: ${(err as Error).message}`);
  }
  return parseSeccompProfile(value, choice);
}

/**
 * The capabilities tsctr can grant: those in its own bounding set (a capability outside it cannot be given
 * to a child, as in a restricted VM or a nested container), or every one it knows if that is unreadable.
 */
async function grantableCapabilities(): Promise<string[]> {
  const status = await readFile("/proc/self/status", "utf8").catch(() => "");
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return [...ALL_CAPABILITIES];
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** Reads a file named on the command line; NotFound "<what> <path>: no such file" when it is missing. */
async function readUserFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) throw errorOf("NotFound", `${what} ${path}: no such file`);
    throw err;
  }
}
