/**
 * gzip decompression on libuv's thread pool, through node:zlib's own binding, with no per-chunk allocation:
 * each layer inflates into two output buffers of its own, taking turns. While the consumer (the diffID hash,
 * the tar reader, the file writes) works on one buffer in this thread, a pool thread inflates the next
 * stretch into the other, so decompression runs beside the rest of the pipeline instead of in front of it.
 *
 * node:zlib's public streams do the same work on the pool, but allocate a fresh output Buffer per chunk and
 * pass every chunk through a Node stream and its events: on a devbench pull that cost the main thread more
 * than the inflate it moved away, and kept V8's helper threads busy collecting the buffers. The binding is
 * the one node:zlib itself drives (`process.binding("zlib")`, Node only); where it is missing, or does not
 * look as expected, `poolGunzipAvailable()` is false and callers use another engine.
 *
 * Semantics are node:zlib's gunzip: concatenated members decode as one stream, CRC-32 and ISIZE are checked
 * per member, zero padding after the last member is ignored.
 */
import process from "node:process";
import zlib from "node:zlib";
import { errorOf } from "../errdefs/mod.ts";
import { freeChunk, readerOf, type ChunkReader } from "../engine/stream.ts";
import { lowerPoolPriority } from "../platform/pool_priority.ts";

/** One output buffer's size: large enough that a pool hop per buffer costs little, small enough to stay in cache. */
const OUT_BYTES = 256 * 1024;
const IN_BYTES = 128 * 1024;

interface ZlibHandle {
  init(windowBits: number, level: number, memLevel: number, strategy: number, state: Uint32Array, done: () => void, dictionary?: Uint8Array): void;
  write(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  close(): void;
  onerror?: (message: string, errno: number, code?: string) => void;
}

type ZlibHandleClass = new (mode: number) => ZlibHandle;

let handleClass: ZlibHandleClass | null | undefined;
/** Whether the pool's threads were given their lower priority (see platform/pool_priority.ts). */
let poolLowered = false;

/** node:zlib's handle class, or null where this runtime does not expose it as Node 24 does. */
function zlibHandleClass(): ZlibHandleClass | null {
  if (handleClass !== undefined) return handleClass;
  handleClass = null;
  try {
    const binding = (process as unknown as { binding?: (name: string) => { Zlib?: unknown } }).binding?.("zlib");
    const Zlib = binding?.Zlib;
    if (typeof Zlib === "function" && typeof Zlib.prototype.init === "function" && typeof Zlib.prototype.write === "function") {
      handleClass = Zlib as ZlibHandleClass;
    }
  } catch {
    // no such binding here (Deno, a future Node): callers choose another engine
  }
  return handleClass;
}

/** Whether gzip can be inflated on the thread pool in this runtime. */
export function poolGunzipAvailable(): boolean {
  return zlibHandleClass() !== null;
}

export interface PoolGunzipOptions {
  /** Names the data in errors ("decompress layer sha256:…: …"). */
  what: string;
  /** Sees every output chunk first (a digest, decompression ceilings); may throw to fail the stream. */
  tap?: (chunk: Uint8Array) => void;
  /**
   * Hand out views of the output buffers (valid until the consumer reads again) instead of copies; with
   * views the stream holds no chunk of its own (high-water mark 0).
   */
  views?: boolean;
  /** Each input chunk is this decoder's alone: its memory is freed once it has been inflated. */
  ownsInput?: boolean;
  /** Frees an input chunk's memory (see `ownsInput`). */
  free?: (chunk: Uint8Array) => void;
}

/**
 * Gunzips `input` on the thread pool (see the module comment). Errors the stream with DataLoss on corrupt or
 * truncated data; cancelling it cancels the input and closes the inflater. Call only where
 * `poolGunzipAvailable()`.
 */
export function poolGunzip(input: ReadableStream<Uint8Array> | ChunkReader, opts: PoolGunzipOptions): ReadableStream<Uint8Array> {
  const Zlib = zlibHandleClass();
  if (Zlib === null) throw errorOf("FailedPrecondition", `decompress ${opts.what}: this runtime cannot inflate on its thread pool`);
  const reader = readerOf(input);
  const state = new Uint32Array(2); // [output space left, input left] after each write
  const outs = [new Uint8Array(OUT_BYTES), new Uint8Array(OUT_BYTES)];
  const staging = new Uint8Array(IN_BYTES);
  let turn = 0;
  let inChunk: Uint8Array = new Uint8Array(0);
  let inOff = 0;
  let inputDone = false;
  let closed = false;
  let finished = false;
  /** Settles the write in flight. */
  let settle: { resolve(): void; reject(e: Error): void } | undefined;
  /** The stretch being inflated into the buffer whose turn is next, started before the consumer asked for it. */
  let ahead: Promise<Uint8Array | null> | undefined;

  const handle = new Zlib(zlib.constants.GUNZIP);
  handle.onerror = (message, errno) => {
    const s = settle;
    settle = undefined;
    s?.reject(errorOf("DataLoss", `decompress ${opts.what}: gzip data is corrupt (${message}, zlib error ${errno})`));
  };
  // Seven arguments exactly, as node:zlib passes them (the binding asserts the count): no dictionary.
  handle.init(15, zlib.constants.Z_DEFAULT_COMPRESSION, 8, zlib.constants.Z_DEFAULT_STRATEGY, state, () => {
    const s = settle;
    settle = undefined;
    s?.resolve();
  }, undefined);

  const close = () => {
    if (closed) return;
    closed = true;
    // zlib defers the close while a write is in flight; its buffers stay referenced until then.
    handle.close();
  };

  const write = (flush: number, out: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
      handle.write(flush, inChunk, inOff, inChunk.length - inOff, out, 0, out.length);
      if (!poolLowered) {
        // The pool exists now (started by this write at the latest): its threads yield to the main thread.
        poolLowered = true;
        lowerPoolPriority();
      }
    });

