/**
 * The one place a full disk becomes an error for the user: whatever layer hit ENOSPC, EDQUOT or SQLite's
 * "database or disk is full" (content ingest, a snapshot's files on an extraction worker, the metadata
 * database), the operation reports one line naming the store and how much more room it wants.
 */
import { statfs } from "node:fs"; // Deno 2 has the callback form only, not node:fs/promises' statfs
import { errorOf, isDiskFull } from "../errdefs/mod.ts";

const MB = 1 << 20;

/** Bytes free to this (root) process on the filesystem holding `path`, or undefined where statfs fails. */
export async function freeBytes(path: string): Promise<number | undefined> {
  return new Promise((resolve) => statfs(path, (err, st) => resolve(err ? undefined : Number(st.bfree) * Number(st.bsize))));
}

/**
 * Returns `err` unchanged unless it says the disk is full; then a ResourceExhausted error
 * "<action>: no space left on device under <root> (F MB free; needed about N MB more)", where N is
 * `needBytes` (what the operation writes in all, when the caller can estimate it) less what is free.
 * Call it after the operation cleaned up, so "free" is what the user has to work with.
 */
export async function diskFullError(err: unknown, action: string, root: string, needBytes?: number): Promise<unknown> {
  if (!isDiskFull(err)) return err;
  const free = await freeBytes(root);
  const parts: string[] = [];
  if (free !== undefined) parts.push(`${mb(free)} MB free`);
  if (needBytes !== undefined && free !== undefined) parts.push(`needed about ${Math.max(1, mb(needBytes - free))} MB more`);
  const detail = parts.length > 0 ? ` (${parts.join("; ")})` : "";
  return errorOf("ResourceExhausted", `${action}: no space left on device under ${root}${detail}`, err);
}

function mb(bytes: number): number {
  return Math.ceil(bytes / MB);
}
