/**
 * Engine micro-benchmarks: `node test/bench/engine.ts [MB=160] [runs=5]`.
 *
 * Builds (once, cached in $TMPDIR/tsctr-bench-engine) a tar of system directories cut to MB megabytes and
 * gzips it with GNU gzip -6, then times, best of `runs` (interleaved, so load from other processes hits all
 * alike), in MB/s of uncompressed data:
 * - WASM inflate, SIMD and plain builds: WasmInflater fed 64 KiB chunks, output used in place (zero copy),
 *   with the gzip CRC-32 from node:zlib's crc32() (the default) or from the engine;
 * - WASM inflate through gunzipStream() (web streams, one copy per output chunk);
 * - node:zlib createGunzip() fed the same 64 KiB chunks, with 128 KiB output chunks (what
 *   src/archive/decompress.ts does today) and with zlib's default 16 KiB;
 * - SHA-256 of the tar: WASM SIMD and plain (bytes copied in through the staging buffer) vs node:crypto.
 * Both wall-clock and process CPU time are reported; on a busy machine CPU time is the steadier figure.
 */
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import zlib from "node:zlib";
import { type GunzipOptions, gunzipStream, WasmInflater } from "../../src/engine/inflate.ts";
import { createWasmSha256 } from "../../src/engine/sha256.ts";

const MB = Number(process.argv[2] ?? 160);
const RUNS = Number(process.argv[3] ?? 5);
const CHUNK = 64 * 1024;
const DIR = path.join(os.tmpdir(), "tsctr-bench-engine");
const SOURCES = ["usr/lib/python3.11", "usr/share/doc", "usr/share/perl", "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/share"];

/** The tar and its gzip, made once. */
async function corpus(): Promise<{ tar: Buffer; gz: Buffer }> {
  const tarFile = path.join(DIR, `corpus-${MB}.tar`);
  const gzFile = `${tarFile}.gz`;
  if (!existsSync(gzFile)) {
    await fs.mkdir(DIR, { recursive: true });
    const dirs = SOURCES.filter((d) => existsSync(path.join("/", d)));
    process.stdout.write(`making a ${MB} MB tar of ${dirs.join(", ")} …\n`);
    const sh = `tar cf - -C / ${dirs.join(" ")} 2>/dev/null | head -c ${MB * 1_000_000} > ${tarFile}.tmp && gzip -6 -c ${tarFile}.tmp > ${gzFile}.tmp && mv ${tarFile}.tmp ${tarFile} && mv ${gzFile}.tmp ${gzFile}`;
    const res = spawnSync("sh", ["-c", sh], { stdio: "inherit" });
    if (res.status !== 0) throw new Error(`Cannot make the benchmark corpus: sh exited ${res.status}`);
  }
  return { tar: await fs.readFile(tarFile), gz: await fs.readFile(gzFile) };
}

interface Timing {
  wall: number;
  cpu: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function time(f: () => unknown): Promise<Timing> {
  const w = performance.now();
  const c = cpuSeconds();
  await f();
  return { wall: (performance.now() - w) / 1000, cpu: cpuSeconds() - c };
}

function wasmInflate(gz: Buffer, opts: GunzipOptions): number {
  const inf = new WasmInflater(opts);
  let n = 0;
  const count = (v: Uint8Array) => {
    n += v.length;
  };
  for (let i = 0; i < gz.length; i += CHUNK) inf.write(gz.subarray(i, i + CHUNK), count);
  inf.end(count);
  inf.close();
  return n;
}

function chunks(gz: Buffer): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i >= gz.length) c.close();
      else c.enqueue(gz.subarray(i, (i += CHUNK)));
    },
  });
}

async function wasmStream(gz: Buffer): Promise<number> {
  let n = 0;
  for await (const c of gunzipStream(chunks(gz))) n += c.length;
  return n;
}

async function zlibStream(gz: Buffer, chunkSize: number): Promise<number> {
  const z = zlib.createGunzip({ chunkSize });
  let n = 0;
  z.on("data", (c: Buffer) => {
    n += c.length;
  });
  const end = new Promise<void>((resolve, reject) => {
    z.on("end", resolve);
    z.on("error", reject);
  });
  for (let i = 0; i < gz.length; i += CHUNK) {
    if (!z.write(gz.subarray(i, i + CHUNK))) await new Promise<void>((r) => z.once("drain", r));
  }
  z.end();
  await end;
  return n;
}

