/**
 * The body of one layer extraction, shared by the in-process path and the extraction workers: compressed
 * bytes → decompress (diffID hashed on the way) → tar → files in `dir`. Pure function of its inputs; the
 * snapshot around `dir` is the caller's.
 */
import { applyLayer, type ApplyStats } from "../archive/apply.ts";
import { decompress } from "../archive/decompress.ts";
import { readTar } from "../archive/tar_reader.ts";
import { createHasher, type Digest } from "../digest/mod.ts";

export interface ExtractTarget {
  /** The snapshot's upper directory. */
  dir: string;
  /** The layer blob's digest and media type (for errors and the compression hint). */
  digest: string;
  mediaType: string;
}

export interface ExtractResult {
  diffId: Digest;
  stats: ApplyStats;
}

/** Extracts `source` into `target.dir` and returns the uncompressed digest; the caller compares it. */
export async function extractInto(source: ReadableStream<Uint8Array>, target: ExtractTarget): Promise<ExtractResult> {
  const what = `layer ${target.digest}`;
  const hasher = await createHasher();
  const tar = await decompress(source, { mediaType: target.mediaType, what, tap: (chunk) => hasher.update(chunk) });
  const stats = await applyLayer(readTar(tar, { what }), target.dir, { layer: target.digest });
  return { diffId: hasher.digest(), stats };
}
