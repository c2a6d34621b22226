/**
 * Performs the Mount records that snapshotters return, through util-linux `mount`/`umount` (Node and
 * Deno have no mount(2)). Supported types: "overlay" and "bind" (options "bind"/"rbind", "ro"/"rw").
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorOf } from "../errdefs/mod.ts";
import { execFile } from "../platform/exec.ts";
import type { Mount } from "../snapshots/types.ts";

/** The kernel copies mount(2) data into one page: overlay options longer than this fail to mount. */
export const MOUNT_DATA_LIMIT = 4096;

/**
 * Mounts every record in order on `target` (joined with each record's own `target`, if any); on a
 * failure the mounts already made are undone and the error names the record and the program's message.
 */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const where = m.target ? join(target, m.target) : target;
      await mountOne(m, where);
      done.push(where);
    }
  } catch (e) {
    for (const where of done.reverse()) await unmount(where).catch(() => {});
    throw e;
  }
}

async function mountOne(m: Mount, where: string): Promise<void> {
  let args: string[];
  if (m.type === "bind") {
    const opts = m.options.includes("bind") || m.options.includes("rbind") ? m.options : ["rbind", ...m.options];
    args = ["--no-mtab", "-o", opts.join(","), "--", m.source, where];
  } else if (m.type === "overlay") {
    const data = m.options.join(",");
    if (data.length >= MOUNT_DATA_LIMIT) {
      throw errorOf("ResourceExhausted", `mount overlay on ${where}: options are ${data.length} bytes, over the kernel's ${MOUNT_DATA_LIMIT}-byte limit (too many layers)`);
    }
    args = ["--no-mtab", "-t", "overlay", "-o", data, "--", m.source, where];
  } else {
    throw errorOf("NotImplemented", `mount ${m.source} on ${where}: mount type "${m.type}" is not supported`);
  }
  const r = await execFile("mount", args, { cwd: m.cwd });
  if (r.code !== 0) {
    const detail = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
    throw errorOf(/permission denied|must be superuser/i.test(detail) ? "PermissionDenied" : "Internal", `mount ${m.type} on ${where}: ${detail}`);
  }
}

/**
 * Unmounts `target`. With `lazy`, detaches it even while busy (umount -l). Throws NotFound when nothing
 * is mounted there.
 */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  const r = await execFile("umount", [...(opts.lazy ? ["-l"] : []), "--", target]);
  if (r.code !== 0) {
    const detail = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
    throw errorOf(/not mounted|no mount point/i.test(detail) ? "NotFound" : /busy/i.test(detail) ? "FailedPrecondition" : "Internal", `unmount ${target}: ${detail}`);
  }
}

/** True when the running kernel lists overlayfs in /proc/filesystems. */
export async function overlaySupported(): Promise<boolean> {
  try {
    const text = await readFile("/proc/filesystems", "utf8");
    return text.split("\n").some((line) => line.split("\t").pop()?.trim() === "overlay");
  } catch {
    return false;
  }
}
