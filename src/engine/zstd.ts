/**
 * Zstandard decompression on the WebAssembly engine (wasm/zstd.c): RFC 8878 frames back to back, skippable
 * frames skipped, content checksums (XXH64) and declared content sizes checked, no dictionaries. Node 24 has
 * a native zstd (zlib.createZstdDecompress) and Deno 2 has none, so this decoder is what makes `+zstd` layers
 * work on every runtime; on Node it is selectable. Every malformed stream is a DataLoss error.
 *
 * Memory is bounded by the window: a decoder holds about 400 KiB plus 1.5× the largest frame window it has
 * met (at least 1 MiB), and refuses windows above `maxWindowLog` (default 2^25 = 32 MiB; `zstd --long` and
 * `--ultra -22` write 2^27, which need `maxWindowLog: 27`, as the zstd CLI needs `--memory` beyond that).
 *
 * Two levels, as for gzip (./inflate.ts):
 * - `ZstdDecoder`: synchronous and zero-copy. Input is copied once into engine memory; output comes back as
 *   views of engine memory, valid until the next call into the engine. For fused pipelines (hash, untar).
 * - `zstdDecompressStream()` / `createZstdDecompress()`: web streams with back-pressure; each output chunk
 *   is a copy.
 */
import { errorOf } from "../errdefs/mod.ts";
import { asTransform, decodeChunk, decodeEnd, decoderStream } from "./stream.ts";
import { type Engine, type EngineVariant, loadEngine } from "./wasm.ts";

const NEED_INPUT = 1;
const OUTPUT_FULL = 2;
const DONE = 3;

/** The engine's zstd exports (wasm/zstd.c). */
interface ZstdExports {
  zstd_new(maxWindowLog: number): number;
  zstd_free(st: number): void;
  zstd_in_ptr(st: number): number;
  zstd_in_space(st: number): number;
  zstd_in_commit(st: number, n: number): void;
  zstd_in_left(st: number): number;
  zstd_finish(st: number): void;
  zstd_step(st: number): number;
  zstd_out_ptr(st: number): number;
  zstd_out_len(st: number): number;
  zstd_frame(st: number): number;
  zstd_window(st: number): number;
}

/** What each negative engine status means; "{f}" is the frame number, "{w}" the frame's window size. */
const ERRORS: Record<number, string> = {
  [-1]: "unexpected end of data in frame {f}",
  [-2]: "not zstd data: frame {f} does not start with the zstd magic number",
  [-3]: "reserved bits set in frame {f}",
  [-4]: "dictionaries not supported (frame {f} names one)",
  [-5]: "window too large in frame {f} ({w} bytes, the limit is {max})",
  [-6]: "reserved block type in frame {f}",
  [-7]: "block larger than the frame allows in frame {f}",
  [-8]: "corrupt literals section in frame {f}",
  [-9]: "corrupt Huffman table or stream in frame {f}",
  [-10]: "corrupt sequences section in frame {f}",
  [-11]: "corrupt FSE table in frame {f}",
  [-12]: "match offset out of range in frame {f}",
  [-13]: "bad content checksum in frame {f}",
  [-14]: "content size does not match the frame header in frame {f}",
  [-15]: "out of memory for the window of frame {f}",
  [-16]: "unexpected end of data: no zstd frame",
};

const DEFAULT_MAX_WINDOW_LOG = 25;

/** Frees the engine memory of decoders that were dropped without close(). */
const finalizer = new FinalizationRegistry<{ x: ZstdExports; st: number }>(({ x, st }) => x.zstd_free(st));

/** Options for the WASM zstd decoder. */
export interface ZstdOptions {
  /** Names the data in error messages, e.g. "layer sha256:…" (the message then reads "zstd layer …: …"). */
  what?: string;
  /** Which engine build to use (default: SIMD when the runtime supports it). */
  variant?: EngineVariant;
  /** The engine instance to run in (default: the shared one of `variant`; see privateEngine()). */
  engine?: Engine;
  /** Largest frame window accepted, as a power of two (10-30; default 25, 32 MiB). Larger is DataLoss. */
  maxWindowLog?: number;
}

/**
 * A synchronous zstd decoder on the WASM engine.
 *
 * Protocol: `feed()` input (it takes as much as fits), then `read()` until it returns null; repeat; after the
 * last input call `finish()` and `read()` until null, then `done` is true. A view returned by `read()` stays
 * valid only until the next call on any engine object. `close()` frees the engine memory.
 *
 * @example
 * ```ts
 * import zlib from "node:zlib";
 * const z = new ZstdDecoder();
 * const parts: Uint8Array[] = [];
 * z.write(zlib.zstdCompressSync("hello"), (v) => parts.push(v.slice()));
 * z.end((v) => parts.push(v.slice()));
 * z.close();
 * // Buffer.concat(parts).toString() === "hello"
 * ```
 */
export class ZstdDecoder {
  readonly #engine: Engine;
  readonly #x: ZstdExports;
  readonly #what: string;
  readonly #maxWindowLog: number;
  readonly #token = {};
  #st: number;
  #fed = 0;
  #done = false;

