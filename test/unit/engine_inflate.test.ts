/**
 * The WASM gzip engine (SIMD and plain builds, native and WASM CRC-32) against node:zlib over a corpus made here: every deflate block
 * type, zlib levels 0-9 and strategies, hand-made headers with every optional field, many members, input in
 * chunks from 1 byte to 1 MiB; and corrupt streams, which must fail with DataLoss naming the problem.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import { createGunzip, gunzipStream, WasmInflater } from "../../src/engine/inflate.ts";
import { preferredVariant } from "../../src/engine/wasm.ts";
import { decoderStream } from "../../src/engine/stream.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";
import { BitWriter, CONFIGS, compressible, gzipMember, Rng, wasmGunzip } from "../helpers/engine_gzip.ts";

const VARIANTS = CONFIGS;
const label = (c: (typeof CONFIGS)[number]) => `${c.variant}/${c.crc} crc`;
const rng = new Rng(42);
const text = compressible(rng, 3_000_000);
const random10M = rng.bytes(10 * 1024 * 1024);
const mixed = Buffer.concat([text.subarray(0, 400_000), rng.bytes(100_000), Buffer.alloc(300_000, 0x41), text.subarray(0, 200_000)]);

function same(got: Buffer, want: Uint8Array, what: string): void {
  if (!got.equals(want)) {
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    assert.fail(`${what}: ${got.length} bytes out, want ${want.length}; first difference at byte ${i}`);
  }
}

/** Asserts that gunzipping `gz` fails with DataLoss whose message matches `pattern`, for every chunking. */
function rejects(gz: Uint8Array, pattern: RegExp, chunkings: number[] = [1, 3, 4096, 1 << 20]): void {
  for (const variant of VARIANTS) {
    for (const c of chunkings) {
      assert.throws(
        () => wasmGunzip(gz, c, variant),
        (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && pattern.test(e.message),
        `${label(variant)}, chunks of ${c}: expected DataLoss matching ${pattern}`,
      );
    }
  }
}

test("the SIMD build is chosen on this runtime", () => {
  assert.equal(preferredVariant(), "simd");
});

test("empty, tiny and single-byte data, in every chunk size", () => {
  for (const data of [Buffer.alloc(0), Buffer.from("a"), Buffer.from("hello, gzip\n"), Buffer.from([0])]) {
    const gz = zlib.gzipSync(data);
    for (const variant of VARIANTS) for (const c of [1, 2, 5, 1 << 20]) same(wasmGunzip(gz, c, variant), data, `${data.length} B, ${label(variant)}, ${c}`);
  }
});

test("zlib levels 0-9 and every strategy (stored, fixed, dynamic, Huffman-only, RLE blocks)", () => {
  const s = zlib.constants;
  for (let level = 0; level <= 9; level++) {
    const gz = zlib.gzipSync(mixed, { level });
    for (const variant of VARIANTS) same(wasmGunzip(gz, 65536, variant), mixed, `level ${level} ${label(variant)}`);
  }
  for (const strategy of [s.Z_FIXED, s.Z_HUFFMAN_ONLY, s.Z_RLE, s.Z_FILTERED]) {
    const gz = zlib.gzipSync(mixed, { strategy });
    for (const variant of VARIANTS) same(wasmGunzip(gz, 100_000, variant), mixed, `strategy ${strategy} ${label(variant)}`);
  }
});

test("10 MB of random data (stored blocks) and 3 MB of text (long matches)", () => {
  for (const [name, data, level] of [["random", random10M, 6], ["random stored", random10M, 0], ["text", text, 9]] as const) {
    const gz = zlib.gzipSync(data, { level });
    for (const variant of VARIANTS) same(wasmGunzip(gz, 1 << 20, variant), data, `${name} ${label(variant)}`);
  }
  const runs = Buffer.concat([Buffer.alloc(1_000_000, 7), Buffer.from("ab".repeat(200_000)), Buffer.from("abcdefghijklmnopq".repeat(40_000))]);
  for (const variant of VARIANTS) same(wasmGunzip(zlib.gzipSync(runs), 65536, variant), runs, `runs ${label(variant)}`);
});

test("chunk sizes from 1 byte to 1 MiB, and random cuts", () => {
  const data = mixed.subarray(0, 300_000);
  const gz = zlib.gzipSync(data);
  for (const c of [1, 2, 3, 7, 16, 17, 100, 1000, 4096, 65535, 65536, 131073, 1 << 20]) {
    for (const variant of VARIANTS) same(wasmGunzip(gz, c, variant), data, `chunks of ${c} ${label(variant)}`);
  }
  const cut = new Rng(7);
  for (let i = 0; i < 20; i++) same(wasmGunzip(gz, () => 1 + cut.int(i % 2 ? 20 : 200_000)), data, `random cuts ${i}`);
});

test("hand-made headers: FEXTRA, FNAME, FCOMMENT, FHCRC, alone and together", () => {
  const data = text.subarray(0, 50_000);
  const extra = rng.bytes(70_000 % 65536);
  const variants = [
    { extra },
    { name: "layer.tar" },
    { comment: "a comment" },
    { hcrc: true },
    { extra: Buffer.alloc(0), name: "", comment: "", hcrc: true },
    { extra: rng.bytes(300), name: "n".repeat(5000), comment: "c".repeat(3000), hcrc: true },
  ];
  for (const opts of variants) {
    const gz = gzipMember(data, opts);
    assert.ok(zlib.gunzipSync(gz).equals(data), "zlib accepts the hand-made member");
    for (const variant of VARIANTS) for (const c of [1, 9, 65536]) same(wasmGunzip(gz, c, variant), data, `${JSON.stringify(Object.keys(opts))} ${label(variant)} ${c}`);
  }
});

test("many concatenated members, empty ones included, and zero padding after the last", () => {
  const parts: Buffer[] = [];
  const members: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const d = i % 10 === 0 ? Buffer.alloc(0) : compressible(rng, rng.int(5000));
    parts.push(d);
    members.push(i % 3 === 0 ? gzipMember(d, { name: `m${i}`, hcrc: true }) : zlib.gzipSync(d, { level: i % 10 }));
  }
  const gz = Buffer.concat(members);
  const want = Buffer.concat(parts);
  same(zlib.gunzipSync(gz), want, "zlib");
  for (const variant of VARIANTS) for (const c of [1, 13, 65536]) same(wasmGunzip(gz, c, variant), want, `members ${label(variant)} ${c}`);
  const padded = Buffer.concat([gz, Buffer.alloc(1024)]);
  same(wasmGunzip(padded, 100), want, "zero padding");
});

