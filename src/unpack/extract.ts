/**
 * The body of one layer extraction, shared by the in-process path and the extraction workers: compressed
 * bytes → decompress (diffID hashed on the way) → tar → files in `dir`. Pure function of its inputs; the
 * snapshot around `dir` is the caller's.
 */
import { applyLayer, type ApplyStats } from "../archive/apply.ts";
import { decompress } from "../archive/decompress.ts";
import { readTar } from "../archive/tar_reader.ts";
import { createHasher, type Digest } from "../digest/mod.ts";
import { errorOf } from "../errdefs/mod.ts";

export interface ExtractTarget {
  /** The snapshot's upper directory. */
  dir: string;
  /** The layer blob's digest and media type (for errors and the compression hint). */
  digest: string;
  mediaType: string;
  /** Decompression-bomb ceilings; the defaults apply where absent. */
  limits?: Partial<LayerLimits>;
}

/** How far a layer may decompress before it is refused as a decompression bomb. */
export interface LayerLimits {
  /** Uncompressed bytes of one layer at most. */
  maxBytes: number;
  /** Uncompressed bytes per compressed byte at most, checked once a layer is past 256 MiB uncompressed. */
  maxRatio: number;
}

/** 64 GiB, and a ratio just above gzip's own maximum (about 1032:1), so only other formats can trip it. */
export const DEFAULT_LIMITS: LayerLimits = { maxBytes: 64 * 2 ** 30, maxRatio: 1100 };
const RATIO_FLOOR = 256 * 2 ** 20;

export interface ExtractResult {
  diffId: Digest;
  stats: ApplyStats;
}

/** Extracts `source` into `target.dir` and returns the uncompressed digest; the caller compares it. */
export async function extractInto(source: ReadableStream<Uint8Array>, target: ExtractTarget): Promise<ExtractResult> {
  const what = `layer ${target.digest}`;
  const { maxBytes, maxRatio } = { ...DEFAULT_LIMITS, ...target.limits };
  const hasher = await createHasher();
  let compressed = 0;
  let uncompressed = 0;
  const counted = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        compressed += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
  const tap = (chunk: Uint8Array) => {
    uncompressed += chunk.byteLength;
    if (uncompressed > maxBytes) {
      throw errorOf("ResourceExhausted", `extract ${what}: it decompresses past ${maxBytes} bytes, the ceiling for one layer (--max-layer-size)`);
    }
    if (uncompressed > RATIO_FLOOR && uncompressed > compressed * maxRatio) {
      throw errorOf("ResourceExhausted", `extract ${what}: it decompresses more than ${maxRatio} times its compressed size, a decompression bomb (--max-layer-ratio)`);
    }
    hasher.update(chunk);
  };
  const tar = await decompress(counted, { mediaType: target.mediaType, what, tap });
  const stats = await applyLayer(readTar(tar, { what }), target.dir, { layer: target.digest });
  return { diffId: hasher.digest(), stats };
}
