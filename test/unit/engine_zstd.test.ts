/**
 * The WASM zstd decoder (SIMD and plain builds) against the reference: node:zlib's zstd (Node 24) and the
 * `zstd` command line tool, over data made here (text, random, long repeats, short periods, empty) compressed
 * at levels 1, 3 and 19, with --long, without checksums, multithreaded, as several frames back to back and
 * with skippable frames, fed in chunks from 1 byte to 1 MiB. Corrupt streams (bad checksum, truncation, bad
 * magic, reserved bits, dictionaries, oversized windows, trailing garbage) fail with DataLoss naming the
 * problem. Last, a bounded fuzz: random and mutated frames must decode to what the reference decodes, or fail
 * with DataLoss; never crash or hang.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { createZstdDecompress, ZstdDecoder, type ZstdOptions, zstdDecompressStream } from "../../src/engine/zstd.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";
import { compressible, Rng } from "../helpers/engine_gzip.ts";

const VARIANTS = ["simd", "plain"] as const;
const hasCli = spawnSync("zstd", ["--version"]).status === 0;
/** node:zlib's zstd works (Node 24; Deno 2.5 has the functions, but they throw). */
const nativeZstd = (() => {
  try {
    return zlib.zstdDecompressSync(zlib.zstdCompressSync(Buffer.from("x"))).toString() === "x";
  } catch {
    return false;
  }
})();

/**
 * Runs the zstd command line tool on `data` (through a file: Deno's spawnSync deadlocks when both stdin and
 * stdout carry megabytes). `--no-content-size` is added unless the arguments mention a size, as when piped.
 */
