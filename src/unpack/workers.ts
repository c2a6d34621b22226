/**
 * A small pool of extraction workers (node:worker_threads) that splits each layer's work between two threads:
 * the caller's thread decompresses (WASM inflate or zstd, CRC, decompression ceilings) while a worker hashes
 * the tar bytes (the diffID), parses them and writes the files. The uncompressed bytes cross over a byte
 * channel (byte_channel.ts) with a window per layer, so both threads run ahead independently, and a worker
 * takes several layers at once: the image's layers all move together instead of one after another.
 * The snapshot bookkeeping stays in the caller's thread.
 *
 * In the single executable the worker's code is embedded by build/ (globalThis.__TSCTR_EXTRACT_WORKER__);
 * from source it is loaded from worker_main.ts. On Deno `ExtractWorkers.create` returns undefined and callers
 * extract in-process.
 */
import os from "node:os";
import { MessageChannel, Worker } from "node:worker_threads";
import { channelSender } from "./byte_channel.ts";
import { digestEngine } from "../digest/mod.ts";
import { errorOf, type ErrorKind } from "../errdefs/mod.ts";
import { runtimeName } from "../platform/runtime.ts";
import { decompressLayer, type ExtractResult, type ExtractTarget } from "./extract.ts";
import type { ExtractJob, JobReply } from "./worker_main.ts";

interface Pending {
  resolve(r: ExtractResult): void;
  reject(e: unknown): void;
  what: string;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Pending>;
}

/** A pool that uses every core: the caller's thread decompresses, so one worker per remaining core (at least one). */
export function defaultWorkerCount(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

/** Extraction workers; `run` gives a layer to the worker with the fewest layers in hand. */
export class ExtractWorkers {
  readonly #slots: Slot[] = [];
  readonly #size: number;
  #nextId = 1;

  private constructor(size: number) {
    this.#size = size;
  }

  /** A pool of up to `size` workers, or undefined for 0 or where workers cannot be used. */
  static create(size = defaultWorkerCount()): ExtractWorkers | undefined {
    if (size < 1 || runtimeName() !== "node") return undefined;
    return new ExtractWorkers(size);
  }

  /**
   * Extracts the compressed layer `source` into `target.dir`: decompressed in this thread (with the layer's
   * ceilings), hashed, parsed and written on a worker. Rejects with the first error: a decompression error
   * as thrown here, a worker's with its kind and message.
   */
  async run(source: ReadableStream<Uint8Array>, target: ExtractTarget): Promise<ExtractResult> {
    const channel = new MessageChannel();
    const sender = channelSender(channel.port1);
    let tar: ReadableStream<Uint8Array>;
    try {
      // The decoder's output views are copied into the channel as they are produced (the tap), so they never
      // outlive a call into the engine; reading `tar` only paces the decoder.
      tar = await decompressLayer(source, target, { views: true, tap: (c) => sender.take(c) });
    } catch (e) {
      await sender.stop();
      throw e;
    }
    const slot = this.#pick();
    const id = this.#nextId++;
    if (slot.jobs.size === 0) slot.worker.ref(); // a job keeps the process alive until the worker answers
    try {
      return await new Promise<ExtractResult>((resolve, reject) => {
        slot.jobs.set(id, {
          resolve,
          // A failed decompression (corrupt data, a bomb) fails the worker's read: the original error says more.
          reject: (e) => reject(sender.error ?? e),
          what: `extract layer ${target.digest}`,
        });
        const job: ExtractJob = { id, target, port: channel.port2, digestEngine: digestEngine() };
        slot.worker.postMessage(job, [channel.port2]);
        void sender.drive(tar);
      });
    } finally {
      slot.jobs.delete(id);
      if (slot.jobs.size === 0) slot.worker.unref();
      // The worker has answered: whatever it did not read is not needed (its error, if any, is the answer).
      await sender.stop();
    }
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
  }

  #pick(): Slot {
    if (this.#slots.length < this.#size && this.#slots.every((s) => s.jobs.size > 0)) {
      const slot: Slot = { worker: spawnWorker(), jobs: new Map() };
      this.#listen(slot);
      this.#slots.push(slot);
      return slot;
    }
    return this.#slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  #listen(slot: Slot): void {
    slot.worker.on("message", (reply: JobReply) => {
      const job = slot.jobs.get(reply.id);
      if (!job) return;
      if (reply.ok) job.resolve(reply.result);
      else job.reject(errorOf(reply.kind as ErrorKind, reply.message, reply.code === undefined ? undefined : { code: reply.code }));
    });
    slot.worker.on("error", (err: Error) => {
      // A worker that threw is gone: its layers fail, and a new worker takes its place.
      for (const job of slot.jobs.values()) job.reject(errorOf("Internal", `${job.what}: the extraction worker failed: ${err.message}`));
      slot.jobs.clear();
      slot.worker = spawnWorker();
      this.#listen(slot);
    });
  }
}

function spawnWorker(): Worker {
  const embedded = (globalThis as { __TSCTR_EXTRACT_WORKER__?: string }).__TSCTR_EXTRACT_WORKER__;
  // Small heaps: a worker streams bytes through and keeps little; V8's defaults would let each grow by tens of MB.
  const resourceLimits = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 64 };
  const worker = embedded !== undefined
    ? new Worker(embedded, { eval: true, resourceLimits })
    : new Worker(new URL("./worker_main.ts", import.meta.url), { resourceLimits });
  worker.unref();
  return worker;
}
