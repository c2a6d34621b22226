/**
 * A small pool of extraction workers (node:worker_threads), so the layers of an image are written by every
 * core at once: file creation costs kernel time per file, and one JS thread serialises it. The compressed
 * stream is transferred to the worker; the snapshot bookkeeping stays in the caller's thread.
 *
 * In the single executable the worker's code is embedded by build/ (globalThis.__TSCTR_EXTRACT_WORKER__);
 * from source it is loaded from worker_main.ts. Where workers are unavailable (Deno's worker_threads cannot
 * transfer streams) `ExtractWorkers.create` returns undefined and callers extract in-process.
 */
import os from "node:os";
import { Worker } from "node:worker_threads";
import { decompressEngine } from "../archive/decompress.ts";
import { digestEngine } from "../digest/mod.ts";
import { errorOf, type ErrorKind } from "../errdefs/mod.ts";
import { runtimeName } from "../platform/runtime.ts";
import type { ExtractResult, ExtractTarget } from "./extract.ts";

type Reply = { ok: true; result: ExtractResult } | { ok: false; kind: ErrorKind; message: string; code?: string };

interface Slot {
  worker: Worker;
  busy: boolean;
}

/** Extraction workers; `run` queues a job for the next free worker. */
export class ExtractWorkers {
  readonly #slots: Slot[] = [];
  readonly #waiting: Array<() => void> = [];
  readonly #size: number;

  private constructor(size: number) {
    this.#size = size;
  }

  /** A pool of up to `size` workers (default: one per core), or undefined for 0 or where workers cannot be used. */
  static create(size = os.availableParallelism()): ExtractWorkers | undefined {
    if (size < 1 || runtimeName() !== "node") return undefined;
    return new ExtractWorkers(size);
  }

  /** Extracts `source` into `target.dir` on a worker; rejects with the worker's error kind and message. */
  async run(source: ReadableStream<Uint8Array>, target: ExtractTarget): Promise<ExtractResult> {
    const slot = await this.#acquire();
    slot.worker.ref(); // the job keeps the process alive until the worker answers
    try {
      return await new Promise<ExtractResult>((resolve, reject) => {
        const onMessage = (reply: Reply) => {
          cleanup();
          if (reply.ok) resolve(reply.result);
          else reject(errorOf(reply.kind, reply.message, reply.code === undefined ? undefined : { code: reply.code }));
        };
        const onError = (err: Error) => {
          cleanup();
          slot.worker = spawnWorker(); // a worker that threw is gone; replace it
          reject(errorOf("Internal", `extract layer ${target.digest}: the extraction worker failed: ${err.message}`));
        };
        const cleanup = () => {
          slot.worker.off("message", onMessage);
          slot.worker.off("error", onError);
        };
        slot.worker.on("message", onMessage);
        slot.worker.on("error", onError);
        const job = { target, source, digestEngine: digestEngine(), decompressEngine: decompressEngine() };
        slot.worker.postMessage(job, [source as never]);
      });
    } finally {
      slot.worker.unref();
      this.#release(slot);
    }
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
  }

  async #acquire(): Promise<Slot> {
    for (;;) {
      const free = this.#slots.find((s) => !s.busy);
      if (free) {
        free.busy = true;
        return free;
      }
      if (this.#slots.length < this.#size) {
        const slot = { worker: spawnWorker(), busy: true };
        this.#slots.push(slot);
        return slot;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #release(slot: Slot): void {
    slot.busy = false;
    this.#waiting.shift()?.();
  }
}

function spawnWorker(): Worker {
  const embedded = (globalThis as { __TSCTR_EXTRACT_WORKER__?: string }).__TSCTR_EXTRACT_WORKER__;
  // Small heaps: a worker streams bytes through and keeps little; V8's defaults would let each grow by tens of MB.
  const resourceLimits = { maxYoungGenerationSizeMb: 6, maxOldGenerationSizeMb: 96 };
  const worker = embedded !== undefined
    ? new Worker(embedded, { eval: true, resourceLimits })
    : new Worker(new URL("./worker_main.ts", import.meta.url), { resourceLimits });
  worker.unref();
  return worker;
}
