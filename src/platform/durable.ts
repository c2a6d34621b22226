/** Durability helpers: fsync of files and directories, atomic writes. */
import { open, rename, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Flushes a directory's entries (after a rename or create inside it) to stable storage. */
export async function fsyncDir(dir: string): Promise<void> {
  if (syncLevel === "none") return;
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a file's contents to stable storage. */
export async function fsyncFile(path: string): Promise<void> {
  if (syncLevel !== "full") return;
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `data` to `path` atomically: a temporary file beside it is written, fsynced and renamed over
 * `path`, then the directory is fsynced. Readers see the old content or the new, never a mix. With
 * `durable: false` (runtime state that a reboot discards) the two fsyncs are skipped.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; durable?: boolean } | number = {}): Promise<void> {
  const { mode = 0o644, durable = true } = typeof opts === "number" ? { mode: opts } : opts;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, data, { mode });
  if (durable) await fsyncFile(tmp);
  await rename(tmp, path);
  if (durable) await fsyncDir(dir);
}

/**
 * How much tsctr flushes to stable storage (`--sync`, or "sync" in <root>/config.json):
 * - `full` (default): file data is fsynced before it is renamed into place, directories after; a power cut
 *   leaves every committed blob, layer and name whole, or absent.
 * - `metadata`: names and directories are flushed, file data is not; after a power cut a blob or layer may
 *   hold zeros or be short (`tsctr check --full` finds it, `--repair` makes the next pull fetch it again).
 * - `none`: nothing is flushed; a killed process still leaves a consistent store (renames are atomic), a
 *   power cut may lose anything written in the last seconds.
 */
export type SyncLevel = "none" | "metadata" | "full";

export const SYNC_LEVELS: readonly SyncLevel[] = ["none", "metadata", "full"];

let syncLevel: SyncLevel = "full";

/** Sets the process-wide sync level. */
export function setSyncLevel(level: SyncLevel): void {
  syncLevel = level;
}

/** The process-wide sync level. */
export function getSyncLevel(): SyncLevel {
  return syncLevel;
}

/** True when file data must reach stable storage before it is renamed into place (level `full`). */
export function syncsData(): boolean {
  return syncLevel === "full";
}

/** Flushes an open file's data when the sync level asks for it. */
export async function syncHandle(fh: { sync(): Promise<void> }): Promise<void> {
  if (syncLevel === "full") await fh.sync();
}
