/**
 * The body of one layer extraction, shared by the in-process path and the extraction workers: compressed
 * bytes → decompress (diffID hashed on the way) → tar → files in `dir`. Pure function of its inputs; the
 * snapshot around `dir` is the caller's.
 */
import { applyLayer, type ApplyStats } from "../archive/apply.ts";
import { decompress } from "../archive/decompress.ts";
import { readTar } from "../archive/tar_reader.ts";
import { createHasher, type Digest, type Hasher } from "../digest/mod.ts";
import { type Engine, privateEngine } from "../engine/mod.ts";
import { errorOf } from "../errdefs/mod.ts";

export interface ExtractTarget {
  /** The snapshot's upper directory. */
  dir: string;
  /** The layer blob's digest and media type (for errors and the compression hint). */
  digest: string;
  mediaType: string;
  /** Decompression-bomb ceilings; the defaults apply where absent. */
  limits?: Partial<LayerLimits>;
  /** The source's chunks belong to the extraction alone (freed as soon as they are decompressed). */
  ownsInput?: boolean;
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

/**
 * The uncompressed tar bytes of a compressed layer, refused with ResourceExhausted past the target's
 * decompression ceilings. With `views`, chunks are views of decoder memory valid until the next read (for a
 * consumer in this thread that uses each one at once); otherwise each chunk is its own ArrayBuffer, which can
 * be transferred to another thread. `tap` sees every chunk first.
 */
export async function decompressLayer(
  source: ReadableStream<Uint8Array>,
  target: ExtractTarget,
  opts: { views: boolean; tap?: (chunk: Uint8Array) => void; engine?: () => Engine },
): Promise<ReadableStream<Uint8Array>> {
  const what = `layer ${target.digest}`;
  const { maxBytes, maxRatio } = { ...DEFAULT_LIMITS, ...target.limits };
  let compressed = 0;
  let uncompressed = 0;
  const tap = (chunk: Uint8Array) => {
    uncompressed += chunk.byteLength;
    if (uncompressed > maxBytes) {
      throw errorOf("ResourceExhausted", `extract ${what}: it decompresses past ${maxBytes} bytes, the ceiling for one layer (--max-layer-size)`);
    }
    if (uncompressed > RATIO_FLOOR && uncompressed > compressed * maxRatio) {
      throw errorOf("ResourceExhausted", `extract ${what}: it decompresses more than ${maxRatio} times its compressed size, a decompression bomb (--max-layer-ratio)`);
    }
    opts.tap?.(chunk);
  };
  const onInput = (chunk: Uint8Array) => void (compressed += chunk.byteLength);
  return await decompress(source, { mediaType: target.mediaType, what, tap, onInput, views: opts.views, ownsInput: target.ownsInput, engine: opts.engine });
}

/**
 * Writes the tar stream `tar` into `target.dir` and returns its digest (the diffID; the caller compares it).
 * The caller feeds every chunk of `tar` to `hasher` as it is produced.
 */
export async function applyTar(tar: ReadableStream<Uint8Array>, target: ExtractTarget, hasher: Hasher): Promise<ExtractResult> {
  const stats = await applyLayer(readTar(tar, { what: `layer ${target.digest}` }), target.dir, { layer: target.digest });
  return { diffId: hasher.digest(), stats };
}

/** Engines of extractions in this thread that have ended, for the next ones. */
const spareEngines: Engine[] = [];

/**
 * Extracts `source` into `target.dir` in this thread and returns the uncompressed digest; the caller compares it.
 * Any number may run at once: each decodes in an engine instance of its own, so the views of decoder memory
 * its tar reader holds across an await are never detached by another layer's decoder growing its memory.
 */
export async function extractInto(source: ReadableStream<Uint8Array>, target: ExtractTarget): Promise<ExtractResult> {
  const hasher = await createHasher();
  // Taken only by a WASM decoder (zstd, or gzip with the WASM engine): node:zlib on the pool needs none.
  let engine: Engine | undefined;
  const engineOnce = () => (engine ??= spareEngines.pop() ?? privateEngine());
  try {
    // Views of decoder memory, hashed as they are produced and consumed by the tar reader before the next read.
    const tar = await decompressLayer(source, target, { views: true, tap: (c) => hasher.update(c), engine: engineOnce });
    return await applyTar(tar, target, hasher);
  } finally {
    if (engine) spareEngines.push(engine);
  }
}
