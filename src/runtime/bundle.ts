/**
 * OCI bundles on disk: a directory holding `config.json` and (usually) the `rootfs` mount point.
 */
import { mkdir, readFile, realpath, rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { writeFileAtomic } from "../platform/durable.ts";
import type { Spec } from "./spec_types.ts";

/** Where a written bundle's parts are. */
export interface BundlePaths {
  dir: string;
  config: string;
  rootfs: string;
}

/**
 * Creates `dir` (mode 0711) and the rootfs directory the spec names, then writes `config.json`
 * atomically (not durably: it is runtime state): a reader sees no config or the complete one. An existing rootfs is left as it is.
 */
export async function writeBundle(dir: string, spec: Spec): Promise<BundlePaths> {
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const rootfs = isAbsolute(spec.root.path) ? spec.root.path : join(dir, spec.root.path);
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  const config = join(dir, "config.json");
  // Runtime state (under /run): atomic for readers, but not fsynced; a reboot discards it anyway.
  await writeFileAtomic(config, JSON.stringify(spec, null, 2) + "\n", { mode: 0o600, durable: false });
  return { dir, config, rootfs };
}

/**
 * Removes the bundle directory and everything in it; a missing bundle is not an error. Refuses with
 * FailedPrecondition while anything at or below `dir` is still mounted (per /proc/self/mountinfo), so a
 * mounted snapshot is never emptied through the bundle.
 */
export async function removeBundle(dir: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return;
    throw err;
  }
  const mounted = (await mountPoints()).find((m) => m === real || m.startsWith(real + "/"));
  if (mounted) throw errorOf("FailedPrecondition", `remove bundle ${dir}: ${mounted} is still mounted; unmount it first`);
  await rm(real, { recursive: true, force: true });
}

/** One mount of this process's mount namespace: where it is and its per-mount options (ro, noexec…). */
export interface MountInfo {
  mountPoint: string;
  options: string[];
}

/** The mounts of this process's mount namespace, decoded from /proc/self/mountinfo (fields 5 and 6). */
export async function mountInfo(): Promise<MountInfo[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    if (!fields[4]) continue;
    out.push({ mountPoint: fields[4].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))), options: (fields[5] ?? "").split(",") });
  }
  return out;
}

/** Mount points of this process's mount namespace. */
async function mountPoints(): Promise<string[]> {
  return (await mountInfo()).map((m) => m.mountPoint);
}
