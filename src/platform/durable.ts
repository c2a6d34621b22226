/** Durability helpers: fsync of files and directories, atomic writes. */
import { open, rename, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Flushes a directory's entries (after a rename or create inside it) to stable storage. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Flushes a file's contents to stable storage. */
export async function fsyncFile(path: string): Promise<void> {
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
