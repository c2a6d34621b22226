/**
 * gzip decompression on the WebAssembly engine (wasm/inflate.c): RFC 1952 members of RFC 1951 data, any
 * number of members back to back, CRC-32 and length checked per member, zero padding after the last member
 * ignored (as Node's zlib does). Every malformed stream is a DataLoss error naming what is wrong.
 *
 * Two levels:
 * - `WasmInflater`: synchronous and zero-copy. Input is copied once into engine memory; output comes back as
 *   views of engine memory, valid until the next call into the engine. For fused pipelines (hash, untar).
 * - `gunzipStream()` / `createGunzip()`: web streams with back-pressure; each output chunk is a copy.
 */
import zlib from "node:zlib";
import { errorOf } from "../errdefs/mod.ts";
import { asTransform, decodeChunk, decodeEnd, decoderStream } from "./stream.ts";
import { type Engine, type EngineExports, type EngineVariant, loadEngine } from "./wasm.ts";

const NEED_INPUT = 1;
const OUTPUT_FULL = 2;
const DONE = 3;
const MEMBER_END = 4;

/**
 * The runtime's CRC-32 (node:zlib's, in Node and Deno: table-free with carry-less multiplication where the CPU
 * has it, about 1.7× the engine's slicing-by-8 here), if it has one.
 */
const nativeCrc32: ((data: Uint8Array, value?: number) => number) | undefined = typeof zlib.crc32 === "function" ? zlib.crc32 : undefined;

/** What each negative engine status means; "{m}" is the member number. */
const ERRORS: Record<number, string> = {
  [-1]: "unexpected end of data in member {m}",
  [-2]: "not gzip data: member {m} does not start with the gzip magic bytes",
  [-3]: "unknown compression method in member {m}",
  [-4]: "reserved header flags set in member {m}",
  [-5]: "bad header CRC in member {m}",
  [-6]: "invalid block type in member {m}",
  [-7]: "stored block length does not match its complement in member {m}",
  [-8]: "too many length or distance codes in member {m}",
  [-9]: "invalid code lengths code in member {m}",
  [-10]: "invalid code length repeat in member {m}",
  [-11]: "missing end-of-block code in member {m}",
  [-12]: "invalid literal/length code lengths in member {m}",
  [-13]: "invalid distance code lengths in member {m}",
  [-14]: "invalid literal/length code in member {m}",
  [-15]: "invalid distance code in member {m}",
  [-16]: "distance too far back in member {m}",
  [-17]: "bad CRC in member {m}",
  [-18]: "bad length (ISIZE) in member {m}",
  [-19]: "trailing garbage after member {m}",
};

/** Frees the engine memory of inflaters that were dropped without close(). */
const finalizer = new FinalizationRegistry<{ x: EngineExports; st: number }>(({ x, st }) => x.inf_free(st));

/** Options for the WASM gunzip. */
export interface GunzipOptions {
  /** Names the data in error messages, e.g. "layer sha256:…" (the message then reads "gunzip layer …: …"). */
  what?: string;
  /** Which engine build to use (default: SIMD when the runtime supports it). */
  variant?: EngineVariant;
  /** The engine instance to run in (default: the shared one of `variant`; see privateEngine()). */
  engine?: Engine;
  /** Who computes the CRC-32 of each member: the runtime's native CRC (default where it exists) or the engine. */
  crc?: "native" | "wasm";
}

/**
 * A synchronous gzip decoder on the WASM engine.
 *
 * Protocol: `feed()` input (it takes as much as fits), then `read()` until it returns null; repeat; after the
 * last input call `finish()` and `read()` until null, then `done` is true. A view returned by `read()` stays
 * valid only until the next call on any engine object. `close()` frees the engine memory (about 460 KiB).
 */
export class WasmInflater {
  readonly #engine: Engine;
  readonly #x: EngineExports;
  readonly #what: string;
  readonly #token = {};
  readonly #crc32: ((data: Uint8Array, value?: number) => number) | undefined;
  #st: number;
  #fed = 0;
  #done = false;
  #crc = 0;
  #failure: Error | undefined;