  /** Inflates the next stretch into `out`: its bytes, or null at the end of the data. */
  const inflateInto = async (out: Uint8Array): Promise<Uint8Array | null> => {
    for (;;) {
      if (finished) return null;
      if (inOff >= inChunk.length && !inputDone) {
        const r = await reader.read();
        if (closed) return null;
        if (r.done) inputDone = true;
        else if (r.value.length <= IN_BYTES) {
          // Copied into this layer's own input buffer, so that the chunk can be freed now
          staging.set(r.value);
          inChunk = staging.subarray(0, r.value.length);
          inOff = 0;
          if (opts.ownsInput) opts.free?.(r.value);
        } else {
          inChunk = r.value;
          inOff = 0;
        }
        continue;
      }
      const inLen = inChunk.length - inOff;
      await write(inputDone ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH, out);
      if (closed) return null;
      const used = inLen - state[1]!;
      const produced = out.length - state[0]!;
      inOff += used;
      if (produced > 0) return out.subarray(0, produced);
      if (inputDone) {
        // Z_FINISH with nothing more to give: the data ended (a truncated member is an error from zlib itself).
        finished = true;
        return null;
      }
      if (used === 0 && inLen > 0) {
        // zlib takes no more input and gives no output: the last member has ended and what follows is padding.
        finished = true;
        return null;
      }
    }
  };

  const next = () => {
    const out = outs[turn]!;
    turn ^= 1;
    return inflateInto(out);
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const chunk = await (ahead ?? next());
          ahead = undefined;
          if (chunk === null) {
            close();
            // No write is in flight and the consumer is done with the last view: the buffers go back now, not
            // when the garbage collector gets to them (an image of many layers would otherwise pile them up).
            for (const b of [...outs, staging]) freeChunk(b);
            controller.close();
            return;
          }
          // The pool inflates the next stretch while the consumer works on this one (the other buffer).
          ahead = next();
          ahead.catch(() => {}); // its failure is reported at the next pull
          opts.tap?.(chunk);
          controller.enqueue(opts.views ? chunk : chunk.slice());
        } catch (e) {
          close();
          await reader.cancel(e).catch(() => {});
          throw e;
        }
      },
      async cancel(reason) {
        close();
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}
