/**
 * Host devices given to a container: `--device /dev/x[:/dev/y][:rwm]` and, with `--privileged`, every
 * device node of the host's /dev. Each becomes a device node in the container and a device-cgroup rule.
 */
import { lstat, readdir, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import type { SpecDevice, SpecDeviceCgroup } from "./spec_types.ts";

/** A `--device` value before the host is looked at. */
export interface DeviceRequest {
  hostPath: string;
  containerPath: string;
  /** Some of "r", "w", "m" (read, write, mknod). */
  access: string;
}

/** A host device resolved to its type and numbers, with the access the container gets. */
export interface HostDevice extends SpecDevice {
  access: string;
}

/** Directories under /dev that are not the host's devices to hand out (the container gets its own). */
const SKIPPED_DIRS = new Set(["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.udev", "/dev/hugepages"]);

/** Parses `/dev/x[:/dev/y][:rwm]`; InvalidArgument when the paths are not absolute or the access is not r/w/m. */
export function parseDeviceFlag(value: string): DeviceRequest {
  const fail = (detail: string) => errorOf("InvalidArgument", `invalid --device "${value}": ${detail}`);
  const parts = value.split(":");
  if (parts.length > 3 || parts.some((p) => p === "")) throw fail("expected /dev/HOST[:/dev/CONTAINER][:rwm]");
  let access = "rwm";
  const last = parts[parts.length - 1]!;
  if (parts.length > 1 && /^[rwm]+$/.test(last)) {
    access = last;
    parts.pop();
  }
  if (parts.length > 2) throw fail(`access "${last}" must be made of r, w and m`);
  const [hostPath = "", containerPath = hostPath] = parts;
  if (!hostPath.startsWith("/") || !containerPath.startsWith("/")) throw fail("device paths must be absolute");
  return { hostPath: posix.normalize(hostPath), containerPath: posix.normalize(containerPath), access: [..."rwm"].filter((c) => access.includes(c)).join("") };
}

/**
 * Looks a requested device up on the host (following links): NotFound when it does not exist,
 * InvalidArgument when it is not a character or block device.
 */
export async function resolveDevice(req: DeviceRequest): Promise<HostDevice> {
  let st;
  try {
    st = await stat(req.hostPath, { bigint: true });
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) throw errorOf("NotFound", `device ${req.hostPath}: no such device on this host`);
    throw err;
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw errorOf("InvalidArgument", `device ${req.hostPath}: not a character or block device`);
  return { path: req.containerPath, type: st.isBlockDevice() ? "b" : "c", ...deviceNumbers(st.rdev), fileMode: Number(st.mode & 0o777n), uid: 0, gid: 0, access: req.access };
}

/** Every character and block device under the host's /dev (not pts, shm, mqueue), for `--privileged`. */
export async function hostDevices(dir = "/dev"): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const path = join(dir, name);
    const st = await lstat(path, { bigint: true }).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) {
      if (!SKIPPED_DIRS.has(path)) out.push(...(await hostDevices(path)));
    } else if ((st.isCharacterDevice() || st.isBlockDevice()) && path !== "/dev/console") {
      out.push({ path, type: st.isBlockDevice() ? "b" : "c", ...deviceNumbers(st.rdev), fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid), access: "rwm" });
    }
  }
  return out;
}

/** The spec's device node and cgroup rule for each device. */
export function deviceSpec(devices: readonly HostDevice[]): { nodes: SpecDevice[]; rules: SpecDeviceCgroup[] } {
  const nodes: SpecDevice[] = devices.map(({ access: _access, ...node }) => node);
  const rules: SpecDeviceCgroup[] = devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.access }));
  return { nodes, rules };
}

/** Linux's major and minor numbers from st_rdev (glibc's gnu_dev_major/minor encoding). */
function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}
