/**
 * Persistent network namespaces: a new namespace kept alive by a bind mount of its nsfs file on a path,
 * made by util-linux `unshare --net=PATH` (Node and Deno cannot call unshare(2) or mount(2) themselves).
 */
import { lstat, mkdir, open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import { errorOf, isErrno, isKind } from "../errdefs/mod.ts";
import { unmount } from "../mount/mod.ts";
import { execFile } from "../platform/exec.ts";

/** $PATH plus the sbin directories, where `ip` and `iptables` live. */
export function sbinPath(): string {
  return [process.env.PATH ?? "", "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].filter(Boolean).join(":");
}

/**
 * Creates a network namespace held by a bind mount at `path`, with the loopback interface up. Fails with
 * AlreadyExists when `path` exists; after any other failure nothing is left at `path`.
 */
export async function createNetns(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  try {
    await (await open(path, "wx", 0o444)).close();
  } catch (e) {
    if (isErrno(e, "EEXIST")) throw errorOf("AlreadyExists", `create network namespace ${path}: it exists already`);
    throw e;
  }
  // `unshare --net=PATH` bind-mounts the new namespace on PATH before it runs `ip`, in the namespace.
  const r = await execFile("unshare", [`--net=${path}`, "ip", "link", "set", "lo", "up"], { env: { ...process.env, PATH: sbinPath() } }).catch(async (e: unknown) => {
    await removeNetns(path);
    throw e;
  });
  if (r.code !== 0) {
    await removeNetns(path);
    const detail = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
    throw errorOf("FailedPrecondition", `create network namespace ${path}: ${detail}`);
  }
}

/** Unmounts and deletes a namespace file made by createNetns. Idempotent: a missing or unmounted file is fine. */
export async function removeNetns(path: string): Promise<void> {
  // No file, no mount on it (a mount point cannot be deleted): nothing to spawn umount for (none and host modes).
  const missing = await lstat(path).then(() => false, (e: unknown) => {
    if (isErrno(e, "ENOENT")) return true;
    throw e;
  });
  if (missing) return;
  await unmount(path).catch((e: unknown) => {
    if (!isKind(e, "NotFound")) throw e;
  });
  await rm(path, { force: true });
}
