/**
 * Looking at a local content store's files without trusting them (`tsctr check`, GC): every file under
 * blobs/sha256, and every ingest with the state of its lock.
 */
import { createReadStream } from "node:fs";
import { lstat, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createHasher, isDigest } from "../digest/mod.ts";
import { isErrno } from "../errdefs/mod.ts";
import { ownerAlive } from "../platform/lock.ts";

export interface ScannedBlob {
  /** The file name under blobs/sha256. */
  name: string;
  /** "sha256:<name>" when the name is a digest. */
  digest?: string;
  path: string;
  size: number;
  isFile: boolean;
}

/** Every entry under <dir>/blobs/sha256. */
export async function scanBlobs(dir: string): Promise<ScannedBlob[]> {
  const base = join(dir, "blobs", "sha256");
  const out: ScannedBlob[] = [];
  for (const name of await readdir(base).catch(() => [])) {
    const path = join(base, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    const digest = `sha256:${name}`;
    out.push({ name, path, size: st.size, isFile: st.isFile(), ...(isDigest(digest) ? { digest } : {}) });
  }
  return out;
}

/** The SHA-256 digest of a file's bytes, streamed. */
export async function digestFile(path: string): Promise<string> {
  const h = await createHasher();
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Uint8Array);
  return h.digest();
}

export interface ScannedIngest {
  path: string;
  /** The ingest's ref (first line of its ref file), when readable. */
  ref?: string;
  /** True while the process holding its lock runs. */
  locked: boolean;
  /** The newest modification time of the ingest directory and its data. */
  mtimeMs: number;
}

/** Every ingest directory under <dir>/ingest. */
export async function scanIngests(dir: string): Promise<ScannedIngest[]> {
  const base = join(dir, "ingest");
  const out: ScannedIngest[] = [];
  for (const name of await readdir(base).catch(() => [])) {
    const path = join(base, name);
    const owner = (await readFile(join(path, "lock"), "utf8").catch(() => "")).trim();
    const ref = (await readFile(join(path, "ref"), "utf8").catch(() => "")).split("\n")[0] || undefined;
    let mtimeMs = 0;
    for (const p of [path, join(path, "data")]) {
      const st = await lstat(p).catch((e) => (isErrno(e, "ENOENT") ? undefined : Promise.reject(e)));
      if (st) mtimeMs = Math.max(mtimeMs, st.mtimeMs);
    }
    out.push({ path, locked: owner !== "" && ownerAlive(owner), mtimeMs, ...(ref ? { ref } : {}) });
  }
  return out;
}

/** Removes an ingest directory. */
export async function removeIngest(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