test("a distance of exactly 32768 and matches that straddle input chunks and window slides", () => {
  const block = rng.bytes(32768);
  const data = Buffer.concat([block, block, rng.bytes(1000), block, Buffer.alloc(600_000, 1), block]);
  const gz = zlib.gzipSync(data, { level: 9 });
  for (const variant of VARIANTS) for (const c of [1, 777, 1 << 20]) same(wasmGunzip(gz, c, variant), data, `far matches ${label(variant)} ${c}`);
});

test("corrupt CRC and ISIZE fail with DataLoss naming the member", () => {
  const a = zlib.gzipSync(text.subarray(0, 10_000));
  const b = zlib.gzipSync(text.subarray(10_000, 30_000));
  const badCrc = Buffer.concat([a, a, b]);
  badCrc[2 * a.length + b.length - 8]! ^= 1;
  rejects(badCrc, /^gunzip: bad CRC in member 3\b/);
  const badSize = Buffer.from(a);
  badSize[a.length - 1]! ^= 0x80;
  rejects(badSize, /^gunzip: bad length \(ISIZE\) in member 1\b/);
});

test("truncated streams fail with DataLoss at every cut", () => {
  const gz = zlib.gzipSync(mixed.subarray(0, 100_000));
  for (const cut of [0, 1, 5, 10, 11, 100, gz.length >> 1, gz.length - 9, gz.length - 8, gz.length - 1]) {
    rejects(gz.subarray(0, cut), /unexpected end of data in member 1/, [1, 65536]);
  }
  const two = Buffer.concat([gz, gz.subarray(0, 20)]);
  rejects(two, /unexpected end of data in member 2/, [65536]);
});