function zstdTool(data: Uint8Array, args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsctr-zstd-test-"));
  try {
    const file = path.join(dir, "in");
    writeFileSync(file, data);
    const r = spawnSync("zstd", ["-q", "-c", ...args, file], { maxBuffer: 1 << 30 });
    return { status: r.status, stdout: r.stdout, stderr: String(r.stderr) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compresses with the zstd command line tool (no content size in the header unless `args` asks). */
function cli(data: Uint8Array, ...args: string[]): Buffer {
  const sized = args.some((a) => a.startsWith("--stream-size") || a === "--content-size");
  const r = zstdTool(data, sized ? args : ["--no-content-size", ...args]);
  if (r.status !== 0) throw new Error(`zstd ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * The reference decoding: node:zlib where it has zstd, else the zstd tool; an Error when it refuses. node:zlib
 * (Node 24.21) ends its output at the first skippable frame, so inputs holding one need `tool: "cli"`.
 */
function reference(z: Uint8Array, tool: "zlib" | "cli" = "zlib"): Buffer | Error {
  if (nativeZstd && tool === "zlib") {
    try {
      return zlib.zstdDecompressSync(z);
    } catch (e) {
      return e as Error;
    }
  }
  const r = zstdTool(z, ["-d"]);
  return r.status === 0 ? r.stdout : new Error(r.stderr);
}

/** Decodes `z` with ZstdDecoder, feeding `chunk` bytes at a time (a function gives varying sizes). */
function decode(z: Uint8Array, chunk: number | (() => number), opts: ZstdOptions = {}): Buffer {
  const dec = new ZstdDecoder(opts);
  const parts: Buffer[] = [];
  try {
    for (let off = 0; off < z.length; ) {
      const n = Math.max(1, typeof chunk === "number" ? chunk : chunk());
      dec.write(z.subarray(off, off + n), (v) => parts.push(Buffer.from(v)));
      off += n;
    }
    dec.end((v) => parts.push(Buffer.from(v)));
    assert.ok(dec.done);
    assert.equal(dec.bytesIn, z.length);
  } finally {
    dec.close();
  }
  return Buffer.concat(parts);
}

function same(got: Buffer, want: Uint8Array, what: string): void {
  if (!got.equals(want)) {
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    assert.fail(`${what}: ${got.length} bytes out, want ${want.length}; first difference at byte ${i}`);
  }
}

/** Asserts that decoding fails with DataLoss matching `pattern`, for each variant and chunking. */
function rejects(z: Uint8Array, pattern: RegExp, chunkings: number[] = [1, 7, 4096, 1 << 20], opts: ZstdOptions = {}): void {
  for (const variant of VARIANTS) {
    for (const c of chunkings) {
      assert.throws(
        () => decode(z, c, { ...opts, variant }),
        (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && pattern.test(e.message),
        `${variant}, chunks of ${c}: expected DataLoss matching ${pattern}`,
      );
    }
  }
}

const rng = new Rng(7);
const text = compressible(rng, 3_000_000);
const random = rng.bytes(2_000_000);
/** Short periods (offsets 1-15 and repeat offsets), runs, and text: exercises every match copy path. */
const periods = Buffer.concat([
  ...Array.from({ length: 16 }, (_, p) => Buffer.from(Array.from({ length: 5000 + p * 37 }, (_, i) => (i % (p + 1)) * 17 + p))),
  Buffer.alloc(200_000, 0),
  text.subarray(0, 100_000),
  Buffer.alloc(70_000, 0xab),
]);
/** 3 MiB of random data, three times: only a window that reaches 3 MiB back compresses it. */
const longRepeats = (() => {
  const block = rng.bytes(3 << 20);
  return Buffer.concat([block, text.subarray(0, 50_000), block, block]);
})();
const small = Buffer.from("hello, zstd\n");

const CORPUS: Record<string, Buffer> = { empty: Buffer.alloc(0), small, text, random, periods };

test("node:zlib frames of every corpus entry, in chunk sizes from 1 byte to 1 MiB", { skip: !nativeZstd }, () => {
  for (const [name, data] of Object.entries(CORPUS)) {
    for (const level of [1, 3, 19]) {
      const z = zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: level === 3 ? 1 : 0 } });
      for (const variant of VARIANTS) {
        for (const c of data.length > 200_000 ? [65536, 1 << 20] : [1, 2, 3, 5, 64, 4096, 1 << 20]) {
          same(decode(z, c, { variant }), data, `${name} level ${level} ${variant} chunks of ${c}`);
        }
      }
    }
  }
});

test("1-byte and odd chunkings over a large frame", { skip: !nativeZstd }, () => {
  const data = Buffer.concat([text.subarray(0, 300_000), periods.subarray(0, 200_000), random.subarray(0, 100_000)]);
  const z = zlib.zstdCompressSync(data);
  const r = new Rng(99);
  for (const variant of VARIANTS) {
    same(decode(z, 1, { variant }), data, `${variant} 1-byte chunks`);
    same(decode(z, () => 1 + r.int(r.int(2) ? 300 : 200_000), { variant }), data, `${variant} random chunks`);
  }
});

test("zstd CLI: levels 1, 3, 19, --no-check, -T0, content size and block sizes", { skip: !hasCli }, () => {
  const cases: [string, string[]][] = [
    ["-1", ["-1"]],
    ["-3", ["-3"]],
    ["-19", ["-19"]],
    ["--no-check", ["-3", "--no-check"]],
    ["-T0", ["-6", "-T0"]],
    ["--stream-size", ["-3"]],
    ["--content-size (single segment where it fits)", ["-3", "--content-size"]],
    ["-B 20000 (small jobs)", ["-5", "-T2", "-B1048576"]],
    ["--ultra -22", ["--ultra", "-22"]],
  ];
  for (const [name, data] of Object.entries(CORPUS)) {
    for (const [label, args] of cases) {
      const extra = label === "--stream-size" ? [`--stream-size=${data.length}`] : [];
      const z = cli(data, ...args, ...extra);
      const want = reference(z);
      assert.ok(!(want instanceof Error), `${name} ${label}: the reference fails: ${want}`);
      for (const variant of VARIANTS) {
        for (const c of data.length > 200_000 ? [4096, 65536, 1 << 20] : [1, 13, 1 << 20]) {
          same(decode(z, c, { variant, maxWindowLog: 27 }), data, `${name} zstd ${label} ${variant} chunks of ${c}`);
        }
      }
    }
  }
});

test("zstd --long: far matches through a large window; refused above maxWindowLog", { skip: !hasCli }, () => {
  const z = cli(longRepeats, "-3", "--long=23");
  assert.ok(z.length < longRepeats.length / 2, "--long found the repeats");
  for (const variant of VARIANTS) {
    for (const c of [65536, 1 << 20]) same(decode(z, c, { variant, maxWindowLog: 23 }), longRepeats, `--long=23 ${variant} ${c}`);
  }
  // The tool's own --long is 2^27 (128 MiB) when it cannot see the input size: the same frame with its
  // window descriptor raised to 2^27 is refused by default (32 MiB), accepted when allowed.
  assert.equal(z[4]! & 0x20, 0, "not single segment");
  assert.equal(z[5], (23 - 10) << 3);
  const z27 = Buffer.from(z);
  z27[5] = (27 - 10) << 3;
  rejects(z27, /^zstd: window too large in frame 1 \(134217728 bytes, the limit is 33554432\)/, [65536]);
  same(decode(z27, 1 << 20, { maxWindowLog: 27 }), longRepeats, "--long=27 with maxWindowLog 27");
  // Without the large window the same data is not compressible; with a file input the tool shrinks the window.
  const plain = cli(longRepeats, "-3");
  assert.ok(plain.length > z.length);
  same(decode(plain, 1 << 20), longRepeats, "-3 without --long");
});

test("several frames back to back (cat a.zst b.zst), empty frames, skippable frames anywhere", { skip: !hasCli }, () => {
  const a = cli(text.subarray(0, 500_000), "-3");
  const b = cli(random.subarray(0, 300_000), "-19", "--no-check");
  const e = cli(Buffer.alloc(0), "-3");
  const skippable = (n: number, magicLow: number) => {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(0x184d2a50 + magicLow, 0);
    h.writeUInt32LE(n, 4);
    return Buffer.concat([h, rng.bytes(n)]);
  };
  const z = Buffer.concat([skippable(10, 0), a, e, skippable(0, 15), b, e, a, skippable(300_000, 7)]);
  const want = Buffer.concat([text.subarray(0, 500_000), random.subarray(0, 300_000), text.subarray(0, 500_000)]);
  const ref = reference(z, "cli");
  assert.ok(!(ref instanceof Error));
  same(ref, want, "the reference");
  if (nativeZstd) assert.equal(zlib.zstdDecompressSync(z).length, 0, "node:zlib still stops at the first skippable frame");
  for (const variant of VARIANTS) for (const c of [1, 999, 65536, 1 << 20]) same(decode(z, c, { variant }), want, `${variant} ${c}`);
  // Only skippable frames: no data, no error.
  same(decode(skippable(5, 3), 1), Buffer.alloc(0), "a lone skippable frame");
});

test("a hand-made frame: raw, RLE and empty blocks, a zero dictionary ID, a 2-byte content size", () => {
  // FHD 0x61: 2-byte content size (+256), single segment, dictionary ID field of 1 byte (0: none).
  const blocks = [
    Buffer.from([(5 << 3) | 0, 0, 0]), Buffer.from("hello"), // raw, 5 bytes
    Buffer.from([(300 << 3) | 2, (300 << 3) >> 8, 0]), Buffer.from("z"), // RLE, 300 bytes
    Buffer.from([1 | 0, 0, 0]), // last, raw, empty
  ];
  const size = Buffer.alloc(2);
  size.writeUInt16LE(305 - 256);
  const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x61, 0x00]), size, ...blocks]);
  const want = Buffer.concat([Buffer.from("hello"), Buffer.alloc(300, "z")]);
  for (const variant of VARIANTS) for (const c of [1, 4, 100]) same(decode(frame, c, { variant }), want, `${variant} ${c}`);
  const ref = reference(frame);
  assert.ok(!(ref instanceof Error) && ref.equals(want), "the reference agrees");
  // The same frame naming dictionary 5.
  const dict = Buffer.from(frame);
  dict[5] = 5;
  rejects(dict, /dictionaries not supported/);
  // A content size that does not match.
  const short = Buffer.from(frame);
  short[6] = 305 - 256 - 1;
  rejects(short, /content size does not match/);
});

test("corrupt streams fail with DataLoss naming the problem", { skip: !hasCli }, () => {
  const data = text.subarray(0, 200_000);
  const z = cli(data, "-3");
  const flip = (i: number, mask = 0xff) => {
    const c = Buffer.from(z);
    c[i] = c[i]! ^ mask;
    return c;
  };
  rejects(flip(z.length - 1), /^zstd: bad content checksum in frame 1/);
  rejects(flip(0), /^zstd: not zstd data: frame 1 does not start with the zstd magic number/);
  rejects(flip(4, 0x08), /^zstd: reserved bits set in frame 1/);
  rejects(Buffer.concat([z, Buffer.from([1, 2, 3, 4, 5])]), /not zstd data: frame 2/);
  rejects(Buffer.concat([z, Buffer.from([0x28, 0xb5])]), /unexpected end of data in frame 2/);
  rejects(Buffer.alloc(0), /no zstd frame/);
  for (const cut of [1, 4, 5, 6, 9, 100, z.length >> 1, z.length - 5, z.length - 1]) rejects(z.subarray(0, cut), /unexpected end of data in frame 1/, [1, 4096, 1 << 20]);
  // A window descriptor of 2^41 (exponent 31): refused before any allocation.
  rejects(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0x01, 0x00, 0x00]), /window too large/);
  // Reserved block type 3.
  rejects(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x07, 0x00, 0x00]), /reserved block type/);
  // A block larger than the window (1 KiB) allows.
  rejects(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x40, 0x00]), /block larger than/);
  // Every single-byte change in the frame header, block headers and checksum fails or decodes like the reference.
  for (let i = 0; i < 40; i++) {
    for (const mask of [0x01, 0x10, 0x80, 0xff]) agree(flip(i, mask), `byte ${i} ^ ${mask}`);
  }
  const message = (() => {
    try {
      decode(flip(z.length - 1), 65536, { what: "layer sha256:abc" });
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  })();
  assert.match(message, /^zstd layer sha256:abc: bad content checksum in frame 1 \(compressed byte \d+\)$/);
});

/** Decoding `z` must fail with DataLoss or return exactly what the reference returns. */
function agree(z: Uint8Array, what: string, chunk: number | (() => number) = 4096, variant: (typeof VARIANTS)[number] = "simd"): "ok" | "failed" {
  let got: Buffer;
  try {
    got = decode(z, chunk, { variant, maxWindowLog: 24 });
  } catch (e) {
    if (e instanceof TsctrError && e.kind === "DataLoss") return "failed";
    throw new Error(`${what}: not a DataLoss error: ${e instanceof Error ? e.stack : String(e)}`);
  }
  const want = reference(z);
  if (want instanceof Error) assert.fail(`${what}: decoded ${got.length} bytes where the reference fails (${want.message})`);
  same(got, want, what);
  return "ok";
}

test("zstdDecompressStream and createZstdDecompress: back-pressure, output equal, errors, cancel", { skip: !hasCli }, async () => {
  const data = Buffer.concat([text, periods]);
  const z = cli(data, "-3");
  const source = (bytes: Uint8Array, chunk: number) => {
    let off = 0;
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        pulls++;
        if (off >= bytes.length) return c.close();
        c.enqueue(bytes.slice(off, off + chunk));
        off += chunk;
      },
    }, { highWaterMark: 0 });
    return { stream, pulls: () => pulls };
  };
  for (const variant of VARIANTS) {
    const src = source(z, 8192);
    const parts: Uint8Array[] = [];
    for await (const p of zstdDecompressStream(src.stream, { variant })) parts.push(p);
    same(Buffer.concat(parts), data, `stream ${variant}`);
  }
  // Back-pressure: after reading one output chunk, the input has not been read to the end.
  {
    const src = source(z, 4096);
    const reader = zstdDecompressStream(src.stream).getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(src.pulls() * 4096 < z.length / 2, `read ${src.pulls()} input chunks after one output chunk`);
    await reader.cancel();
  }
  // Transform form with pipeThrough.
  {
    const parts: Uint8Array[] = [];
    for await (const p of source(z, 100_000).stream.pipeThrough(createZstdDecompress())) parts.push(p);
    same(Buffer.concat(parts), data, "pipeThrough");
  }
  // Corrupt data errors the stream with DataLoss and cancels the input.
  {
    const bad = Buffer.from(z);
    bad[bad.length - 2] = bad[bad.length - 2]! ^ 1;
    let cancelled = false;
    const input = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bad);
      },
      cancel() {
        cancelled = true;
      },
    });
    await assert.rejects(
      (async () => {
        for await (const _ of zstdDecompressStream(input, { what: "layer x" })) { /* drain */ }
      })(),
      (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /^zstd layer x: /.test(e.message),
    );
    assert.ok(cancelled);
  }
});

test("options: maxWindowLog is checked; a closed decoder refuses calls", () => {
  assert.throws(() => new ZstdDecoder({ maxWindowLog: 31 }), (e: unknown) => e instanceof TsctrError && e.kind === "InvalidArgument");
  const d = new ZstdDecoder();
  d.close();
  d.close();
  assert.throws(() => d.feed(small), (e: unknown) => e instanceof TsctrError && e.kind === "FailedPrecondition");
});

const FUZZ_MS = 10_000;

test(`fuzz: random and mutated frames for ${FUZZ_MS / 1000} s decode like the reference or fail with DataLoss`, { timeout: FUZZ_MS + 60_000, skip: !hasCli && !nativeZstd }, () => {
  const seed = (Date.now() ^ 0x2577d) >>> 0;
  const r = new Rng(seed);
  // Seeds: small frames of varied content, levels and options (CLI frames have checksums; --no-check ones
  // let mutations reach the entropy decoders and the match copier).
  const seeds: Buffer[] = [];
  const samples = [text.subarray(0, 3000), text.subarray(5000, 40_000), periods.subarray(0, 20_000), random.subarray(0, 2000), Buffer.concat([random.subarray(0, 500), text.subarray(0, 9000)]), small];
  for (const s of samples) {
    for (const args of [["-1", "--no-check"], ["-19", "--no-check"], ["-3"], ["--fast=3", "--no-check"], ["-9", "--no-check"]]) {
      seeds.push(hasCli ? cli(s, ...args) : zlib.zstdCompressSync(s));
    }
  }
  const stats = { cases: 0, ok: 0, failed: 0 };
  const deadline = Date.now() + FUZZ_MS;
  while (Date.now() < deadline) {
    const base = seeds[r.int(seeds.length)]!;
    let z: Buffer;
    const kind = r.int(10);
    if (kind === 0) {
      // Random bytes behind a valid magic and a plausible frame header.
      z = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, r.int(256) & 0xf7, r.int(80)]), r.bytes(r.int(300))]);
    } else {
      z = Buffer.from(base);
      const edits = 1 + r.int(kind < 5 ? 1 : 4);
      for (let k = 0; k < edits; k++) {
        const at = r.int(z.length);
        const op = r.int(6);
        if (op < 3) z[at] = z[at]! ^ (1 << r.int(8));
        else if (op === 3) z[at] = r.int(256);
        else if (op === 4) z = z.subarray(0, at);
        else z = Buffer.concat([z.subarray(0, at), r.bytes(1 + r.int(4)), z.subarray(at)]);
        if (z.length === 0) break;
      }
    }
    const variant = VARIANTS[r.int(2)]!;
    const chunk = [1, 3, 64, 4096, 1 << 20][r.int(5)]!;
    const res = agree(z, `fuzz seed ${seed} case ${stats.cases} (${variant}, chunks of ${chunk}, input ${z.toString("base64")})`, chunk, variant);
    stats.cases++;
    stats[res]++;
  }
  assert.ok(stats.cases > 200, `only ${stats.cases} cases ran`);
  assert.ok(stats.ok > 0 && stats.failed > 0, `the corpus should hold valid and invalid inputs: ${JSON.stringify(stats)}`);
  process.stdout.write(`# zstd fuzz seed ${seed}: ${JSON.stringify(stats)}\n`);
});
