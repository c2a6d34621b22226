/**
 * Reading files inside a container root filesystem as the container would see them: symlinks are
 * followed, but resolved against the root, so no path (absolute link, "..") ever leaves it.
 */
import { constants } from "node:fs";
import { lstat, open, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Buffer } from "node:buffer";
import { errorOf, isErrno } from "../errdefs/mod.ts";

/** Linux's limit on symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

/** Files read from an image (passwd, group) larger than this are refused. */
const MAX_FILE_SIZE = 16 << 20;

/**
 * Resolves `path` as seen from inside `root` and returns the host path, always `root` or below it.
 * Symlinks are followed with `root` as "/", ".." stops at `root`; missing components are kept as they are.
 * Throws InvalidArgument after more than 40 symlinks.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = split(path);
  let resolved: string[] = [];
  let links = 0;
  for (let part = pending.shift(); part !== undefined; part = pending.shift()) {
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      if (!isErrno(err, "ENOENT") && !isErrno(err, "ENOTDIR")) throw err;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw errorOf("InvalidArgument", `resolve ${path} in ${root}: too many levels of symbolic links`);
    const target = await readlink(candidate);
    if (target.startsWith("/")) resolved = [];
    pending.unshift(...split(target));
  }
  return join(root, ...resolved);
}

/**
 * Reads the regular file at `path` inside `root` (see resolveInRoot). Resolves to undefined when it does
 * not exist; throws InvalidArgument when it is not a regular file (a FIFO or device never blocks the read).
 */
export async function readFileInRoot(root: string, path: string): Promise<Buffer | undefined> {
  const host = await resolveInRoot(root, path);
  let fh;
  try {
    fh = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) return undefined;
    if (isErrno(err, "ELOOP")) throw errorOf("InvalidArgument", `read ${path} in ${root}: it changed into a symbolic link`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw errorOf("InvalidArgument", `read ${path} in ${root}: not a regular file`);
    if (st.size > MAX_FILE_SIZE) throw errorOf("InvalidArgument", `read ${path} in ${root}: larger than ${MAX_FILE_SIZE} bytes`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

function split(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}
