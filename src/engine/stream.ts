/**
 * Web streams over the engine's synchronous decoders (gzip inflate, zstd), with back-pressure: input is read
 * only when the consumer asks for output, so memory stays bounded whatever the compression ratio.
 */
import { errorOf } from "../errdefs/mod.ts";

/** What the engine's decoders share: feed input, read output views, finish, close. */
export interface ViewDecoder {
  readonly done: boolean;
  feed(chunk: Uint8Array): number;
  read(): Uint8Array | null;
  finish(): void;
  close(): void;
}

/**
 * Feeds all of `chunk` to `dec`, handing each piece of output to `onOutput` (a view valid only during the
 * call). Throws Internal instead of spinning if a decoder with a full input buffer produces nothing.
 */
export function decodeChunk(dec: ViewDecoder, chunk: Uint8Array, onOutput: (view: Uint8Array) => void, what: string): void {
  let off = 0;
  for (;;) {
    const took = dec.feed(off === 0 ? chunk : chunk.subarray(off));
    off += took;
    let produced = false;
    for (let out = dec.read(); out !== null; out = dec.read()) {
      produced = true;
      onOutput(out);
    }
    if (off >= chunk.length) return;
    if (took === 0 && !produced) throw errorOf("Internal", `${what}: the engine made no progress`);
  }
}

/** Ends `dec`'s input and hands out the remaining output; the decoder throws DataLoss if the data is incomplete. */
export function decodeEnd(dec: ViewDecoder, onOutput: (view: Uint8Array) => void, what: string): void {
  dec.finish();
  for (let out = dec.read(); out !== null; out = dec.read()) onOutput(out);
  if (!dec.done) throw errorOf("Internal", `${what}: the engine stopped before the end of the stream`);
}

export interface DecoderStreamOptions {
  /**
   * Hand out views of engine memory instead of copies. A view is produced only when the consumer asks for
   * the next chunk (high-water mark 0) and stays valid until it reads again; no output byte is copied.
   */
  views?: boolean;
  /** Sees every output chunk first (e.g. a digest); may throw to fail the stream. */
  tap?: (chunk: Uint8Array) => void;
  /** Names the data in the error for a stream that ends before the decoder is done. */
  what?: string;
  /** The input's chunks are the decoder's alone: each one's memory is freed once the decoder has taken it. */
  ownsInput?: boolean;
}

/**
 * Frees the memory of `chunk` now (detaching its ArrayBuffer) where the chunk is a whole buffer of its own,
 * instead of when the garbage collector finds it: a pull's network buffers otherwise pile up by tens of MB.
 * The caller guarantees nothing else holds a view of it. Partial views and other buffers are left alone.
 */
export function freeChunk(chunk: Uint8Array): void {
  const buf = chunk.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buf.byteLength || chunk.byteLength < 4096 || typeof buf.transfer !== "function") return;
  try {
    buf.transfer(0);
  } catch {
    // not detachable (e.g. WebAssembly memory): the garbage collector frees it
  }
}

/**
 * Where a decoder reads its input: a web stream's reader, or anything that reads and cancels like one (a
 * stream's reader with its first chunk put back, say), which saves the per-chunk cost of another stream.
 */
export interface ChunkReader {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(reason?: unknown): Promise<void>;
}

/** The reader of `input`: a web stream's own reader, or `input` itself when it is a reader already. */
export function readerOf(input: ReadableStream<Uint8Array> | ChunkReader): ChunkReader {
  return input instanceof ReadableStream ? input.getReader() : input;
}

/**
 * Decodes `input` with the decoder `open` creates. Errors the stream with the decoder's DataLoss on corrupt
 * data, and with DataLoss when the input ends early; cancelling the output cancels the input.
 */
export function decoderStream(input: ReadableStream<Uint8Array> | ChunkReader, open: () => ViewDecoder, opts: DecoderStreamOptions = {}): ReadableStream<Uint8Array> {
  const reader = readerOf(input);
  let decoder: ViewDecoder | undefined;
  let pending: Uint8Array | undefined;
  /** The input chunk `pending` is a part of. */
  let fed: Uint8Array | undefined;
  let inputDone = false;
  const release = () => {
    decoder?.close();
    decoder = undefined;
  };
  return new ReadableStream<Uint8Array>(
    {
      start() {
        decoder = open();
      },
      async pull(controller) {
        const dec = decoder!;
        try {
          for (;;) {
            const out = dec.read();
            if (out !== null) {
              opts.tap?.(out);
              controller.enqueue(opts.views ? out : out.slice());
              return;
            }
            if (dec.done) {
              release();
              controller.close();
              return;
            }
            if (pending !== undefined) {
              const n = dec.feed(pending);
              if (n < pending.length) pending = pending.subarray(n);
              else {
                pending = undefined;
                // The decoder has copied all of it into engine memory.
                if (opts.ownsInput) freeChunk(fed!);
                fed = undefined;
              }
              continue;
            }
            if (inputDone) throw errorOf("DataLoss", `decompress ${opts.what ?? "stream"}: the compressed data ends early`);
            const r = await reader.read();
            if (r.done) {
              inputDone = true;
              dec.finish();
            } else if (r.value.length > 0) {
              pending = fed = r.value;
            }
          }
        } catch (e) {
          release();
          await reader.cancel(e).catch(() => {});
          throw e;
        }
      },
      async cancel(reason) {
        release();
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: opts.views ? 0 : 1 },
  );
}

/** A `{ writable, readable }` pair for `pipeThrough()` around a stream-to-stream function. */
export function asTransform(decode: (input: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  const pass = new TransformStream<Uint8Array, Uint8Array>();
  return { writable: pass.writable, readable: decode(pass.readable) };
}
