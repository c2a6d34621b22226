/**
 * Helpers for testing the WASM gzip engine: hand-made gzip members and deflate bit streams, a driver that
 * feeds the engine in chosen chunk sizes, and a seeded fuzz loop (shared by the unit test and the long run
 * in test/bench/fuzz_engine.ts).
 */
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import { type GunzipOptions, WasmInflater } from "../../src/engine/inflate.ts";

/** A small deterministic PRNG (xorshift32), so failures can be replayed from their seed. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  /** A uint32. */
  next(): number {
    let s = this.#s;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    this.#s = s >>> 0;
    return this.#s;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

/** Text-like data with many repeats at all distances (words from a small vocabulary, some binary noise). */
export function compressible(rng: Rng, n: number): Buffer {
  const words = ["the", "layer", "container", "snapshot", "overlay", "digest", "sha256", "\n", " ", "gzip", "{", "}", "0000"];
  const parts: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const r = rng.int(100);
    const p = r < 90 ? Buffer.from(words[rng.int(words.length)]!) : r < 95 ? rng.bytes(rng.int(20)) : Buffer.alloc(rng.int(300), rng.int(256));
    parts.push(p);
    len += p.length;
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** A gzip member written by hand around raw deflate data, with the optional header fields of RFC 1952. */
export function gzipMember(data: Uint8Array, opts: { extra?: Uint8Array; name?: string; comment?: string; hcrc?: boolean; level?: number; raw?: Uint8Array } = {}): Buffer {
  let flg = 0;
  const head: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0x78, 0x56, 0x34, 0x12, 0, 3])];
  if (opts.extra) {
    flg |= 4;
    head.push(Buffer.from([opts.extra.length & 0xff, opts.extra.length >> 8]), Buffer.from(opts.extra));
  }
  if (opts.name !== undefined) {
    flg |= 8;
    head.push(Buffer.from(opts.name + "\0", "latin1"));
  }
  if (opts.comment !== undefined) {
    flg |= 16;
    head.push(Buffer.from(opts.comment + "\0", "latin1"));
  }
  if (opts.hcrc) flg |= 2;
  head[0]![3] = flg;
  let header = Buffer.concat(head);
  if (opts.hcrc) {
    const c = zlib.crc32(header) & 0xffff;
    header = Buffer.concat([header, Buffer.from([c & 0xff, c >> 8])]);
  }
  const body = opts.raw ?? zlib.deflateRawSync(data, { level: opts.level ?? 6 });
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([header, body, trailer]);
}

/** Writes a deflate bit stream: fields LSB first, Huffman codes MSB first (RFC 1951 3.1.1). */
export class BitWriter {
  #bytes: number[] = [];
  #acc = 0;
  #n = 0;
  bits(value: number, count: number): this {
    for (let i = 0; i < count; i++) this.#bit((value >> i) & 1);
    return this;
  }
  code(code: number, len: number): this {
    for (let i = len - 1; i >= 0; i--) this.#bit((code >> i) & 1);
    return this;
  }
  /** A fixed-Huffman literal/length symbol (RFC 1951 3.2.6). */
  fixedLitLen(sym: number): this {
    if (sym < 144) return this.code(0x30 + sym, 8);
    if (sym < 256) return this.code(0x190 + sym - 144, 9);
    if (sym < 280) return this.code(sym - 256, 7);
    return this.code(0xc0 + sym - 280, 8);
  }
  #bit(b: number): void {
    this.#acc |= b << this.#n;
    if (++this.#n === 8) {
      this.#bytes.push(this.#acc);
      this.#acc = 0;
      this.#n = 0;
    }
  }
  finish(): Buffer {
    return Buffer.from(this.#n > 0 ? [...this.#bytes, this.#acc] : this.#bytes);
  }
}

/** How to cut the input: a fixed chunk size or a function giving the next size. */
export type Chunking = number | ((offset: number) => number);

/** The engine configurations every differential test covers: each build, each CRC-32 implementation. */
export const CONFIGS: readonly GunzipOptions[] = [
  { variant: "simd", crc: "native" },
  { variant: "simd", crc: "wasm" },
  { variant: "plain", crc: "wasm" },
];

