/**
 * Layer decompression: gzip, zstd (later) or plain tar, chosen by sniffing the first bytes.
 * This is the seam the WASM unpack engine replaces; callers only see web streams of tar bytes.
 */
import { createGunzip } from "node:zlib";
import { errorOf } from "../errdefs/mod.ts";

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
  return "none";
}

/**
 * Returns the uncompressed bytes of a layer blob. The compression is sniffed from the content (the
 * media type only names it in errors); gzip streams through node:zlib; zstd throws NotImplemented.
 * A corrupt gzip stream errors the returned stream with DataLoss.
 */
export async function decompress(blob: ReadableStream<Uint8Array>, opts: { mediaType?: string; what?: string } = {}): Promise<ReadableStream<Uint8Array>> {
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
  const first = head.length === 1 ? head[0]! : concat(head, have);
  const compression = sniffCompression(first);
  if (compression === "zstd") {
    await reader.cancel().catch(() => {});
    throw errorOf("NotImplemented", `decompress ${what}: zstd layers come with the unpack engine${opts.mediaType ? ` (${opts.mediaType})` : ""}`);
  }
  const replay = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (first.length > 0) controller.enqueue(first);
        if (ended) controller.close();
      },
      async pull(controller) {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return compression === "gzip" ? gunzip(replay, what) : replay;
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
 * Gunzips a web stream with node:zlib (available in Node and Deno), respecting back-pressure both ways:
 * input is read only while zlib accepts it, and zlib is paused while the output queue is full.
 * Concatenated gzip members are decoded as one stream, as Go's gzip reader does.
 */
function gunzip(input: ReadableStream<Uint8Array>, what: string): ReadableStream<Uint8Array> {
  const z = createGunzip({ chunkSize: 128 * 1024 });
  const reader = input.getReader();
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
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 1) <= 0) z.pause();
        });
        z.on("end", () => controller.close());
        z.on("error", (e: NodeJS.ErrnoException) => {
          failed = true;
          reader.cancel().catch(() => {});
          controller.error(e.code?.startsWith("Z_") ? errorOf("DataLoss", `decompress ${what}: gzip data is corrupt (${e.message})`, e) : e);
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
