/**
 * The pull pipeline for an image's layers: each layer streams registry → (compressed digest and size
 * check, and the content store unless blobs are discarded) → decompress → diffID check → files in a
 * staging snapshot, while it downloads; up to `concurrency` layers at once, since overlay layers are
 * independent directories. Snapshots are committed in layer order, each only after both of its digests
 * matched; a failure anywhere cancels the other transfers and removes every staging snapshot. A transfer
 * that breaks resumes from the byte it reached (registry/resumable.ts); one that gives up, or is killed,
 * leaves its partial blob in the content store's ingest area, and the next pull reads it back (re-hashing
 * it) into the extractor before fetching only the missing bytes. Nothing unverified becomes visible.
 */
import type { ContentStore, ContentWriter } from "../content/mod.ts";
import { createHasher, type Digest } from "../digest/mod.ts";
import { errorOf, isDiskFull, isKind } from "../errdefs/mod.ts";
import type { Descriptor } from "../images/types.ts";
import { resumableBlob, type RegistryClient, type Reference, type RetryPolicy } from "../registry/mod.ts";
import type { Snapshotter } from "../snapshots/types.ts";
import { commitLayer, extractLayer } from "../unpack/unpacker.ts";
import type { ExtractWorkers } from "../unpack/workers.ts";
import type { LayerLimits } from "../unpack/extract.ts";
import { layerInput } from "./layer_input.ts";
import type { PullEvent } from "./pull.ts";

export interface LayerPipelineOptions {
  registry: RegistryClient;
  ref: Reference;
  content: ContentStore;
  snapshotter: Snapshotter;
  layers: Descriptor[];
  diffIds: Digest[];
  chain: Digest[];
  /** Keep no compressed copy: every byte is written once, as files (export/push then need a re-pull). */
  discardBlobs: boolean;
  concurrency: number;
  /** Decompression-bomb ceilings per layer. */
  limits?: Partial<LayerLimits>;
  /**
   * Extraction worker threads (default 0: every layer is extracted in this thread, which keeps a pull's peak
   * RSS near 100 MB; each worker costs ~25 MB and takes the hashing, parsing and file writes of big layers).
   */
  workers?: number;
  retry?: Partial<RetryPolicy>;
  emit: (e: PullEvent) => void;
  /** Coordination with other tsctr processes on the same store (locks and the pull's lease). */
  guard?: LayerGuard;
}

/**
 * Locks that make concurrent pulls share work: a layer's snapshot is locked (and leased) from the moment
 * its existence is checked until it is committed; its blob is locked while it is fetched or read.
 */
export interface LayerGuard {
  lockLayer(chainId: Digest): Promise<() => Promise<void>>;
  withBlob<T>(digest: Digest, fn: () => Promise<T>): Promise<T>;
}

/** A sink for a layer's compressed bytes that verifies digest and size when the layer ends. */
interface BlobSink {
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /** Keeps what was written for a later pull to resume from (nothing to keep with --discard-blobs). */
  suspend(): Promise<void>;
}

/**
 * Layers smaller than this (compressed) are extracted in this thread even where workers exist: starting a
 * worker costs about 0.1 s of CPU, more than such a layer takes (busybox's 1 MB layer: a 0.45 s pull → 0.3 s).
 */
const SMALL_LAYER = 4 * 2 ** 20;

/**
 * The layers' indexes in two queues, each with download slots of its own: small layers (< SMALL_LAYER) and
 * the others, in manifest order. A small layer holds a slot for moments; queued behind big ones it would
 * start last and hold up the end (devbench: its 431-byte top layer began only when a 52 MB layer was done),
 * and ahead of them it would delay the big ones, which take the longest.
 */
function layerQueues(layers: readonly Descriptor[]): { small: number[]; big: number[] } {
  const indexes = layers.map((_, i) => i);
  return { small: indexes.filter((i) => layers[i]!.size < SMALL_LAYER), big: indexes.filter((i) => layers[i]!.size >= SMALL_LAYER) };
}

/** The workers to extract `layer` on, or undefined to extract it in this thread. */
function onWorker(layer: Descriptor, workers: ExtractWorkers | undefined): ExtractWorkers | undefined {
  return layer.size >= SMALL_LAYER ? workers : undefined;
}

/** Fetches, verifies, extracts and commits every layer not yet unpacked; resolves when all are committed. */
export async function pullLayers(o: LayerPipelineOptions): Promise<void> {
  const size = Math.min(o.concurrency, o.layers.length, o.workers ?? 0);
  // Loaded only when asked for: worker_threads and the pool cost every other pull start-up time.
  const workers = size > 0 ? (await import("../unpack/workers.ts")).ExtractWorkers.create(size) : undefined;
  try {
    await pullLayersWith(o, workers);
  } finally {
    await workers?.close();
  }
}