  constructor(opts: ZstdOptions = {}) {
    this.#engine = opts.engine ?? loadEngine(opts.variant);
    this.#x = this.#engine.exports as unknown as ZstdExports;
    this.#what = opts.what ? `zstd ${opts.what}` : "zstd";
    const log = opts.maxWindowLog ?? DEFAULT_MAX_WINDOW_LOG;
    if (!Number.isInteger(log) || log < 10 || log > 30) throw errorOf("InvalidArgument", `${this.#what}: maxWindowLog must be an integer from 10 to 30, not ${log}`);
    this.#maxWindowLog = log;
    this.#st = this.#x.zstd_new(log);
    if (this.#st === 0) throw errorOf("ResourceExhausted", `${this.#what}: the WebAssembly engine is out of memory`);
    finalizer.register(this, { x: this.#x, st: this.#st }, this.#token);
  }

  /** True once the stream ended cleanly (after finish() and the last read()). */
  get done(): boolean {
    return this.#done;
  }

  /** Compressed bytes consumed so far. */
  get bytesIn(): number {
    return this.#st === 0 ? this.#fed : this.#fed - this.#x.zstd_in_left(this.#st);
  }

  /** Copies as much of `chunk` as the engine's input buffer holds; returns how many bytes it took (0 when full). */
  feed(chunk: Uint8Array): number {
    const st = this.#live();
    const ptr = this.#x.zstd_in_ptr(st);
    const n = Math.min(this.#x.zstd_in_space(st), chunk.length);
    if (n > 0) {
      this.#engine.heap().set(n === chunk.length ? chunk : chunk.subarray(0, n), ptr);
      this.#x.zstd_in_commit(st, n);
      this.#fed += n;
    }
    return n;
  }

  /** Declares the end of the input: a stream cut short now fails with DataLoss at the next read(). */
  finish(): void {
    this.#x.zstd_finish(this.#live());
  }

  /**
   * Decodes what the input allows and returns the next output as a view of engine memory, or null when more
   * input is needed (or, after finish(), when the stream has ended). Throws DataLoss for a corrupt stream.
   */
  read(): Uint8Array | null {
    const st = this.#live();
    const x = this.#x;
    for (;;) {
      const r = x.zstd_step(st);
      if (r < 0) throw this.#error(r);
      if (r === DONE) this.#done = true;
      else if (r !== NEED_INPUT && r !== OUTPUT_FULL) throw errorOf("Internal", `${this.#what}: the engine returned status ${r}`);
      const len = x.zstd_out_len(st);
      if (len > 0) {
        const ptr = x.zstd_out_ptr(st);
        return this.#engine.heap().subarray(ptr, ptr + len);
      }
      if (r !== OUTPUT_FULL) return null;
    }
  }

  /** Feeds all of `chunk`, handing each piece of output to `onOutput` (a view valid only during the call). */
  write(chunk: Uint8Array, onOutput: (view: Uint8Array) => void): void {
    decodeChunk(this, chunk, onOutput, this.#what);
  }

  /** Ends the input and hands out the remaining output; throws DataLoss if the stream is incomplete. */
  end(onOutput: (view: Uint8Array) => void): void {
    decodeEnd(this, onOutput, this.#what);
  }

  /** Frees the engine memory; further calls throw. Safe to call twice. */
  close(): void {
    if (this.#st === 0) return;
    finalizer.unregister(this.#token);
    this.#x.zstd_free(this.#st);
    this.#st = 0;
  }

  #live(): number {
    if (this.#st === 0) throw errorOf("FailedPrecondition", `${this.#what}: the decoder is closed`);
    return this.#st;
  }

  #error(status: number): Error {
    const detail = (ERRORS[status] ?? `engine error ${status} in frame {f}`)
      .replace("{f}", String(this.#x.zstd_frame(this.#st)))
      .replace("{w}", String(this.#x.zstd_window(this.#st)))
      .replace("{max}", String(2 ** this.#maxWindowLog));
    return errorOf("DataLoss", `${this.#what}: ${detail} (compressed byte ${this.bytesIn})`);
  }
}

/**
 * Decompresses a zstd web stream on the WASM engine, with back-pressure (see decoderStream). Each output chunk
 * is a copy. Errors the stream with DataLoss on corrupt data; cancelling it cancels the input.
 */
export function zstdDecompressStream(input: ReadableStream<Uint8Array>, opts: ZstdOptions = {}): ReadableStream<Uint8Array> {
  return decoderStream(input, () => new ZstdDecoder(opts), { what: opts.what });
}

/**
 * A zstd decompression transform for `pipeThrough()`: write zstd bytes to `writable`, read the data from
 * `readable`. Back-pressure runs end to end (see zstdDecompressStream); corrupt data errors both sides.
 */
export function createZstdDecompress(opts: ZstdOptions = {}): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  return asTransform((input) => zstdDecompressStream(input, opts));
}
