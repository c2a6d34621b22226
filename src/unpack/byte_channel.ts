/**
 * Moves a byte stream from one thread to another over a MessagePort, with a credit window instead of the
 * one-chunk-in-flight hand-off of a transferred web stream (which left both threads waiting on each other's
 * event loop for every chunk). The sender copies the bytes it is given into batch buffers of `batchBytes`
 * and transfers each full one; the receiver hands a buffer back (transferred again) once its consumer asks
 * for the next, so a channel allocates its few buffers once and never more than `windowBytes` are in flight.
 *
 *   sender                                  receiver
 *   { t: "data", buf, n }  ────────────▶
 *   { t: "end" } | { t: "error", message } ▶
 *                       ◀───────────────  { t: "back", buf } | { t: "cancel" }
 */
import type { MessagePort } from "node:worker_threads";

type ToReceiver = { t: "data"; buf: ArrayBuffer; n: number } | { t: "end" } | { t: "error"; message: string };
type ToSender = { t: "back"; buf: ArrayBuffer } | { t: "cancel" };

export interface ChannelLimits {
  /** Bytes in buffers sent and not yet handed back, at most. */
  windowBytes: number;
  /** The size of one buffer. */
  batchBytes: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = { windowBytes: 512 * 2 ** 10, batchBytes: 128 * 2 ** 10 };

/** The sending end of a byte channel. */
export interface ChannelSender {
  /**
   * Copies `chunk` into the channel at once (so it may be a view that is invalid right after the call).
   * Call it only while `drive` is reading, from the source's own producer: the window is kept by not reading.
   */
  take(chunk: Uint8Array): void;
  /**
   * Reads `paced` (whose chunks were already given to `take`) while the window has room, then ends the
   * channel; a source error is forwarded as an error the receiving stream raises. Never rejects.
   */
  drive(paced: ReadableStream<unknown>): Promise<void>;
  /** The source's error, if it failed (the receiver sees only its message). */
  readonly error: unknown;
  /** How many buffers this sender has allocated (they are reused once handed back). */
  readonly buffers: number;
  /** Stops sending and cancels the source if it is not finished (the receiver's job is over). */
  stop(reason?: unknown): Promise<void>;
}

/** The sending end of a channel over `port`; `port` is closed when the stream ends, fails or is stopped. */
export function channelSender(port: MessagePort, limits: ChannelLimits = DEFAULT_CHANNEL_LIMITS): ChannelSender {
  const free: ArrayBuffer[] = [];
  let out = 0; // buffers sent and not handed back
  let batch: Uint8Array | undefined;
  let filled = 0;
  let stopped = false;
  let sourceError: unknown;
  let allocated = 0;
  let reader: ReadableStreamDefaultReader<unknown> | undefined;
  let driving: Promise<void> = Promise.resolve();
  let wake: (() => void) | undefined;
  const resume = () => {
    wake?.();
    wake = undefined;
  };
  port.on("message", (m: ToSender) => {
    if (m.t === "back") {
      out--;
      free.push(m.buf);
    } else {
      stopped = true;
    }
    resume();
  });
  const post = (m: ToReceiver, transfer: ArrayBuffer[] = []) => {
    if (!stopped) port.postMessage(m, transfer);
  };
  const flush = () => {
    if (batch === undefined || filled === 0) return;
    const buf = batch.buffer as ArrayBuffer;
    post({ t: "data", buf, n: filled }, [buf]);
    out++;
    batch = undefined;
    filled = 0;
  };
  const maxOut = Math.max(1, Math.floor(limits.windowBytes / limits.batchBytes));
  return {
    take(chunk) {
      for (let off = 0; off < chunk.length; ) {
        if (batch === undefined) {
          let buf = free.pop();
          if (buf === undefined) {
            buf = new ArrayBuffer(limits.batchBytes);
            allocated++;
          }
          batch = new Uint8Array(buf);
        }
        const n = Math.min(batch.length - filled, chunk.length - off);
        batch.set(n === chunk.length ? chunk : chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === batch.length) flush();
      }
    },
    drive(paced) {
      reader = paced.getReader();
      const r = reader;
      driving = (async () => {
        try {
          for (;;) {
            while (out >= maxOut && !stopped) await new Promise<void>((w) => (wake = w));
            if (stopped) break;
            if ((await r.read()).done) {
              flush();
              post({ t: "end" });
              return;
            }
          }
          await r.cancel().catch(() => {});
        } catch (e) {
          sourceError ??= e;
          post({ t: "error", message: e instanceof Error ? e.message : String(e) });
        } finally {
          port.close();
        }
      })();
      return driving;
    },
    get error() {
      return sourceError;
    },
    get buffers() {
      return allocated;
    },
    async stop(reason?: unknown) {
      if (!stopped) {
        stopped = true;
        resume();
        await reader?.cancel(reason).catch(() => {});
      }
      await driving;
      port.close();
    },
  };
}

/**
 * The receiving end: the bytes sent through the other end of the channel, as a web stream whose chunks stay
 * valid until the consumer reads again (the buffer then goes back to the sender). `tap` sees each chunk first.
 */
export function receiveStream(port: MessagePort, tap?: (chunk: Uint8Array) => void): ReadableStream<Uint8Array> {
  const queue: ToReceiver[] = [];
  let lent: ArrayBuffer | undefined;
  let wake: (() => void) | undefined;
  port.on("message", (m: ToReceiver) => {
    queue.push(m);
    wake?.();
    wake = undefined;
  });
  const giveBack = () => {
    if (lent !== undefined) port.postMessage({ t: "back", buf: lent } satisfies ToSender, [lent]);
    lent = undefined;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        giveBack(); // the consumer asks for more: it is done with the previous chunk
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const m = queue.shift()!;
        if (m.t === "data") {
          lent = m.buf;
          const chunk = new Uint8Array(m.buf, 0, m.n);
          tap?.(chunk);
          controller.enqueue(chunk);
        } else if (m.t === "end") {
          controller.close();
          port.close();
        } else {
          controller.error(new Error(m.message));
          port.close();
        }
      },
      cancel() {
        port.postMessage({ t: "cancel" } satisfies ToSender);
        port.close();
      },
    },
    { highWaterMark: 0 },
  );
}