async function pullLayersWith(o: LayerPipelineOptions, workers: ExtractWorkers | undefined): Promise<void> {
  const abort = new AbortController();
  const fail = (e: unknown) => {
    if (!abort.signal.aborted) abort.abort(e);
  };
  // committed[i] settles as layer i's commit does; it exists before the layer starts, since small layers
  // start beside big ones (layerQueues) and each waits for the one below it.
  const committed = o.layers.map(() => settleLater());
  /**
   * Fetches and extracts layer `i`, then commits it once the layer below is committed. `extracted` settles
   * when the download and extraction are over, freeing the slot for the next layer: a layer waiting for the
   * ones below it holds no transfer. Its data is flushed meanwhile, so the commit has little left to sync.
   */
  const runLayer = (i: number): { extracted: Promise<void>; done: Promise<void> } => {
    let freeSlot!: () => void;
    const extracted = new Promise<void>((resolve) => (freeSlot = resolve));
    const done = (async () => {
      const release = await o.guard?.lockLayer(o.chain[i]!).catch((e: unknown) => {
        freeSlot();
        throw e;
      });
      try {
        let key: string | undefined;
        try {
          const fetch = () => fetchAndExtract(o, i, abort.signal, workers);
          key = await (o.guard ? o.guard.withBlob(o.layers[i]!.digest, fetch) : fetch());
        } catch (e) {
          fail(e);
          throw e;
        } finally {
          freeSlot();
        }
        const flushing = key === undefined ? undefined : o.snapshotter.flush(key).then(() => undefined, (e: unknown) => e ?? new Error("flush failed"));
        try {
          if (i > 0) await committed[i - 1]!.promise;
          const flushError = await flushing;
          if (flushError !== undefined) throw flushError;
        } catch (e) {
          // A layer below failed (a full disk, say), or this one could not be flushed: it is never committed.
          await flushing;
          if (key !== undefined) await o.snapshotter.remove(key).catch(() => {});
          throw e;
        }
        if (key !== undefined) {
          await commitLayer(o.snapshotter, key, o.chain[i]!, o.chain[i - 1], true);
          o.emit({ type: "unpack", digest: o.layers[i]!.digest, status: "done" });
        }
      } finally {
        await release?.();
      }
    })();
    return { extracted, done };
  };
  // Each layer's outcome, settled without rejecting (a rejection waiting here would be unhandled).
  const outcomes: Array<Promise<{ failed: unknown } | undefined>> = [];
  const slot = async (queue: number[]) => {
    while (!abort.signal.aborted && queue.length > 0) {
      const i = queue.shift()!;
      const { extracted, done } = runLayer(i);
      committed[i]!.settle(done);
      outcomes.push(done.then(() => undefined, (e: unknown) => (fail(e), { failed: e })));
      await extracted;
    }
  };
  const slots = (queue: number[]) => Array.from({ length: Math.min(Math.max(1, o.concurrency), queue.length) }, () => slot(queue));
  const { small, big } = layerQueues(o.layers);
  await Promise.all([...slots(small), ...slots(big)]);
  // Layers still queued were never started (the pull failed first): they release the ones above them that
  // wait for their commit.
  for (const i of [...small, ...big]) committed[i]!.settle(Promise.reject(abort.signal.reason));
  const settled = await Promise.all(outcomes);
  // Every layer has settled: no transfer, extraction or commit is still writing.
  if (abort.signal.aborted) throw abort.signal.reason;
  for (const r of settled) if (r) throw r.failed;
}

/** A promise that takes on the outcome of one given later; a rejection nobody awaits is not reported. */
function settleLater(): { promise: Promise<void>; settle(outcome: Promise<void>): void } {
  let settle!: (outcome: Promise<void>) => void;
  const promise = new Promise<void>((resolve) => (settle = resolve));
  promise.catch(() => {});
  return { promise, settle };
}

