/**
 * Where an archive's entries land during an import, before anything is named:
 * - `blobs/sha256/<hex>` files stream straight into the content store (ingest → verify digest and size →
 *   fsync → rename), so a blob that does not match its name fails while it streams;
 * - small metadata files (index.json, manifest.json, configs named *.json) are kept in memory;
 * - other files (a Docker archive's `<id>/layer.tar`) are hashed while they are written to a staging
 *   directory, and enter the content store only if a manifest uses them;
 * - links are remembered and followed inside the archive.
 * `rollback` deletes the blobs this import added, so a failed import leaves the store as before.
 */
import { createReadStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ContentStore } from "../content/mod.ts";
import { createHasher, digestOf, type Digest } from "../digest/mod.ts";
import { TsctrError, errorOf } from "../errdefs/mod.ts";
import type { ArchiveHandlers } from "./archive_reader.ts";
import { printable } from "./paths.ts";

/** Metadata files larger than this are refused (manifests and configs are far smaller). */
const MAX_METADATA = 4 << 20;
const MAX_LINK_HOPS = 16;
/** Metadata files without a .json suffix. */
const METADATA_NAMES = new Set(["oci-layout", "repositories"]);

type Staged =
  | { kind: "blob"; digest: Digest; size: number }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "file"; file: string; digest: Digest; size: number }
  | { kind: "link"; target: string };

/** A blob of the archive, in the content store. */
export interface StoredBlob {
  digest: Digest;
  size: number;
  /** Its first bytes (for sniffing the compression of a Docker archive's layers). */
  head: Uint8Array;
}

/** One import's staging area; call `close` in every case, and `rollback` on failure. */
export class ImportStage implements ArchiveHandlers {
  readonly #content: ContentStore;
  readonly #dir: string;
  readonly #what: string;
  readonly #entries = new Map<string, Staged>();
  readonly #added = new Set<Digest>();
  readonly #protect: (digest: Digest) => Promise<void>;
  #files = 0;

  private constructor(content: ContentStore, dir: string, what: string, protect: (digest: Digest) => Promise<void>) {
    this.#content = content;
    this.#dir = dir;
    this.#what = what;
    this.#protect = protect;
  }

  /**
   * A stage whose spill files live in the fresh directory `dir`; `protect` is called with each blob's digest
   * before the stage looks for it in the store or writes it (the import's lease, so GC leaves it alone).
   */
  static async create(content: ContentStore, dir: string, what: string, protect: (digest: Digest) => Promise<void> = async () => {}): Promise<ImportStage> {
    await mkdir(dir, { recursive: true });
    return new ImportStage(content, dir, what, protect);
  }

  async blob(path: string, digest: Digest, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    this.#entries.set(path, { kind: "blob", digest, size });
    await this.#protect(digest);
    const have = await this.#content.info(digest);
    if (have) {
      if (have.size !== size) throw errorOf("DataLoss", `${this.#what}: blob ${digest} is ${size} bytes in the archive but ${have.size} in the content store`);
      return; // verified when it was stored; the tar reader skips the unread body
    }
    const w = await this.#content.writer(`import-${digest}`, { digest, size });
    try {
      for await (const chunk of body) await w.write(chunk);
    } catch (e) {
      await w.abort();
      throw e;
    }
    // commit verifies the digest and size, and removes the ingest when they do not match
    await w.commit().catch((e: unknown) => {
      throw e instanceof TsctrError ? errorOf(e.kind, `${this.#what}: ${path}: ${e.message}`, e) : e;
    });
    this.#added.add(digest);
  }

