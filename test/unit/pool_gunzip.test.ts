/**
 * gzip on the thread pool (src/archive/pool_gunzip.ts) against node:zlib's one-shot gunzip: many members, an
 * empty member, stored and highly compressible data larger than both output buffers, input in chunks from one
 * byte to 1 MiB, views that must stay intact until the next read, and the failures (corrupt, truncated, a tap
 * that refuses, a cancel in the middle) as DataLoss or the tap's own error, with the input cancelled.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { spawnSync } from "node:child_process";
import { poolGunzip, poolGunzipAvailable } from "../../src/archive/pool_gunzip.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";
import { defaultDecompressEngine } from "../../src/platform/engines.ts";
import { POOL_NICE } from "../../src/platform/pool_priority.ts";
import { compressible, gzipMember, Rng } from "../helpers/engine_gzip.ts";

const rng = new Rng(7);
const text = compressible(rng, 2_000_000);
const random = rng.bytes(700_000);
const zeros = new Uint8Array(3_000_000);

/** A web stream of `data` in chunks of `size` bytes, each its own ArrayBuffer; `cancelled` says whether it was cancelled. */
function chunked(data: Uint8Array, size: number): { stream: ReadableStream<Uint8Array>; chunks: Uint8Array[]; cancelled: () => boolean } {
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += size) chunks.push(data.slice(off, off + size));
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (i < chunks.length) c.enqueue(chunks[i++]!);
        else c.close();
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, chunks, cancelled: () => cancelled };
}

