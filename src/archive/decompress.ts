/**
 * Layer decompression: gzip, zstd or plain tar, chosen by sniffing the first bytes. gzip has two engines,
 * chosen per process: "native" (node:zlib on the thread pool, the default on Node: see pool_gunzip.ts) and
 * "wasm" (the WebAssembly engine in src/engine, in this thread; the default on Deno); zstd always uses the
 * WebAssembly engine. Callers only see web streams of tar bytes.
 */
import zlib from "node:zlib";
import type { Transform } from "node:stream";
import { decompressEngine } from "../platform/engines.ts";
import { errorOf } from "../errdefs/mod.ts";
import { WasmInflater } from "../engine/inflate.ts";
import { ZstdDecoder } from "../engine/zstd.ts";
import { decoderStream, freeChunk, type ChunkReader } from "../engine/stream.ts";
import { poolGunzip, poolGunzipAvailable } from "./pool_gunzip.ts";
import type { Engine } from "../engine/wasm.ts";

export { decompressEngine, setDecompressEngine, type DecompressEngine } from "../platform/engines.ts";

export type Compression = "gzip" | "zstd" | "none";

/** The compression a layer media type declares ("none" for plain tar or an unknown suffix). */
export function compressionOfMediaType(mediaType: string): Compression {
  if (/[+.]gzip$/.test(mediaType)) return "gzip";
  if (/[+.]zstd$/.test(mediaType)) return "zstd";
  return "none";
}

/** The compression that the magic bytes at the start of a blob show. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  // a zstd skippable frame (0x184D2A50–5F, little-endian) may come first
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return "zstd";
  return "none";
}

/**
 * Returns the uncompressed bytes of a layer blob. The compression is sniffed from the content (the
 * media type only names it in errors). A corrupt stream errors the returned stream with DataLoss.
 * `onInput` sees every compressed chunk as the decoder takes it (a count for the decompression ceilings).
 */
export async function decompress(
  blob: ReadableStream<Uint8Array>,
  opts: {
    mediaType?: string;
    what?: string;
    tap?: (chunk: Uint8Array) => void;
    onInput?: (chunk: Uint8Array) => void;
    views?: boolean;
    ownsInput?: boolean;
    engine?: () => Engine;
  } = {},
): Promise<ReadableStream<Uint8Array>> {
  const what = opts.what ?? "layer";
  const reader = blob.getReader();
  // Peek at the first bytes (normally one chunk) and put them back in front of the rest.
  const head: Uint8Array[] = [];
  let have = 0;
  let ended = false;
  while (have < 4) {
    const r = await reader.read();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    have += r.value.length;
  }
  const compression = sniffCompression(head.length === 1 ? head[0]! : concat(head, have));
  const input = replayReader(reader, head, ended, opts.onInput);
  const tap = opts.tap;
  // By default the WASM decoders hand out views of engine memory, valid until the next read: the tar reader
  // copies headers and writes file data at once, and the tap (the diffID) hashes each view as it is produced.
  // With `views: false` every chunk is a copy in its own ArrayBuffer (for a consumer in another thread).
  const views = opts.views ?? true;
  if (compression === "gzip") {
    if (decompressEngine() === "wasm") {
      return decoderStream(input, () => new WasmInflater({ what, engine: opts.engine?.() }), { views, tap, what, ownsInput: opts.ownsInput });
    }
    // node:zlib's own streams only where its binding is missing (they cost the main thread a buffer per chunk)
    return poolGunzipAvailable()
      ? poolGunzip(input, { what, tap, views, ownsInput: opts.ownsInput, free: freeChunk })
      : viaZlib(zlib.createGunzip({ chunkSize: 128 * 1024 }), input, what, "gzip", tap);
  }
  // zstd always on the WASM engine: 1.3–1.8× node:zlib's decoder here, which Deno lacks and which (Node 24.21)
  // stops at the first skippable frame.
  if (compression === "zstd") return decoderStream(input, () => new ZstdDecoder({ what, engine: opts.engine?.() }), { views, tap, what, ownsInput: opts.ownsInput });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await input.read();
        if (r.done) return controller.close();
        tap?.(r.value);
        controller.enqueue(r.value);
      },
      cancel: (reason) => input.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

/**
 * `reader` with the chunks peeked from it (`head`) put back in front, each chunk shown to `onInput` as it is
 * read. A reader, not another web stream: a stream costs the main thread per chunk, and this one is on every
 * byte of a pull.
 */
function replayReader(reader: ReadableStreamDefaultReader<Uint8Array>, head: Uint8Array[], ended: boolean, onInput?: (chunk: Uint8Array) => void): ChunkReader {
  const count = (r: ReadableStreamReadResult<Uint8Array>) => {
    if (!r.done) onInput!(r.value);
    return r;
  };
  return {
    read() {
      const value = head.shift();
      if (value !== undefined) {
        onInput?.(value);
        return Promise.resolve({ done: false, value });
      }
      if (ended) return Promise.resolve({ done: true, value: undefined });
      return onInput ? reader.read().then(count) : reader.read();
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Decompresses a web stream with a node:zlib transform, respecting back-pressure both ways:
 * input is read only while zlib accepts it, and zlib is paused while the output queue is full.
 * Concatenated gzip members are decoded as one stream, as Go's gzip reader does.
 */
function viaZlib(z: Transform, reader: ChunkReader, what: string, format: string, tap?: (chunk: Uint8Array) => void): ReadableStream<Uint8Array> {
  let failed = false;
  const pump = async () => {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        if (!z.write(r.value)) await new Promise<void>((resolve) => z.once("drain", resolve));
        if (failed) return;
      }
      z.end();
    } catch (e) {
      z.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        z.on("data", (chunk: Uint8Array) => {
          if (failed) return;
          try {
            tap?.(chunk);
          } catch (e) {
            // the tap refused the data (e.g. a decompression ceiling): stop everything
            failed = true;
            reader.cancel(e).catch(() => {});
            z.destroy();
            controller.error(e);
            return;
          }
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 1) <= 0) z.pause();
        });
        z.on("end", () => controller.close());
        z.on("error", (e: NodeJS.ErrnoException) => {
          failed = true;
          reader.cancel().catch(() => {});
          controller.error(e.code?.startsWith("Z_") ? errorOf("DataLoss", `decompress ${what}: ${format} data is corrupt (${e.message})`, e) : e);
        });
        z.pause();
        void pump();
      },
      pull() {
        z.resume();
      },
      cancel(reason) {
        failed = true;
        reader.cancel(reason).catch(() => {});
        z.destroy();
      },
    },
    { highWaterMark: 4 },
  );
}
