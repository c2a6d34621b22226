/**
 * The byte channel between the decompressing thread and an extraction worker (src/unpack/byte_channel.ts),
 * over a real MessageChannel: every byte arrives in order, at most the window is in flight, buffers come back
 * and are reused, source errors and cancellation cross over.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { MessageChannel } from "node:worker_threads";
import { channelSender, receiveStream, type ChannelLimits } from "../../src/unpack/byte_channel.ts";

const SMALL: ChannelLimits = { windowBytes: 4096, batchBytes: 1024 };

/** A source that gives each chunk to the sender's `take` as it is read (like the decoder's tap), counting reads. */
function pacedSource(chunks: Uint8Array[], take: (c: Uint8Array) => void, fail?: Error): { stream: ReadableStream<Uint8Array>; reads: () => number } {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (i < chunks.length) {
          const c = chunks[i++]!;
          take(c);
          controller.enqueue(c);
        } else if (fail) controller.error(fail);
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, reads: () => i };
}

async function readAll(stream: ReadableStream<Uint8Array>, each?: (c: Uint8Array) => void | Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) {
    parts.push(Buffer.from(c)); // a copy: the chunk's buffer goes back to the sender on the next read
    await each?.(c);
  }
  return Buffer.concat(parts);
}

test("every byte arrives in order, in batch-sized buffers, whatever the chunk sizes", async () => {
  const data = randomBytes(100_000);
  const chunks: Uint8Array[] = [];
  for (let off = 0, n = 1; off < data.length; off += n, n = (n * 7 + 13) % 3000) chunks.push(data.subarray(off, off + n));
  const { port1, port2 } = new MessageChannel();
  const sender = channelSender(port1, SMALL);
  const sizes: number[] = [];
  const hasher = createHash("sha256");
  const received = receiveStream(port2, (c) => hasher.update(c));
  const [got] = await Promise.all([readAll(received, (c) => void sizes.push(c.length)), sender.drive(pacedSource(chunks, (c) => sender.take(c)).stream)]);
  assert.ok(got.equals(data));
  assert.equal(hasher.digest("hex"), createHash("sha256").update(data).digest("hex"), "the tap saw every byte once");
  assert.ok(sizes.slice(0, -1).every((n) => n === SMALL.batchBytes), `all but the last buffer are full: ${sizes.join(",")}`);
});

test("the sender stops reading its source while the window is full, and reuses the buffers handed back", async () => {
  const chunks = Array.from({ length: 64 }, (_, i) => new Uint8Array(1024).fill(i));
  const { port1, port2 } = new MessageChannel();
  const sender = channelSender(port1, SMALL);
  let takes = 0;
  const source = pacedSource(chunks, (c) => {
    takes++;
    sender.take(c);
  });
  void sender.drive(source.stream);
  const reader = receiveStream(port2).getReader();
  const first = await reader.read();
  assert.equal(first.value![0], 0);
  await new Promise((r) => setTimeout(r, 100));
  // One buffer is with the consumer and the window holds four; the source is not read further.
  assert.ok(source.reads() <= SMALL.windowBytes / SMALL.batchBytes + 1, `read ${source.reads()} chunks while the consumer held one`);
  let n = 1;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    assert.equal(r.value[0], n++ % 256);
  }
  assert.equal(n, 64);
  assert.equal(takes, 64);
  // 64 full buffers went across, but only the window's worth (and the one being filled) was ever allocated.
  assert.ok(sender.buffers <= SMALL.windowBytes / SMALL.batchBytes + 2, `${sender.buffers} buffers allocated`);
});

test("a source error reaches the receiver as an error and is kept by the sender; nothing after it is delivered", async () => {
  const { port1, port2 } = new MessageChannel();
  const sender = channelSender(port1, SMALL);
  const boom = new Error("decompress layer sha256:x: gzip data is corrupt");
  const source = pacedSource([new Uint8Array(10), new Uint8Array(10)], (c) => sender.take(c), boom);
  void sender.drive(source.stream);
  await assert.rejects(readAll(receiveStream(port2)), /gzip data is corrupt/);
  assert.equal(sender.error, boom);
});

test("cancelling the receiving stream cancels the source", async () => {
  const { port1, port2 } = new MessageChannel();
  const sender = channelSender(port1, SMALL);
  let cancelled: unknown;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const c = new Uint8Array(512).fill(i++);
        sender.take(c);
        controller.enqueue(c);
      },
      cancel(reason) {
        cancelled = reason ?? "cancelled";
      },
    },
    { highWaterMark: 0 },
  );
  const driving = sender.drive(stream);
  const reader = receiveStream(port2).getReader();
  await reader.read();
  await reader.cancel("the worker failed");
  await driving;
  assert.ok(cancelled !== undefined, "the endless source was cancelled");
});

test("stop() after the receiver's job is over cancels a source that has not ended", async () => {
  const { port1, port2 } = new MessageChannel();
  const sender = channelSender(port1, SMALL);
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const c = new Uint8Array(2048);
      sender.take(c);
      controller.enqueue(c);
    },
    cancel() {
      cancelled = true;
    },
  });
  void sender.drive(stream);
  const reader = receiveStream(port2).getReader();
  await reader.read();
  await sender.stop(new Error("done"));
  assert.ok(cancelled);
  port2.close();
});
