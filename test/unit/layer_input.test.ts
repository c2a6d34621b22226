/**
 * The stream a pull's extractor reads a layer from (src/client/layer_input.ts): the kept bytes, then the
 * network's, with only the network's going through the sink, in order; a sink failure, a source failure, the
 * pull's abort signal and a cancel each end it and cancel every source still open (closing the connection).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { layerInput } from "../../src/client/layer_input.ts";

/** A stream of `chunks` that records whether (and why) it was cancelled; with `hang`, it never ends. */
function source(chunks: number[][], opts: { hang?: boolean; failWith?: Error } = {}) {
  const state = { cancelled: false, reason: undefined as unknown };
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) return c.enqueue(new Uint8Array(chunks[i++]!));
      if (opts.failWith) return c.error(opts.failWith);
      if (!opts.hang) return c.close();
      return new Promise<void>(() => {});
    },
    cancel(reason) {
      state.cancelled = true;
      state.reason = reason;
    },
  });
  return { stream, state };
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const c of s) out.push(...c);
  return out;
}

test("the kept bytes come first, then the network's; only the network's go through the sink, in order", async () => {
  const kept = source([[1, 2], [3]]);
  const network = source([[4, 5], [6], [7, 8, 9]]);
  const written: number[] = [];
  const errors: unknown[] = [];
  const s = layerInput(
    { kept: kept.stream, network: network.stream },
    { write: async (c) => void written.push(...c), signal: new AbortController().signal, onError: (e) => errors.push(e) },
  );
  assert.deepEqual(await readAll(s), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(written, [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(errors, []);
  assert.equal(network.state.cancelled, false);
});

test("a sink that fails ends the stream with its error, reports it, and cancels the network", async () => {
  const network = source([[1], [2], [3]], { hang: true });
  const full = new Error("no space left on device");
  const errors: unknown[] = [];
  let writes = 0;
  const s = layerInput(
    { network: network.stream },
    {
      write: async () => {
        if (++writes === 2) throw full;
      },
      signal: new AbortController().signal,
      onError: (e) => errors.push(e),
    },
  );
  await assert.rejects(readAll(s), (e) => e === full);
  assert.deepEqual(errors, [full]);
  assert.equal(network.state.cancelled, true);
});

test("a network failure is reported once with its own error, and the kept bytes before it still came out", async () => {
  const kept = source([[1]]);
  const broken = new Error("connection reset");
  const network = source([[2]], { failWith: broken });
  const errors: unknown[] = [];
  const got: number[] = [];
  const s = layerInput({ kept: kept.stream, network: network.stream }, { write: async () => {}, signal: new AbortController().signal, onError: (e) => errors.push(e) });
  await assert.rejects(
    (async () => {
      for await (const c of s) got.push(...c);
    })(),
    (e) => e === broken,
  );
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(errors, [broken]);
});

test("the pull's abort ends a waiting read with the signal's reason and cancels every open source", async () => {
  const kept = source([[1]], { hang: true });
  const network = source([[2]]);
  const abort = new AbortController();
  const s = layerInput({ kept: kept.stream, network: network.stream }, { write: async () => {}, signal: abort.signal, onError: () => {} });
  const reader = s.getReader();
  assert.deepEqual([...(await reader.read()).value!], [1]);
  const waiting = reader.read();
  const why = new Error("another layer failed");
  abort.abort(why);
  await assert.rejects(waiting, (e) => e === why);
  assert.equal(kept.state.cancelled, true);
  assert.equal(kept.state.reason, why);
  assert.equal(network.state.cancelled, true);
});

test("a signal aborted before the start errors the stream at once; cancelling the stream cancels the sources", async () => {
  const early = new AbortController();
  early.abort(new Error("too late"));
  const a = source([[1]]);
  await assert.rejects(readAll(layerInput({ network: a.stream }, { write: async () => {}, signal: early.signal, onError: () => {} })), /too late/);
  assert.equal(a.state.cancelled, true);

  const kept = source([[1]], { hang: true });
  const network = source([[2]]);
  const s = layerInput({ kept: kept.stream, network: network.stream }, { write: async () => {}, signal: new AbortController().signal, onError: () => {} });
  const reader = s.getReader();
  await reader.read();
  await reader.cancel("enough");
  assert.equal(kept.state.reason, "enough");
  assert.equal(network.state.cancelled, true);
});