  constructor(opts: GunzipOptions = {}) {
    this.#engine = opts.engine ?? loadEngine(opts.variant);
    this.#x = this.#engine.exports;
    this.#what = opts.what ? `gunzip ${opts.what}` : "gunzip";
    this.#st = this.#x.inf_new();
    if (this.#st === 0) throw errorOf("ResourceExhausted", `${this.#what}: the WebAssembly engine is out of memory`);
    finalizer.register(this, { x: this.#x, st: this.#st }, this.#token);
    this.#crc32 = opts.crc === "wasm" ? undefined : nativeCrc32;
    if (this.#crc32 !== undefined) this.#x.inf_set_ext_crc(this.#st, 1);
  }

  /** True once the stream ended cleanly (after finish() and the last read()). */
  get done(): boolean {
    return this.#done;
  }

  /** Compressed bytes consumed so far. */
  get bytesIn(): number {
    return this.#st === 0 ? this.#fed : this.#fed - this.#x.inf_in_left(this.#st);
  }

  /** Copies as much of `chunk` as the engine's input buffer holds; returns how many bytes it took (0 when full). */
  feed(chunk: Uint8Array): number {
    const st = this.#live();
    const ptr = this.#x.inf_in_ptr(st);
    const n = Math.min(this.#x.inf_in_space(st), chunk.length);
    if (n > 0) {
      this.#engine.heap().set(n === chunk.length ? chunk : chunk.subarray(0, n), ptr);
      this.#x.inf_in_commit(st, n);
      this.#fed += n;
    }
    return n;
  }

  /** Declares the end of the input: a stream cut short now fails with DataLoss at the next read(). */
  finish(): void {
    this.#x.inf_finish(this.#live());
  }

  /**
   * Decodes what the input allows and returns the next output as a view of engine memory, or null when more
   * input is needed (or, after finish(), when the stream has ended). Throws DataLoss for a corrupt stream.
   */
  read(): Uint8Array | null {
    const st = this.#live();
    const x = this.#x;
    if (this.#failure) throw this.#failure;
    for (;;) {
      const r = x.inf_step(st);
      if (r < 0) throw this.#error(r);
      const len = x.inf_out_len(st);
      let view: Uint8Array | null = null;
      if (len > 0) {
        const ptr = x.inf_out_ptr(st);
        view = this.#engine.heap().subarray(ptr, ptr + len);
        if (this.#crc32) this.#crc = this.#crc32(view, this.#crc);
      }
      if (r === MEMBER_END) {
        if (this.#crc !== x.inf_trailer_crc(st) >>> 0) {
          this.#failure = this.#error(-17);
          throw this.#failure;
        }
        this.#crc = 0;
      } else if (r === DONE) {
        this.#done = true;
      } else if (r !== NEED_INPUT && r !== OUTPUT_FULL) {
        throw errorOf("Internal", `${this.#what}: the engine returned status ${r}`);
      }
      if (view !== null) return view;
      if (r === NEED_INPUT || r === DONE) return null;
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
    this.#x.inf_free(this.#st);
    this.#st = 0;
  }

  #live(): number {
    if (this.#st === 0) throw errorOf("FailedPrecondition", `${this.#what}: the inflater is closed`);
    return this.#st;
  }

  #error(status: number): Error {
    const member = this.#x.inf_member(this.#st);
    const detail = (ERRORS[status] ?? `engine error ${status} in member {m}`).replace("{m}", String(member));
    return errorOf("DataLoss", `${this.#what}: ${detail} (compressed byte ${this.bytesIn})`);
  }
}

/**
 * Gunzips a web stream on the WASM engine, with back-pressure (see decoderStream). Each output chunk is a
 * copy (up to 256 KiB). Errors the stream with DataLoss on corrupt data; cancelling it cancels the input.
 */
export function gunzipStream(input: ReadableStream<Uint8Array>, opts: GunzipOptions = {}): ReadableStream<Uint8Array> {
  return decoderStream(input, () => new WasmInflater(opts), { what: opts.what });
}

/**
 * A gunzip transform for `pipeThrough()`: write gzip bytes to `writable`, read the data from `readable`.
 * Back-pressure runs end to end (see gunzipStream); a corrupt stream errors both sides with DataLoss.
 */
export function createGunzip(opts: GunzipOptions = {}): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  return asTransform((input) => gunzipStream(input, opts));
}
