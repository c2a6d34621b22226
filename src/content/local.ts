/**
 * A content store on the local filesystem, like containerd's plugins/content/local:
 *   <dir>/blobs/sha256/<hex>            committed blobs, read-only, verified
 *   <dir>/ingest/<hash of ref>/data     a blob being written; renamed into blobs/ only after verification
 */
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import process from "node:process";
import { createHasher, digestHex, isDigest, type Digest, type Hasher } from "../digest/mod.ts";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { fsyncDir, syncHandle } from "../platform/durable.ts";
import type { BlobInfo, ContentStore, ContentWriter, Expected } from "./types.ts";

/** Opens (creating if needed) the content store rooted at `dir`. */
export async function openLocalStore(dir: string): Promise<ContentStore> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await mkdir(join(dir, "ingest"), { recursive: true });
  return new LocalStore(dir);
}

class LocalStore implements ContentStore {
  readonly #dir: string;
  constructor(dir: string) {
    this.#dir = dir;
  }

  #blobPath(d: Digest): string {
    return join(this.#dir, "blobs", "sha256", digestHex(d));
  }

  async info(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.#blobPath(digest));
      return { digest, size: st.size };
    } catch (e) {
      if (isErrno(e, "ENOENT")) return undefined;
      throw e;
    }
  }

  async readBytes(digest: Digest, maxSize = 64 << 20): Promise<Uint8Array> {
    const info = await this.info(digest);
    if (!info) throw errorOf("NotFound", `content ${digest}: not found in the content store`);
    if (info.size > maxSize) throw errorOf("ResourceExhausted", `content ${digest}: ${info.size} bytes exceeds the limit of ${maxSize}`);
    return new Uint8Array(await readFile(this.#blobPath(digest)));
  }

  async readStream(digest: Digest): Promise<ReadableStream<Uint8Array>> {
    if (!(await this.info(digest))) throw errorOf("NotFound", `content ${digest}: not found in the content store`);
    const node = createReadStream(this.#blobPath(digest), { highWaterMark: 1 << 20 });
    return Readable.toWeb(node) as unknown as ReadableStream<Uint8Array>;
  }

  async writer(ref: string, expected: Expected): Promise<ContentWriter> {
    if (!isDigest(expected.digest)) throw errorOf("InvalidArgument", `ingest ${ref}: invalid expected digest`);
    const ingestDir = join(this.#dir, "ingest", digestHex(await refKey(ref)));
    await mkdir(ingestDir, { recursive: true });
    const lock = join(ingestDir, "lock");
    try {
      await takeLock(lock, ref);
    } catch (e) {
      await rmdir(ingestDir).catch(() => {}); // only when empty: another process's ingest stays
      throw e;
    }
    try {
      await writeFile(join(ingestDir, "ref"), `${ref}\n${expected.digest} ${expected.size}\n`);
      const fh = await open(join(ingestDir, "data"), "w");
      return new LocalWriter(fh, ingestDir, this.#blobPath(expected.digest), expected, await createHasher());
    } catch (e) {
      // A full disk (or any failure) before the first byte: no half-made ingest stays behind.
      heldLocks.delete(lock);
      await rm(ingestDir, { recursive: true, force: true });
      throw e;
    }
  }

  async writeBytes(bytes: Uint8Array, expected: Expected): Promise<BlobInfo> {
    const existing = await this.info(expected.digest);
    if (existing) return existing;
    const w = await this.writer(`bytes-${expected.digest}`, expected);
    try {
      await w.write(bytes);
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.#blobPath(digest), { force: true });
  }

  async *list(): AsyncIterable<BlobInfo> {
    const dir = join(this.#dir, "blobs", "sha256");
    for (const name of await readdir(dir)) {
      const digest = `sha256:${name}`;
      if (!isDigest(digest)) continue;
      const st = await stat(join(dir, name));
      yield { digest, size: st.size };
    }
  }
}

class LocalWriter implements ContentWriter {
  #offset = 0;
  #done = false;
  readonly #fh: FileHandle;
  readonly #ingestDir: string;
  readonly #target: string;
  readonly #expected: Expected;
  readonly #hasher: Hasher;

  constructor(fh: FileHandle, ingestDir: string, target: string, expected: Expected, hasher: Hasher) {
    this.#fh = fh;
    this.#ingestDir = ingestDir;
    this.#target = target;
    this.#expected = expected;
    this.#hasher = hasher;
  }

  get offset(): number {
    return this.#offset;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#offset + chunk.byteLength > this.#expected.size) {
      throw errorOf("DataLoss", `content ${this.#expected.digest}: more than the expected ${this.#expected.size} bytes`);
    }
    this.#hasher.update(chunk);
    let written = 0;
    while (written < chunk.byteLength) {
      const r = await this.#fh.write(chunk, written, chunk.byteLength - written);
      written += r.bytesWritten;
    }
    this.#offset += chunk.byteLength;
  }

  async commit(): Promise<BlobInfo> {
    const { digest, size } = this.#expected;
    try {
      if (this.#offset !== size) throw errorOf("DataLoss", `content ${digest}: got ${this.#offset} bytes, expected ${size}`);
      const got = this.#hasher.digest();
      if (got !== digest) throw errorOf("DataLoss", `content ${digest}: data has digest ${got}`);
      await syncHandle(this.#fh);
      await this.#fh.close();
      this.#done = true;
      await rename(join(this.#ingestDir, "data"), this.#target);
      await fsyncDir(join(this.#target, ".."));
      heldLocks.delete(join(this.#ingestDir, "lock"));
      await rm(this.#ingestDir, { recursive: true, force: true });
      return { digest, size };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    heldLocks.delete(join(this.#ingestDir, "lock"));
    if (!this.#done) {
      this.#done = true;
      await this.#fh.close().catch(() => {});
    }
    await rm(this.#ingestDir, { recursive: true, force: true });
  }
}

async function refKey(ref: string): Promise<Digest> {
  const h = await createHasher();
  h.update(new TextEncoder().encode(ref));
  return h.digest();
}

const heldLocks = new Set<string>();

/** Takes an ingest lock; a lock left by a dead process is taken over. */
async function takeLock(path: string, ref: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, "wx");
      try {
        await fh.writeFile(String(process.pid));
      } catch (e) {
        await fh.close().catch(() => {});
        await rm(path, { force: true });
        throw e;
      }
      await fh.close();
      heldLocks.add(path);
      return;
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      const mine = pid === process.pid && heldLocks.has(path);
      if (mine || (pid > 0 && pid !== process.pid && processAlive(pid))) {
        throw errorOf("AlreadyExists", `ingest ${ref}: another tsctr process (pid ${pid}) is writing it`);
      }
      await rm(path, { force: true });
    }
  }
  throw errorOf("AlreadyExists", `ingest ${ref}: locked`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, "EPERM");
  }
}