/** Gunzips `gz` with the WASM engine, fed in the given chunk sizes; throws what the engine throws. */
export function wasmGunzip(gz: Uint8Array, chunking: Chunking = 65536, opts: GunzipOptions = {}): Buffer {
  const inf = new WasmInflater(opts);
  const out: Buffer[] = [];
  const keep = (v: Uint8Array) => out.push(Buffer.from(v));
  try {
    for (let off = 0; off < gz.length; ) {
      const n = Math.max(1, typeof chunking === "number" ? chunking : chunking(off));
      inf.write(gz.subarray(off, off + n), keep);
      off += n;
    }
    inf.end(keep);
    return Buffer.concat(out);
  } finally {
    inf.close();
  }
}

/** node:zlib's verdict on `gz`: the data, or the error. */
export function zlibGunzip(gz: Uint8Array): Buffer | Error {
  try {
    return zlib.gunzipSync(gz);
  } catch (e) {
    return e as Error;
  }
}

/** One fuzz input: valid gzip of random or compressible data, mutated or not, or plain noise. */
export function fuzzInput(rng: Rng): Buffer {
  const kind = rng.int(10);
  if (kind === 0) return rng.bytes(rng.int(2000));
  if (kind === 1) return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), rng.bytes(rng.int(3000))]);
  const data = rng.int(3) === 0 ? rng.bytes(rng.int(5000)) : compressible(rng, rng.int(200_000));
  const strategy = [zlib.constants.Z_DEFAULT_STRATEGY, zlib.constants.Z_FIXED, zlib.constants.Z_HUFFMAN_ONLY, zlib.constants.Z_RLE][rng.int(4)];
  let gz = zlib.gzipSync(data, { level: rng.int(10), strategy });
  if (rng.int(4) === 0) gz = Buffer.concat([gz, zlib.gzipSync(compressible(rng, rng.int(3000)))]);
  if (kind === 2) return gz; // valid
  const m = Buffer.from(gz);
  const edits = 1 + rng.int(4);
  let out: Buffer = m;
  for (let i = 0; i < edits; i++) {
    const op = rng.int(5);
    const at = rng.int(Math.max(1, out.length));
    if (op === 0 || op === 1) out[at] = (out[at] ?? 0) ^ (1 << rng.int(8));
    else if (op === 2) out[at] = rng.int(256);
    else if (op === 3) out = out.subarray(0, at);
    else out = Buffer.concat([out.subarray(0, at), rng.bytes(1 + rng.int(8)), out.subarray(at)]);
  }
  return out;
}

/** Outcome counts of a fuzz run. */
export interface FuzzStats {
  cases: number;
  bothOk: number;
  bothFailed: number;
  onlyWasmFailed: number;
}

/**
 * Runs fuzz cases until `ms` elapse (or `maxCases`). Each input is gunzipped by zlib and by the engine in
 * random chunk sizes; the engine must either produce exactly zlib's output or throw a DataLoss error (it may
 * be stricter than zlib, never looser). Throws, naming the seed and case, on any other outcome.
 */
export function fuzz(seed: number, ms: number, opts: GunzipOptions = {}, maxCases = Infinity): FuzzStats {
  const rng = new Rng(seed);
  const stats: FuzzStats = { cases: 0, bothOk: 0, bothFailed: 0, onlyWasmFailed: 0 };
  const deadline = performance.now() + ms;
  while (performance.now() < deadline && stats.cases < maxCases) {
    const input = fuzzInput(rng);
    const chunkSeed = rng.next();
    const chunkRng = new Rng(chunkSeed);
    const chunking = [1, 7, 512, 65536, 1 << 20][chunkRng.int(5)]!;
    const sizes = (_: number) => (chunkRng.int(3) === 0 ? 1 + chunkRng.int(16) : 1 + chunkRng.int(chunking));
    const expected = zlibGunzip(input);
    let got: Buffer | Error;
    try {
      got = wasmGunzip(input, sizes, opts);
    } catch (e) {
      got = e as Error;
    }
    const where = `seed ${seed}, case ${stats.cases}, ${input.length} input bytes (hex head ${input.subarray(0, 24).toString("hex")})`;
    if (got instanceof Error) {
      if ((got as { kind?: string }).kind !== "DataLoss") throw new Error(`fuzz: engine threw a non-DataLoss error at ${where}: ${got.stack}`);
      if (expected instanceof Error) stats.bothFailed++;
      else stats.onlyWasmFailed++;
    } else {
      if (expected instanceof Error) throw new Error(`fuzz: engine accepted data zlib rejects (${expected.message}) at ${where}`);
      if (!got.equals(expected)) throw new Error(`fuzz: engine output differs from zlib at ${where}`);
      stats.bothOk++;
    }
    stats.cases++;
  }
  return stats;
}