  async file(path: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (path === "") throw errorOf("InvalidArgument", `${this.#what}: a file entry without a name`);
    if (size <= MAX_METADATA && (path.endsWith(".json") || METADATA_NAMES.has(path))) {
      const bytes = new Uint8Array(size);
      let off = 0;
      for await (const chunk of body) {
        bytes.set(chunk, off);
        off += chunk.byteLength;
      }
      this.#entries.set(path, { kind: "bytes", bytes });
      return;
    }
    const file = join(this.#dir, String(++this.#files));
    const hasher = await createHasher();
    const fh = await open(file, "w");
    try {
      for await (const chunk of body) {
        hasher.update(chunk);
        let done = 0;
        while (done < chunk.byteLength) done += (await fh.write(chunk, done, chunk.byteLength - done)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
    this.#entries.set(path, { kind: "file", file, digest: hasher.digest(), size });
  }

  link(path: string, target: string): void {
    this.#entries.set(path, { kind: "link", target });
  }

  /** True when the archive holds a file (or a link to one) at `path`. */
  has(path: string): boolean {
    return this.#entries.has(path);
  }

  /** The bytes of a small metadata file, or undefined when the archive has no such file. */
  metadata(path: string): Uint8Array | undefined {
    const e = this.#follow(path, path);
    return e?.kind === "bytes" ? e.bytes : undefined;
  }

  /**
   * Puts the file at archive path `path` into the content store (if it is not there yet) and returns its
   * digest and size. `from` names what referred to it, for the NotFound message of a missing file.
   */
  async store(path: string, from: string): Promise<StoredBlob> {
    const e = this.#follow(path, from);
    if (!e) throw errorOf("DataLoss", `${this.#what}: ${from} names "${printable(path)}", which is missing from the archive`);
    let stored: { digest: Digest; size: number };
    if (e.kind === "blob") {
      stored = e;
    } else if (e.kind === "bytes") {
      stored = await this.storeBytes(e.bytes);
    } else if (e.kind === "file") {
      stored = e;
      await this.#protect(e.digest);
      if (!(await this.#content.info(e.digest))) {
        const w = await this.#content.writer(`import-${e.digest}`, { digest: e.digest, size: e.size });
        try {
          for await (const chunk of Readable.toWeb(createReadStream(e.file, { highWaterMark: 1 << 20 })) as unknown as AsyncIterable<Uint8Array>) await w.write(chunk);
          await w.commit();
        } catch (err) {
          await w.abort();
          throw err;
        }
        this.#added.add(e.digest);
      }
      await rm(e.file, { force: true });
    } else {
      throw errorOf("Internal", `${this.#what}: unresolved link ${path}`);
    }
    return { ...stored, head: await this.#head(stored.digest) };
  }

  /** Puts bytes made during the import (a manifest for a Docker archive's image) into the content store. */
  async storeBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    const digest = await digestOf(bytes);
    await this.#protect(digest);
    const existed = await this.#content.info(digest);
    const stored = await this.#content.writeBytes(bytes, { digest, size: bytes.byteLength });
    if (!existed) this.#added.add(digest);
    return stored;
  }

  /** Checks that blob `digest` is in the store (from this archive or from before) with the size a descriptor gives. */
  async require(digest: Digest, size: number, from: string): Promise<void> {
    const info = await this.#content.info(digest);
    if (!info) throw errorOf("DataLoss", `${this.#what}: blob ${digest} (${from}) is missing from the archive`);
    if (info.size !== size) throw errorOf("DataLoss", `${this.#what}: blob ${digest} (${from}) is ${info.size} bytes, the descriptor says ${size}`);
  }

  /** Deletes every blob this import put into the content store. */
  async rollback(): Promise<void> {
    for (const d of this.#added) await this.#content.delete(d).catch(() => {});
    this.#added.clear();
  }

  /** Removes the staging directory. */
  async close(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
  }

  #follow(path: string, from: string): Staged | undefined {
    let e = this.#entries.get(path);
    for (let hops = 0; e?.kind === "link"; hops++) {
      if (hops >= MAX_LINK_HOPS) throw errorOf("InvalidArgument", `${this.#what}: ${from}: too many links at "${printable(path)}"`);
      e = this.#entries.get(e.target);
    }
    return e;
  }

  async #head(digest: Digest): Promise<Uint8Array> {
    const stream = await this.#content.readStream(digest);
    const reader = stream.getReader();
    try {
      const r = await reader.read();
      return r.done ? new Uint8Array(0) : r.value.slice(0, 8);
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
}
