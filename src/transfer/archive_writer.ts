/**
 * Writes a tar archive entry by entry with tar-stream: small files from bytes, blobs from streams with their
 * size known up front. Back-pressure reaches the blob streams, so an archive of any size is written with a
 * few chunks in memory.
 */
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import tarStream, { type PackHeader } from "tar-stream";
import { errorOf } from "../errdefs/mod.ts";

const MTIME = new Date(0);

/** One archive being written; read it from `output`. */
export class ArchiveWriter {
  readonly #pack = tarStream.pack();

  /** The archive's bytes; pipe it to a file or stdout while entries are added. */
  get output(): Readable {
    return this.#pack;
  }

  /** Adds a directory entry (`name` ends without a slash). */
  async addDir(name: string): Promise<void> {
    const { sink, done } = this.#open({ name: `${name}/`, type: "directory", mode: 0o755, mtime: MTIME });
    sink.end();
    await done;
  }

  /** Adds a small file. */
  async addBytes(name: string, bytes: Uint8Array): Promise<void> {
    const { sink, done } = this.#open({ name, size: bytes.byteLength, mode: 0o644, mtime: MTIME });
    sink.end(bytes);
    await done;
  }

  /** Adds a file of exactly `size` bytes read from `body`; a body of another length fails the archive. */
  async addStream(name: string, size: number, body: ReadableStream<Uint8Array>): Promise<void> {
    const { sink, done } = this.#open({ name, size, mode: 0o644, mtime: MTIME });
    let written = 0;
    try {
      for await (const chunk of body) {
        written += chunk.byteLength;
        if (written > size) throw errorOf("DataLoss", `write archive entry ${name}: more than the expected ${size} bytes`);
        if (!sink.write(chunk)) await Promise.race([once(sink, "drain"), done]);
      }
      if (written !== size) throw errorOf("DataLoss", `write archive entry ${name}: got ${written} bytes, expected ${size}`);
    } catch (e) {
      sink.destroy(e as Error);
      this.#pack.destroy(e as Error);
      throw e;
    }
    sink.end();
    await done;
  }

  /** Writes the end-of-archive marker; the output ends once it has been read. */
  finish(): void {
    this.#pack.finalize();
  }

  /** Stops writing: the output errors with `reason`. */
  abort(reason: Error): void {
    this.#pack.destroy(reason);
  }

  /** Opens an entry; `done` settles when tar-stream has taken all of it (or failed). */
  #open(header: PackHeader): { sink: Writable; done: Promise<void> } {
    let settle!: (err?: Error | null) => void;
    const done = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    done.catch(() => {}); // awaited by the caller; this only keeps an early failure from going unhandled
    const sink = this.#pack.entry(header, (err) => settle(err));
    return { sink, done };
  }
}
