/**
 * One uninterrupted stream of a blob over an unreliable network: when a transfer breaks (connection reset,
 * premature end, no data for `stallMs`, a 429 or 5xx answer) it waits (backoff with full jitter, or the
 * server's Retry-After) and continues with `Range: bytes=N-` from the byte it reached. The reader sees the
 * bytes once each, in order, as if nothing happened; after `attempts` failures in a row (or `maxFailures`
 * in all) the stream errors with one Unavailable line naming the blob, the registry and the last failure.
 *
 *   const body = resumableBlob(client, ref, layer, { offset: bytesAlreadyHere });
 */
import { errorOf } from "../errdefs/mod.ts";
import type { Descriptor } from "../images/types.ts";
import type { RegistryClient } from "./client.ts";
import type { Reference } from "./reference.ts";
import { backoffDelay, DEFAULT_RETRY, isRetryable, retryAfterOf, sleep, type RetryPolicy } from "./retry.ts";

/** Reported before each wait: the failure, which attempt failed, how long until the next, and the byte reached. */
export interface RetryEvent {
  reason: string;
  failures: number;
  delayMs: number;
  offset: number;
}

export interface ResumableOptions {
  /** The first byte to fetch (bytes before it are already here). */
  offset?: number;
  policy?: Partial<RetryPolicy>;
  /** Aborting it ends the stream (and any wait) with the signal's reason. */
  signal?: AbortSignal;
  onRetry?: (e: RetryEvent) => void;
}

/**
 * Streams bytes [offset, desc.size) of blob `desc` from the repository of `ref`, resuming broken transfers.
 * Guarantees: every byte is delivered once, in order; the stream closes after exactly desc.size - offset
 * bytes; final failures (NotFound, Unauthorized, DataLoss) pass through unchanged on the first occurrence.
 */
export function resumableBlob(client: RegistryClient, ref: Reference, desc: Descriptor, opts: ResumableOptions = {}): ReadableStream<Uint8Array> {
  const policy = { ...DEFAULT_RETRY, ...opts.policy };
  const what = `blob ${desc.digest} of ${ref.name}`;
  let offset = opts.offset ?? 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let inARow = 0;
  let total = 0;
  let progressed = false;
  let cancelled = false;

  const dropReader = () => {
    reader?.cancel().catch(() => {});
    reader = undefined;
  };

  // The stall watchdog: one timer for the whole stream (not one per chunk), armed while a read waits. When a
  // read has waited stallMs it cancels the reader, which ends that read, and `stalled` says why.
  let waitingSince: number | undefined;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let stalled: Error | undefined;
  const watch = () => {
    watchdog = undefined;
    if (waitingSince === undefined) return;
    const left = waitingSince + policy.stallMs - performance.now();
    if (left > 0) {
      arm(left);
      return;
    }
    stalled = errorOf("Unavailable", `${what}: registry ${ref.apiHost} sent no data for ${policy.stallMs / 1000} s`);
    dropReader();
  };
  /** A timer alone never keeps the process alive: a pending read has its socket for that. */
  const arm = (ms: number) => {
    watchdog = setTimeout(watch, ms);
    (watchdog as { unref?: () => void }).unref?.();
  };
  const stopWatching = () => {
    waitingSince = undefined;
    if (watchdog !== undefined) clearTimeout(watchdog);
    watchdog = undefined;
  };

  /** Reads one chunk, or fails with Unavailable when nothing arrives for stallMs. */
  const readWithin = async (r: ReadableStreamDefaultReader<Uint8Array>): Promise<ReadableStreamReadResult<Uint8Array>> => {
    waitingSince = performance.now();
    stalled = undefined;
    if (watchdog === undefined) arm(policy.stallMs);
    try {
      const got = await r.read();
      if (stalled === undefined) return got;
    } catch (e) {
      if (stalled === undefined) throw e;
    } finally {
      waitingSince = undefined;
    }
    // The watchdog cancelled the reader: the read ended (or failed) because nothing came.
    throw stalled;
  };

  /** Counts a failure; throws the final error when the budget is spent, else waits before the next attempt. */
  const failed = async (e: unknown) => {
    dropReader();
    if (!isRetryable(e)) throw e;
    inARow = progressed ? 1 : inARow + 1;
    progressed = false;
    total++;
    const reason = (e as Error).message;
    if (inARow >= policy.attempts || total >= policy.maxFailures) {
      throw errorOf("Unavailable", `${what}: gave up after ${total} failed attempts at byte ${offset} of ${desc.size}: ${reason}`, e);
    }
    const delayMs = backoffDelay(policy, inARow, retryAfterOf(e));
    opts.onRetry?.({ reason, failures: total, delayMs, offset });
    await sleep(delayMs, opts.signal);
  };

  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        for (;;) {
          if (offset >= desc.size) {
            stopWatching();
            dropReader();
            ctrl.close();
            return;
          }
          opts.signal?.throwIfAborted();
          try {
            if (reader === undefined) {
              reader = (await client.fetchBlob(ref, desc, { offset })).getReader();
              // Cancelled while the request was on its way: its answer closes the connection at once.
              if (cancelled) return dropReader();
            }
            const r = await readWithin(reader);
            if (cancelled) return;
            if (r.done) throw errorOf("Unavailable", `${what}: registry ${ref.apiHost} ended the transfer at byte ${offset} of ${desc.size}`);
            offset += r.value.byteLength;
            progressed = true;
            ctrl.enqueue(r.value);
            return;
          } catch (e) {
            await failed(e);
          }
        }
      } catch (e) {
        stopWatching();
        if (!cancelled) ctrl.error(e);
      }
    },
    cancel() {
      cancelled = true;
      stopWatching();
      dropReader();
    },
  });
}