/** Reads every chunk, hashing each view before the next read (so a view overwritten early shows as a wrong digest). */
async function drain(s: ReadableStream<Uint8Array>): Promise<{ bytes: number; sha: string; sizes: number[] }> {
  const h = createHash("sha256");
  const sizes: number[] = [];
  let bytes = 0;
  for await (const c of s) {
    // Wait as a consumer writing files does (the next stretch inflates meanwhile), then use the view.
    await new Promise((r) => setTimeout(r, 1));
    h.update(c);
    bytes += c.length;
    sizes.push(c.length);
  }
  return { bytes, sha: h.digest("hex"), sizes };
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("this runtime inflates on its thread pool (Node 24), which is its default gzip engine unless TSCTR_DECOMPRESS_ENGINE says otherwise", () => {
  assert.equal(poolGunzipAvailable(), true);
  const saved = process.env.TSCTR_DECOMPRESS_ENGINE;
  try {
    delete process.env.TSCTR_DECOMPRESS_ENGINE;
    assert.equal(defaultDecompressEngine(), "native");
    process.env.TSCTR_DECOMPRESS_ENGINE = "wasm";
    assert.equal(defaultDecompressEngine(), "wasm");
    process.env.TSCTR_DECOMPRESS_ENGINE = "bogus";
    assert.equal(defaultDecompressEngine(), "native");
  } finally {
    if (saved === undefined) delete process.env.TSCTR_DECOMPRESS_ENGINE;
    else process.env.TSCTR_DECOMPRESS_ENGINE = saved;
  }
});

test("gunzip on the pool equals node:zlib for many members, any chunking, with views kept intact until the next read", async () => {
  const members = [gzipMember(text, { level: 6 }), gzipMember(new Uint8Array(0)), gzipMember(random, { level: 0 }), gzipMember(zeros, { level: 9, name: "z" })];
  const gz = Buffer.concat(members);
  const want = zlib.gunzipSync(gz);
  assert.equal(want.length, text.length + random.length + zeros.length);
  for (const size of [1, 1000, 65536, 1 << 20]) {
    // one-byte chunks only over a shorter stream: they are slow by design
    const input = size === 1 ? Buffer.concat([gzipMember(text.subarray(0, 20_000)), gzipMember(zeros.subarray(0, 100_000))]) : gz;
    const expected = size === 1 ? zlib.gunzipSync(input) : want;
    const got = await drain(poolGunzip(chunked(input, size).stream, { what: "test", views: true }));
    assert.equal(got.bytes, expected.length, `chunks of ${size}`);
    assert.equal(got.sha, sha(expected), `chunks of ${size}`);
    assert.ok(Math.max(...got.sizes) <= 256 * 1024, "no chunk larger than an output buffer");
  }
});

test("copies instead of views, the tap sees every byte first, and owned input chunks are freed once inflated", async () => {
  const gz = gzipMember(text);
  const src = chunked(gz, 32 * 1024);
  let tapped = 0;
  const freed: Uint8Array[] = [];
  const out = poolGunzip(src.stream, {
    what: "test",
    views: false,
    tap: (c) => void (tapped += c.length),
    ownsInput: true,
    free: (c) => freed.push(c),
  });
  const kept: Uint8Array[] = [];
  for await (const c of out) kept.push(c);
  assert.equal(sha(Buffer.concat(kept)), sha(text));
  assert.equal(tapped, text.length);
  assert.equal(freed.length, src.chunks.length, "every input chunk was handed back to be freed");
});

test("at the end of the data its buffers are freed at once, not left to the garbage collector", async () => {
  const views: Uint8Array[] = [];
  for await (const c of poolGunzip(chunked(gzipMember(text), 65536).stream, { what: "free", views: true })) views.push(c);
  assert.ok(views.length > 2);
  for (const v of views) assert.equal(v.byteLength, 0, "the view's buffer is detached");
});

test("zero padding after the last member is ignored, as node:zlib does", async () => {
  const gz = Buffer.concat([gzipMember(text.subarray(0, 100_000)), Buffer.alloc(1024)]);
  const got = await drain(poolGunzip(chunked(gz, 4096).stream, { what: "padded" }));
  assert.equal(got.sha, sha(text.subarray(0, 100_000)));
});

test("corrupt and truncated data are DataLoss naming the data, and the input is cancelled", async () => {
  const good = gzipMember(text.subarray(0, 500_000));
  const badCrc = Buffer.from(good);
  badCrc[badCrc.length - 6]! ^= 0xff;
  const badData = Buffer.from(good);
  for (let i = 200; i < 260; i++) badData[i] = 0xff;
  const truncated = good.subarray(0, good.length - 100);
  const notGzipAfter = Buffer.concat([good, Buffer.from("PK\x03\x04 not a gzip member")]);
  for (const [name, gz] of [["bad CRC", badCrc], ["bad data", badData], ["truncated", truncated], ["garbage member", notGzipAfter]] as const) {
    const src = chunked(gz, 8192);
    await assert.rejects(
      drain(poolGunzip(src.stream, { what: `layer ${name}` })),
      (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && e.message.includes(`layer ${name}`),
      name,
    );
    if (name !== "truncated") assert.equal(src.cancelled(), true, `${name}: the input is cancelled`);
  }
});

test("a tap that refuses the data fails the stream with its own error and cancels the input", async () => {
  const src = chunked(gzipMember(zeros), 65536);
  let seen = 0;
  const tap = (c: Uint8Array) => {
    seen += c.length;
    if (seen > 1_000_000) throw new Error("ceiling");
  };
  await assert.rejects(drain(poolGunzip(src.stream, { what: "bomb", tap })), /ceiling/);
  assert.equal(src.cancelled(), true);
});

test("cancelling the output in the middle cancels the input and leaves nothing running", async () => {
  const src = chunked(gzipMember(text), 16384);
  const reader = poolGunzip(src.stream, { what: "cancel" }).getReader();
  const first = await reader.read();
  assert.equal(first.done, false);
  await reader.cancel(new Error("enough"));
  assert.equal(src.cancelled(), true);
});

/** Runs a gunzip on the pool in a fresh Node process (env added); returns the nice value of each of its threads by name. */
function threadNicesAfterGunzip(env: Record<string, string>): Map<string, number[]> {
  const moduleUrl = new URL("../../src/archive/pool_gunzip.ts", import.meta.url).href;
  const script = `
    import { readdirSync, readFileSync } from "node:fs";
    import zlib from "node:zlib";
    const { poolGunzip } = await import(${JSON.stringify(moduleUrl)});
    const input = new Blob([zlib.gzipSync(new Uint8Array(1 << 20))]).stream();
    for await (const _ of poolGunzip(input, { what: "nice" })) {}
    const out = {};
    for (const t of readdirSync("/proc/self/task")) {
      const comm = readFileSync("/proc/self/task/" + t + "/comm", "utf8").trim();
      const stat = readFileSync("/proc/self/task/" + t + "/stat", "utf8");
      // fields after the ")" closing the name: state is field 3, nice is field 19
      const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      (out[comm] ??= []).push(nice);
    }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, ...env }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, number[]>));
}

test("the pool's threads run at a lower priority than the main thread once gzip is inflated there (TSCTR_POOL_NICE=0: unchanged)", { skip: process.platform !== "linux" }, () => {
  const lowered = threadNicesAfterGunzip({});
  assert.ok((lowered.get("libuv-worker") ?? []).length > 0, "the process has pool threads");
  assert.deepEqual([...new Set(lowered.get("libuv-worker"))], [POOL_NICE]);
  assert.deepEqual(lowered.get("MainThread") ?? lowered.get("node"), [0]);

  const unchanged = threadNicesAfterGunzip({ TSCTR_POOL_NICE: "0" });
  assert.deepEqual([...new Set(unchanged.get("libuv-worker"))], [0]);
});