/** Returns the staging snapshot key of a freshly extracted layer, or undefined when it was unpacked already. */
async function fetchAndExtract(o: LayerPipelineOptions, i: number, signal: AbortSignal, workers: ExtractWorkers | undefined): Promise<string | undefined> {
  const layer = o.layers[i]!;
  const base = { type: "blob", digest: layer.digest, mediaType: layer.mediaType, size: layer.size } as const;
  if (await o.snapshotter.stat(o.chain[i]!)) {
    o.emit({ type: "unpack", digest: layer.digest, status: "exists" });
    // Unpacked, but the compressed copy is gone (pulled with --discard-blobs, or removed by a repair):
    // fetch it again so the image can be exported and pushed.
    if (!o.discardBlobs && !(await o.content.info(layer.digest))) await fetchBlobOnly(o, layer, signal);
    return undefined;
  }
  if (await o.content.info(layer.digest)) {
    o.emit({ ...base, status: "exists", offset: layer.size });
    o.emit({ type: "unpack", digest: layer.digest, status: "extracting" });
    const { key } = await extractLayer(o.snapshotter, await o.content.readStream(layer.digest), layer, o.diffIds[i]!, o.ref.toString(), { workers: onWorker(layer, workers), limits: o.limits });
    return key;
  }
  const writer = o.discardBlobs ? undefined : await o.content.writer(`pull-${layer.digest}`, { digest: layer.digest, size: layer.size }, { resume: true });
  const sink: BlobSink = writer ? storeSink(writer) : await verifyingSink(layer);
  const kept = sink.offset;
  // The stream's own error: an extraction worker sees only a structured clone of it, without its kind.
  let sourceError: unknown;
  try {
    if (kept > 0) o.emit({ type: "resume", digest: layer.digest, offset: kept, size: layer.size });
    const network = resumableBlob(o.registry, o.ref, layer, {
      offset: kept,
      policy: o.retry,
      signal,
      onRetry: (r) => o.emit({ type: "retry", digest: layer.digest, reason: r.reason, delayMs: r.delayMs, offset: r.offset, size: layer.size }),
    });
    o.emit({ type: "unpack", digest: layer.digest, status: "extracting" });
    let lastEmit = 0;
    const write = async (chunk: Uint8Array) => {
      await sink.write(chunk);
      const t = Date.now();
      if (t - lastEmit > 100) {
        lastEmit = t;
        o.emit({ ...base, status: "downloading", offset: sink.offset });
      }
    };
    // The kept bytes (hashed again as they are read back) and then the network's: one stream for the extractor.
    // Nothing holds the network's (or the replay's) buffers once the sink has them: the decoder frees each as
    // soon as it has taken it, instead of leaving tens of MB for the garbage collector.
    const body = layerInput({ kept: writer && kept > 0 ? writer.replay() : undefined, network }, { write, signal, onError: (e) => (sourceError ??= e) });
    const { key } = await extractLayer(o.snapshotter, body, layer, o.diffIds[i]!, o.ref.toString(), { workers: onWorker(layer, workers), limits: o.limits, ownsInput: true });
    try {
      await sink.commit();
    } catch (e) {
      await o.snapshotter.remove(key).catch(() => {});
      throw e;
    }
    o.emit({ ...base, status: "done", offset: layer.size });
    return key;
  } catch (thrown) {
    const e = sourceError ?? thrown;
    // Bytes stopped by the network or by another layer's failure are a good prefix: keep them for the next
    // pull. Anything else (a digest or size mismatch, corrupt data) makes them suspect: discard them; and a
    // full disk anywhere frees them, so the store is as before.
    const diskFull = isDiskFull(e) || (signal.aborted && isDiskFull(signal.reason));
    const keep = !diskFull && !isKind(e, "DataLoss") && (isKind(e, "Unavailable") || signal.aborted);
    await (keep ? sink.suspend() : sink.abort()).catch(() => {});
    throw signal.aborted ? signal.reason : e;
  }
}

/**
 * Downloads a layer blob into the content store without extracting it, resuming like the main path: a
 * partial ingest left by an earlier pull is re-hashed and continued, and a broken transfer continues from
 * the byte it reached.
 */
async function fetchBlobOnly(o: LayerPipelineOptions, layer: Descriptor, signal: AbortSignal): Promise<void> {
  const base = { type: "blob", digest: layer.digest, mediaType: layer.mediaType, size: layer.size } as const;
  const w = await o.content.writer(`pull-${layer.digest}`, { digest: layer.digest, size: layer.size }, { resume: true });
  const kept = w.offset;
  try {
    if (kept > 0) {
      o.emit({ type: "resume", digest: layer.digest, offset: kept, size: layer.size });
      for await (const _ of w.replay()) {
        // the kept bytes are hashed again as they are read back
      }
    }
    const network = resumableBlob(o.registry, o.ref, layer, {
      offset: kept,
      policy: o.retry,
      signal,
      onRetry: (r) => o.emit({ type: "retry", digest: layer.digest, reason: r.reason, delayMs: r.delayMs, offset: r.offset, size: layer.size }),
    });
    for await (const chunk of network) await w.write(chunk);
    await w.commit();
    o.emit({ ...base, status: "done", offset: layer.size });
  } catch (e) {
    // As in fetchAndExtract: a prefix stopped by the network is kept for the next pull, anything else dropped.
    const keep = !isDiskFull(e) && !isKind(e, "DataLoss") && (isKind(e, "Unavailable") || signal.aborted);
    await (keep ? w.suspend() : w.abort()).catch(() => {});
    throw signal.aborted ? signal.reason : e;
  }
}

function storeSink(w: ContentWriter): BlobSink {
  return {
    get offset() {
      return w.offset;
    },
    write: (c) => w.write(c),
    commit: async () => void (await w.commit()),
    abort: () => w.abort(),
    suspend: () => w.suspend(),
  };
}

/** Hashes and counts without storing (--discard-blobs). */
async function verifyingSink(layer: Descriptor): Promise<BlobSink> {
  const hasher = await createHasher();
  let offset = 0;
  return {
    get offset() {
      return offset;
    },
    async write(chunk) {
      if (offset + chunk.byteLength > layer.size) throw errorOf("DataLoss", `layer ${layer.digest}: more than the expected ${layer.size} bytes`);
      hasher.update(chunk);
      offset += chunk.byteLength;
    },
    async commit() {
      if (offset !== layer.size) throw errorOf("DataLoss", `layer ${layer.digest}: got ${offset} bytes, expected ${layer.size}`);
      const got = hasher.digest();
      if (got !== layer.digest) throw errorOf("DataLoss", `layer ${layer.digest}: data has digest ${got}`);
    },
    async abort() {},
    async suspend() {},
  };
}