function wasmSha(tar: Buffer, variant: "simd" | "plain"): string {
  const h = createWasmSha256({ variant });
  for (let i = 0; i < tar.length; i += CHUNK) h.update(tar.subarray(i, i + CHUNK));
  return h.digest();
}

function nativeSha(tar: Buffer): string {
  const h = createHash("sha256");
  for (let i = 0; i < tar.length; i += CHUNK) h.update(tar.subarray(i, i + CHUNK));
  return `sha256:${h.digest("hex")}`;
}

async function main(): Promise<void> {
  const { tar, gz } = await corpus();
  process.stdout.write(`corpus: ${(tar.length / 1e6).toFixed(1)} MB tar, ${(gz.length / 1e6).toFixed(1)} MB gzip -6; best of ${RUNS}\n`);
  const expectSha = nativeSha(tar);
  const cases: [string, number, () => unknown][] = [
    ["inflate wasm simd", tar.length, () => wasmInflate(gz, { variant: "simd" }) === tar.length || fail("simd size")],
    ["inflate wasm plain", tar.length, () => wasmInflate(gz, { variant: "plain" }) === tar.length || fail("plain size")],
    ["inflate wasm simd+crc", tar.length, () => wasmInflate(gz, { variant: "simd", crc: "wasm" }) === tar.length || fail("simd size")],
    ["inflate wasm stream", tar.length, async () => (await wasmStream(gz)) === tar.length || fail("stream size")],
    ["inflate node:zlib", tar.length, async () => (await zlibStream(gz, 128 * 1024)) === tar.length || fail("zlib size")],
    ["inflate node:zlib 16K", tar.length, async () => (await zlibStream(gz, 16 * 1024)) === tar.length || fail("zlib size")],
    ["sha256 wasm simd", tar.length, () => wasmSha(tar, "simd") === expectSha || fail("simd sha")],
    ["sha256 wasm plain", tar.length, () => wasmSha(tar, "plain") === expectSha || fail("plain sha")],
    ["sha256 node:crypto", tar.length, () => nativeSha(tar)],
  ];
  const best = new Map<string, Timing>();
  for (let r = 0; r < RUNS; r++) {
    for (const [name, , f] of cases) {
      const t = await time(f);
      const b = best.get(name);
      best.set(name, { wall: Math.min(b?.wall ?? Infinity, t.wall), cpu: Math.min(b?.cpu ?? Infinity, t.cpu) });
    }
  }
  const rate = (name: string, k: keyof Timing) => tar.length / 1e6 / best.get(name)![k];
  for (const [name] of cases) {
    process.stdout.write(`${name.padEnd(22)} ${rate(name, "wall").toFixed(0).padStart(6)} MB/s wall ${rate(name, "cpu").toFixed(0).padStart(6)} MB/s cpu\n`);
  }
  const ratio = (a: string, b: string) => `${(rate(a, "wall") / rate(b, "wall")).toFixed(2)}× wall, ${(rate(a, "cpu") / rate(b, "cpu")).toFixed(2)}× cpu`;
  process.stdout.write(`ratio inflate wasm simd / node:zlib:   ${ratio("inflate wasm simd", "inflate node:zlib")} (target ≥ 1.3×)\n`);
  process.stdout.write(`ratio inflate wasm plain / node:zlib:  ${ratio("inflate wasm plain", "inflate node:zlib")}\n`);
  process.stdout.write(`ratio inflate wasm simd, engine CRC / node:zlib: ${ratio("inflate wasm simd+crc", "inflate node:zlib")}\n`);
  process.stdout.write(`ratio inflate wasm simd / node:zlib 16K chunks: ${ratio("inflate wasm simd", "inflate node:zlib 16K")}\n`);
  process.stdout.write(`ratio inflate wasm stream / node:zlib: ${ratio("inflate wasm stream", "inflate node:zlib")}\n`);
  process.stdout.write(`ratio sha256 wasm simd / node:crypto:  ${ratio("sha256 wasm simd", "sha256 node:crypto")}\n`);
}

function fail(what: string): never {
  throw new Error(`benchmark result is wrong: ${what}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