test("malformed headers, block types, code lengths and distances fail with DataLoss", () => {
  const gzHead = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  const wrap = (deflate: Buffer) => Buffer.concat([gzHead, deflate, Buffer.alloc(8)]);
  rejects(Buffer.from("not gzip at all, just text"), /not gzip data/);
  rejects(Buffer.from([0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 3, 0, 0]), /unknown compression method/);
  rejects(Buffer.from([0x1f, 0x8b, 8, 0x20, 0, 0, 0, 0, 0, 3, 0, 0]), /reserved header flags/);
  const hcrc = gzipMember(Buffer.from("x"), { hcrc: true });
  hcrc[10]! ^= 0xff;
  rejects(hcrc, /bad header CRC/);
  rejects(wrap(new BitWriter().bits(1, 1).bits(3, 2).finish()), /invalid block type/);
  rejects(wrap(Buffer.from([0x01, 0x05, 0x00, 0x00, 0x00])), /stored block length/);
  // A match before any output: length 3 (symbol 257), distance 1 (code 0).
  rejects(wrap(new BitWriter().bits(1, 1).bits(1, 2).fixedLitLen(257).code(0, 5).fixedLitLen(256).finish()), /distance too far back/);
  // One literal, then distance 2.
  rejects(wrap(new BitWriter().bits(1, 1).bits(1, 2).fixedLitLen(65).fixedLitLen(257).code(1, 5).fixedLitLen(256).finish()), /distance too far back/);
  // Fixed-code symbols that do not exist: literal/length 286, distance 30.
  rejects(wrap(new BitWriter().bits(1, 1).bits(1, 2).fixedLitLen(286).finish()), /invalid literal\/length code/);
  rejects(wrap(new BitWriter().bits(1, 1).bits(1, 2).fixedLitLen(65).fixedLitLen(257).code(30, 5).finish()), /invalid distance code/);
  // Dynamic headers: too many codes; an over-subscribed code length code; a repeat with nothing before it.
  rejects(wrap(new BitWriter().bits(1, 1).bits(2, 2).bits(30, 5).bits(0, 5).bits(0, 4).finish()), /too many length or distance codes/);
  const cl = new BitWriter().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(15, 4);
  for (let i = 0; i < 19; i++) cl.bits(1, 3); // nineteen one-bit codes
  rejects(wrap(cl.finish()), /invalid code lengths code/);
  const rep = new BitWriter().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4);
  rep.bits(1, 3).bits(0, 3).bits(0, 3).bits(1, 3); // symbols 16 and 0 get one-bit codes: 0 = "0", 16 = "1"
  rep.code(1, 1).bits(0, 2); // 16 first: nothing to repeat
  rejects(wrap(rep.finish()), /invalid code length repeat/);
  // Garbage after a complete member.
  rejects(Buffer.concat([zlib.gzipSync("ok"), Buffer.from("garbage")]), /trailing garbage after member 1/);
});

test("an error is sticky and the inflater can be closed twice", () => {
  const inf = new WasmInflater();
  inf.feed(Buffer.from("nope, not gzip"));
  assert.throws(() => inf.read(), /not gzip data/);
  assert.throws(() => inf.read(), /not gzip data/);
  inf.close();
  inf.close();
  assert.throws(() => inf.read(), /closed/);
});

test("gunzipStream and createGunzip deliver the data with back-pressure and fail with DataLoss", async () => {
  const gz = zlib.gzipSync(mixed);
  const source = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < gz.length; i += 10_000) c.enqueue(gz.subarray(i, i + 10_000));
        c.close();
      },
    });
  const collect = async (s: ReadableStream<Uint8Array>) => {
    const out: Buffer[] = [];
    for await (const chunk of s) out.push(Buffer.from(chunk));
    return Buffer.concat(out);
  };
  same(await collect(gunzipStream(source())), mixed, "gunzipStream");
  same(await collect(source().pipeThrough(createGunzip({ variant: "plain" }))), mixed, "createGunzip");
  const bad = Buffer.from(gz);
  bad[bad.length - 6]! ^= 1;
  await assert.rejects(
    collect(new Blob([bad]).stream().pipeThrough(createGunzip({ what: "layer sha256:abc" }))),
    (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /^gunzip layer sha256:abc: bad CRC in member 1/.test(e.message),
  );
  // A 1000:1 stream read slowly: the decoder only runs as fast as the reader pulls.
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024));
  const reader = gunzipStream(new Blob([bomb]).stream()).getReader();
  const first = await reader.read();
  assert.ok(first.value && first.value.length <= 256 * 1024);
  await reader.cancel();
});

test("a decoder that owns its input frees each whole input chunk once taken, and only those", async () => {
  const data = compressible(new Rng(7), 3 << 20);
  const gz = zlib.gzipSync(data);
  // Whole chunks of their own (as a socket delivers them) and one view into a larger buffer.
  const whole = [0, 1, 2].map((i) => new Uint8Array(gz.subarray(i * 65536, (i + 1) * 65536)));
  const shared = new Uint8Array(gz.length + 16);
  shared.set(gz.subarray(3 * 65536), 8);
  const partial = shared.subarray(8, 8 + gz.length - 3 * 65536);
  const decode = async (ownsInput: boolean, chunks: Uint8Array[]) => {
    const input = new ReadableStream<Uint8Array>({
      start(c) {
        for (const chunk of chunks) c.enqueue(chunk);
        c.close();
      },
    });
    const out: Uint8Array[] = [];
    for await (const c of decoderStream(input, () => new WasmInflater(), { ownsInput })) out.push(c);
    return Buffer.concat(out);
  };
  assert.ok((await decode(true, [...whole, partial])).equals(data));
  assert.deepEqual(whole.map((c) => c.buffer.byteLength), [0, 0, 0], "whole chunks are freed");
  assert.equal(shared.byteLength, gz.length + 16, "a view into a larger buffer is left alone");
  const kept = [0, 1].map((i) => new Uint8Array(gz.subarray(i * 65536, (i + 1) * 65536)));
  assert.ok((await decode(false, [...kept, new Uint8Array(gz.subarray(2 * 65536))])).equals(data));
  assert.deepEqual(kept.map((c) => c.buffer.byteLength), [65536, 65536], "without ownsInput nothing is freed");
});
