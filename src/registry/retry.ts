/**
 * When and how long to wait before trying a transfer again: exponential backoff with full jitter (a random
 * delay between 0 and base·2^n, capped), `Retry-After` from 429/503 answers (seconds or an HTTP-date), and
 * which failures are worth another attempt at all.
 */
import { TsctrError } from "../errdefs/mod.ts";

export interface RetryPolicy {
  /** Failed attempts in a row (no byte received in between) before giving up. */
  attempts: number;
  /** Failed attempts in all, progress or not, before giving up (a server that sends one byte per connection). */
  maxFailures: number;
  /** The backoff window after the first failure; it doubles with each failure in a row. */
  baseDelayMs: number;
  /** No single wait is longer than this, Retry-After included. */
  maxDelayMs: number;
  /** A body that delivers no byte for this long is treated as a broken connection. */
  stallMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, maxFailures: 50, baseDelayMs: 250, maxDelayMs: 30_000, stallMs: 30_000 };

/**
 * The wait before the next attempt after `failures` failures in a row (1 for the first): full jitter, a
 * uniform random delay in [0, min(maxDelayMs, baseDelayMs·2^(failures-1))). A server's Retry-After, when
 * given, replaces it (capped at maxDelayMs).
 */
export function backoffDelay(policy: RetryPolicy, failures: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(policy.maxDelayMs, Math.max(0, retryAfterMs));
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.floor(Math.random() * window);
}

/**
 * Milliseconds a `Retry-After` header value asks to wait: delta-seconds ("120") or an HTTP-date ("Wed, 21
 * Oct 2015 07:28:00 GMT", relative to `now`). Undefined for a missing or unreadable value.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Retry-After carried by an error (see withRetryAfter). */
const retryAfters = new WeakMap<Error, number>();

/** Attaches a Retry-After wait (ms) to `err` for the retry loop; returns `err`. */
export function withRetryAfter<E extends Error>(err: E, ms: number | undefined): E {
  if (ms !== undefined) retryAfters.set(err, ms);
  return err;
}

/** The Retry-After wait attached to `err`, if any. */
export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof Error ? retryAfters.get(err) : undefined;
}

/**
 * True when another attempt may succeed: the connection failed or broke, the registry answered 429 or 5xx,
 * or the body ended early (all Unavailable). A wrong digest, a body longer than the blob, a refusal or a
 * missing blob are final.
 */
export function isRetryable(err: unknown): boolean {
  return err instanceof TsctrError && err.kind === "Unavailable";
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
