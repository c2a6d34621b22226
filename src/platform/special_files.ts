/**
 * Device nodes, fifos and extended attributes, which Node and Deno have no API for: one seam that runs
 * the coreutils `mknod`/`mkfifo` and the attr package's `setfattr`/`getfattr`. A native or WASI
 * implementation can replace it without changing callers.
 */
import { Buffer } from "node:buffer";
import { errorOf, isKind } from "../errdefs/mod.ts";
import { execFile, type ExecResult } from "./exec.ts";

function failure(action: string, r: ExecResult) {
  const detail = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
  const kind = /Operation not permitted|Permission denied/.test(detail) ? "PermissionDenied" : /No space left/.test(detail) ? "ResourceExhausted" : "Internal";
  return errorOf(kind, `${action}: ${detail}`);
}

async function run(program: string, args: string[], action: string, pkg: string): Promise<ExecResult> {
  try {
    return await execFile(program, args);
  } catch (e) {
    if (isKind(e, "FailedPrecondition")) throw errorOf("FailedPrecondition", `${action}: ${program} is not installed (install the ${pkg} package)`, e);
    throw e;
  }
}

/** Creates a character or block device node at `path` (which must not exist) with exactly `mode`'s permission bits. */
export async function makeDevice(path: string, type: "char" | "block", mode: number, major: number, minor: number): Promise<void> {
  const args = ["-m", (mode & 0o7777).toString(8), "--", path, type === "char" ? "c" : "b", String(major), String(minor)];
  const r = await run("mknod", args, `mknod ${path}`, "coreutils");
  if (r.code !== 0) throw failure(`mknod ${path}`, r);
}

/** Creates a fifo at `path` (which must not exist) with exactly `mode`'s permission bits. */
export async function makeFifo(path: string, mode: number): Promise<void> {
  const r = await run("mkfifo", ["-m", (mode & 0o7777).toString(8), "--", path], `mkfifo ${path}`, "coreutils");
  if (r.code !== 0) throw failure(`mkfifo ${path}`, r);
}

/** Sets extended attribute `name` of `path` itself (a symlink is not followed) to the exact bytes `value`. */
export async function setXattr(path: string, name: string, value: Uint8Array): Promise<void> {
  // Hex encoding ("0x…") carries binary values (security.capability) through the command line intact.
  const hex = value.length === 0 ? '""' : `0x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
  const r = await run("setfattr", ["-h", "-n", name, "-v", hex, "--", path], `set xattr ${name} on ${path}`, "attr");
  if (r.code !== 0) throw failure(`set xattr ${name} on ${path}`, r);
}

/** Every extended attribute of `path` itself (symlinks not followed) in all namespaces readable by the caller. */
export async function getXattrs(path: string): Promise<Map<string, Uint8Array>> {
  const r = await run("getfattr", ["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", "--", path], `get xattrs of ${path}`, "attr");
  if (r.code !== 0) throw failure(`get xattrs of ${path}`, r);
  const out = new Map<string, Uint8Array>();
  for (const line of r.stdout.split("\n")) {
    const m = /^([^#=][^=]*)=(?:0x([0-9a-f]*))?$/.exec(line);
    if (m) out.set(m[1]!, new Uint8Array(Buffer.from(m[2] ?? "", "hex")));
  }
  return out;
}
