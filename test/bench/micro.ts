/**
 * The benchmark's engine micro-figures, measured in the same run as the pulls (see run.ts):
 *
 * - inflate MB/s: the zero-copy `WasmInflater` (src/engine/inflate.ts; output used in place) vs node:zlib
 *   `createGunzip({ chunkSize: 128 KiB })`, the output chunk size src/archive/decompress.ts uses; both fed the
 *   same 64 KiB input chunks from memory;
 * - SHA-256 MB/s: hash-wasm's `createSHA256` (what src/digest/digest.ts uses for `--digest-engine wasm`) vs
 *   node:crypto, over the uncompressed tar in 128 KiB chunks;
 * - extraction MB/s: one gzip tar extracted into a fresh directory on the same filesystem the way `tsctr pull`
 *   extracts a layer (src/unpack/workers.ts: decompressed in this process with each decompression engine,
 *   hashed and written by an extraction worker; GNU tar, too, has gzip in a second process) and by GNU
 *   `tar -xzf`, in an
 *   order that rotates every round, with `sync` + drop_caches before each, so every contender reads the blob
 *   from disk and starts with no dirty pages of the one before. One untimed extraction per engine comes first
 *   (JIT warm-up); neither side fsyncs, so the times are until the last write returned.
 *
 * All figures are MB/s of uncompressed tar (10^6 bytes per second). Each round times every contender once
 * (the order alternates); the ratio reported is the median of the per-round ratios tsctr/reference, so ≥ 1.0×
 * means tsctr is at least as fast. The corpus is one devbench layer from the bench's fixture cache, or a tar
 * of /usr/share and /usr/lib cut at a size (small for --quick) made in the bench's temporary directory.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, lstatSync, readdirSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { createSHA256 } from "hash-wasm";
import { decompressEngine, setDecompressEngine, type DecompressEngine } from "../../src/archive/decompress.ts";
import { digestEngine } from "../../src/digest/mod.ts";
import { WasmInflater } from "../../src/engine/inflate.ts";
import { ExtractWorkers } from "../../src/unpack/workers.ts";
import { extractInto } from "../../src/unpack/extract.ts";
import { execFile } from "../../src/platform/exec.ts";
import { dropCaches, median, timeOk } from "./measure.ts";

/** Input chunk for both inflaters (about what a network read or a stream read hands over). */
const INPUT_CHUNK = 64 * 1024;
/** node:zlib's output chunk size in the pipeline (src/archive/decompress.ts). */
const ZLIB_CHUNK = 128 * 1024;
/** Chunk fed to the SHA-256 hashers (the size of the decompressed views the pipeline hashes). */
const SHA_CHUNK = 128 * 1024;
/** The content store reads blobs with 1 MiB reads (src/content/local.ts); the extraction does the same. */
const READ_CHUNK = 1 << 20;
const LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

/** The gzip tar every engine figure is measured on. */
export interface EngineCorpus {
  /** e.g. "devbench layer runtimes" or "/usr/share + /usr/lib, 24 MB". */
  name: string;
  gzFile: string;
  gzBytes: number;
  tarBytes: number;
  entries: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

/** One measured pair, in MB/s: tsctr's engine and the reference it is compared with. */
export interface RatePair {
  tsctr: number;
  reference: number;
}

export interface ThroughputResult {
  tsctrName: string;
  referenceName: string;
  /** Per round, MB/s. */
  rounds: RatePair[];
  medianMBps: RatePair;
  /** Median of the per-round ratios tsctr/reference (higher is better). */
  medianRatio: number;
  target?: number;
}

export interface ExtractRound {
  /** The order the contenders ran in this round. */
  order: string[];
  /** Wall time of each, in ms. */
  gnuTarMs: number;
  nativeMs: number;
  wasmMs: number;
}

export interface MicroResults {
  corpus: EngineCorpus;
  inflate: ThroughputResult & { inputChunk: number; zlibChunk: number };
  sha256: ThroughputResult & { chunk: number };
  extract: {
    rounds: ExtractRound[];
    /** Layer extraction as pull does it, with the native (node:zlib) engine vs GNU tar, and with the WASM engine vs GNU tar. */
    native: ThroughputResult;
    wasm: ThroughputResult;
    digestEngine: string;
    gnuTar: string;
    /** Extraction workers used (0: all in this thread, pull's default). */
    workers: number;
  };
}

export interface MicroOptions {
  /** Rounds of the in-memory inflate and SHA-256 timings (after one warm-up each). */
  rounds: number;
  /** Rounds of the extraction timings (each round extracts three times). */
  extractRounds: number;
  /** Scratch directory (removed by the caller); extraction targets go here, so it should share the corpus's filesystem. */
  scratch: string;
  corpus: EngineCorpus;
  /** Extract as `pull --unpack-workers N` does (0, the default: all in this thread). */
  extractWorkers: number;
  log: (msg: string) => void;
}

// ---- the corpus ----

/** A devbench layer (from devbench.ts's cache) as the corpus. */
export function layerCorpus(layer: { name: string; file: string; size: number; tarSize: number; entries: number; diffId: string }): EngineCorpus {
  return { name: `devbench layer "${layer.name}"`, gzFile: layer.file, gzBytes: layer.size, tarBytes: layer.tarSize, entries: layer.entries, diffId: layer.diffId };
}

/**
 * Makes a gzip tar of /usr/share and /usr/lib (directories, files and symlinks, walked in name order) that
 * stops at about `mb` megabytes of file data, in `dir`. Whole entries only, so it extracts cleanly.
 */
export async function usrCorpus(dir: string, mb: number, log: (msg: string) => void): Promise<EngineCorpus> {
  await mkdir(dir, { recursive: true });
  const budget = mb * 1e6;
  const list: string[] = [];
  let bytes = 0;
  const walk = (abs: string): boolean => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return true;
    }
    for (const name of names) {
      const p = `${abs}/${name}`;
      let s;
      try {
        s = lstatSync(p);
      } catch {
        continue;
      }
      if (s.isDirectory()) {
        list.push(p.slice(1));
        if (!walk(p)) return false;
      } else if (s.isFile() || s.isSymbolicLink()) {
        list.push(p.slice(1));
        if (s.isFile()) bytes += s.size;
        if (bytes >= budget) return false;
      }
    }
    return true;
  };
  for (const top of ["/usr/share", "/usr/lib"]) {
    if (!existsSync(top)) continue;
    list.push(top.slice(1));
    if (!walk(top)) break;
  }
  log(`making the engine corpus: a tar of ${list.length} entries (${(bytes / 1e6).toFixed(0)} MB of files) from /usr/share and /usr/lib`);
  const listFile = join(dir, "corpus.list");
  const tarFile = join(dir, "corpus.tar");
  const gzFile = join(dir, "corpus.tar.gz");
  await writeFile(listFile, list.join("\0") + "\0");
  // Exit 1 is GNU tar's "some files changed while being read": the archive is still whole.
  // POSIX format without atime/ctime records, like the devbench layers (and Go's archive/tar).
  const t = await execFile("tar", [
    "--create", `--file=${tarFile}`, "--directory=/", "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "--numeric-owner",
    "--no-recursion", "--null", `--files-from=${listFile}`,
  ]);
  if (t.code > 1) throw new Error(`tar --create of the engine corpus failed (exit ${t.code}): ${t.stderr.trim().split("\n").pop()}`);
  const zipper = existsSync("/usr/bin/pigz") ? "pigz" : "gzip";
  const z = await execFile("sh", ["-c", `${zipper} -6 -n -c "$1" > "$2"`, "sh", tarFile, gzFile]);
  if (z.code !== 0) throw new Error(`${zipper} of the engine corpus failed (exit ${z.code}): ${z.stderr.trim()}`);
  const tar = await readFile(tarFile);
  const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
  await rm(tarFile);
  return {
    name: `/usr/share + /usr/lib, ${(bytes / 1e6).toFixed(0)} MB of files`,
    gzFile,
    gzBytes: (await stat(gzFile)).size,
    tarBytes: tar.length,
    entries: list.length,
    diffId,
  };
}

// ---- inflate and SHA-256, in memory ----

function wasmInflate(gz: Buffer): number {
  const inf = new WasmInflater();
  let n = 0;
  const count = (view: Uint8Array) => {
    n += view.length;
  };
  try {
    for (let i = 0; i < gz.length; i += INPUT_CHUNK) inf.write(gz.subarray(i, i + INPUT_CHUNK), count);
    inf.end(count);
  } finally {
    inf.close();
  }
  return n;
}

async function zlibInflate(gz: Buffer): Promise<number> {
  const z = zlib.createGunzip({ chunkSize: ZLIB_CHUNK });
  let n = 0;
  z.on("data", (c: Buffer) => {
    n += c.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    z.once("end", resolve);
    z.once("error", reject);
  });
  for (let i = 0; i < gz.length; i += INPUT_CHUNK) {
    if (!z.write(gz.subarray(i, i + INPUT_CHUNK))) await new Promise<void>((r) => z.once("drain", r));
  }
  z.end();
  await ended;
  return n;
}

async function wasmSha(tar: Buffer): Promise<string> {
  const h = await createSHA256();
  h.init();
  for (let i = 0; i < tar.length; i += SHA_CHUNK) h.update(tar.subarray(i, i + SHA_CHUNK));
  return `sha256:${h.digest("hex")}`;
}

function nativeSha(tar: Buffer): string {
  const h = createHash("sha256");
  for (let i = 0; i < tar.length; i += SHA_CHUNK) h.update(tar.subarray(i, i + SHA_CHUNK));
  return `sha256:${h.digest("hex")}`;
}

async function ms(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** MB/s for `bytes` in `millis`. */
function rate(bytes: number, millis: number): number {
  return bytes / 1e6 / (millis / 1000);
}

function summarize(tsctrName: string, referenceName: string, rounds: RatePair[], target?: number): ThroughputResult {
  return {
    tsctrName,
    referenceName,
    rounds,
    medianMBps: { tsctr: median(rounds.map((r) => r.tsctr)), reference: median(rounds.map((r) => r.reference)) },
    medianRatio: median(rounds.map((r) => r.tsctr / r.reference)),
    ...(target === undefined ? {} : { target }),
  };
}

/** Times `tsctr` and `reference` alternately (tsctr first in even rounds) after one warm-up each; MB/s of `bytes`. */
async function alternateRates(rounds: number, bytes: number, tsctr: () => unknown, reference: () => unknown): Promise<RatePair[]> {
  await tsctr();
  await reference();
  const out: RatePair[] = [];
  for (let i = 0; i < rounds; i++) {
    let t: number;
    let r: number;
    if (i % 2 === 0) {
      t = await ms(tsctr);
      r = await ms(reference);
    } else {
      r = await ms(reference);
      t = await ms(tsctr);
    }
    out.push({ tsctr: rate(bytes, t), reference: rate(bytes, r) });
  }
  return out;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`engine micro-benchmark: wrong result from ${what}`);
}

async function inflateAndSha(opts: MicroOptions): Promise<Pick<MicroResults, "inflate" | "sha256">> {
  const { corpus, rounds, log } = opts;
  const gz = await readFile(corpus.gzFile);
  const tar = zlib.gunzipSync(gz);
  check(tar.length === corpus.tarBytes, `gunzip of the corpus (${tar.length} bytes, expected ${corpus.tarBytes})`);
  check(nativeSha(tar) === corpus.diffId, "node:crypto SHA-256 of the corpus");

  log(`inflate: WasmInflater vs node:zlib createGunzip, ${rounds} round(s) over ${(tar.length / 1e6).toFixed(0)} MB`);
  const inflateRounds = await alternateRates(
    rounds,
    tar.length,
    () => check(wasmInflate(gz) === tar.length, "WasmInflater"),
    async () => check((await zlibInflate(gz)) === tar.length, "node:zlib createGunzip"),
  );
  log(`SHA-256: hash-wasm vs node:crypto, ${rounds} round(s)`);
  const shaRounds = await alternateRates(
    rounds,
    tar.length,
    async () => check((await wasmSha(tar)) === corpus.diffId, "hash-wasm SHA-256"),
    () => check(nativeSha(tar) === corpus.diffId, "node:crypto SHA-256"),
  );
  return {
    inflate: { ...summarize("WasmInflater (zero-copy)", `node:zlib createGunzip (chunkSize ${ZLIB_CHUNK / 1024} KiB)`, inflateRounds, 1.3), inputChunk: INPUT_CHUNK, zlibChunk: ZLIB_CHUNK },
    sha256: { ...summarize("hash-wasm createSHA256", "node:crypto createHash", shaRounds), chunk: SHA_CHUNK },
  };
}

// ---- extraction vs GNU tar ----

type Contender = "gnu tar" | "tsctr native" | "tsctr wasm";
const CONTENDERS: readonly Contender[] = ["gnu tar", "tsctr native", "tsctr wasm"];

/**
 * Extracts the corpus as `tsctr pull` does: by default all in this thread; with `workers` (pull
 * --unpack-workers N) decompressed here, hashed and written by an extraction worker.
 */
async function extractWithTsctr(corpus: EngineCorpus, dir: string, engine: DecompressEngine, workers: ExtractWorkers | undefined): Promise<number> {
  setDecompressEngine(engine);
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const source = Readable.toWeb(createReadStream(corpus.gzFile, { highWaterMark: READ_CHUNK })) as unknown as ReadableStream<Uint8Array>;
  const target = { dir, digest: corpus.name, mediaType: LAYER_MEDIA_TYPE };
  const r = workers ? await workers.run(source, target) : await extractInto(source, target);
  const elapsed = performance.now() - t0;
  check(r.diffId === corpus.diffId, `extract (${engine}): diffID ${r.diffId}, expected ${corpus.diffId}`);
  check(r.stats.entries >= corpus.entries * 0.9, `extract (${engine}): ${r.stats.entries} entries, the corpus has about ${corpus.entries}`);
  return elapsed;
}

async function extractWithGnuTar(corpus: EngineCorpus, dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  return (await timeOk("tar -xzf", "tar", ["-xzf", corpus.gzFile, "-C", dir], { timeoutMs: 600_000 })).ms;
}

async function extraction(opts: MicroOptions): Promise<MicroResults["extract"]> {
  const { corpus, extractRounds, scratch, log } = opts;
  const gnuTar = (await execFile("tar", ["--version"])).stdout.split("\n")[0] ?? "tar";
  const previousEngine = decompressEngine();
  log(`extraction: pull's layer extraction (native and WASM engines) vs ${gnuTar}, ${extractRounds} round(s) of ${corpus.name}`);
  const rounds: ExtractRound[] = [];
  const workers = opts.extractWorkers > 0 ? ExtractWorkers.create(opts.extractWorkers) : undefined;
  if (opts.extractWorkers > 0 && workers === undefined) throw new Error("engine micro-benchmark: extraction workers are not available in this runtime");
  try {
    // One untimed extraction with each engine first, so the timed ones measure compiled code, not the JIT
    // warming up (which a small corpus would otherwise show as a large share of tsctr's time).
    for (const engine of ["native", "wasm"] as const) {
      const dir = join(scratch, `warm-up-${engine}`);
      await extractWithTsctr(corpus, dir, engine, workers);
      await rm(dir, { recursive: true, force: true });
    }
    for (let i = 0; i < extractRounds; i++) {
      // Rotate who goes first, so no contender always follows the same one.
      const order = CONTENDERS.map((_, k) => CONTENDERS[(k + i) % CONTENDERS.length]!);
      const times = new Map<Contender, number>();
      for (const who of order) {
        const dir = join(scratch, `x-${i}-${who.replace(/\W+/g, "-")}`);
        await dropCaches();
        const t = who === "gnu tar" ? await extractWithGnuTar(corpus, dir) : await extractWithTsctr(corpus, dir, who === "tsctr native" ? "native" : "wasm", workers);
        times.set(who, t);
        await rm(dir, { recursive: true, force: true });
      }
      const round = { order: [...order], gnuTarMs: times.get("gnu tar")!, nativeMs: times.get("tsctr native")!, wasmMs: times.get("tsctr wasm")! };
      rounds.push(round);
      log(
        `  round ${i + 1}: GNU tar ${(round.gnuTarMs / 1000).toFixed(2)} s, tsctr native ${(round.nativeMs / 1000).toFixed(2)} s, wasm ${(round.wasmMs / 1000).toFixed(2)} s`,
      );
    }
  } finally {
    await workers?.close();
    setDecompressEngine(previousEngine);
  }
  const pairs = (f: (r: ExtractRound) => number) => rounds.map((r) => ({ tsctr: rate(corpus.tarBytes, f(r)), reference: rate(corpus.tarBytes, r.gnuTarMs) }));
  return {
    rounds,
    native: summarize("layer extraction, native engine", gnuTar, pairs((r) => r.nativeMs), 1.0),
    wasm: summarize("layer extraction, WASM engine", gnuTar, pairs((r) => r.wasmMs), 1.0),
    digestEngine: digestEngine(),
    gnuTar,
    workers: opts.extractWorkers,
  };
}

/** Runs all engine micro-benchmarks on `opts.corpus`. Needs root (drop_caches, owners restored by both). */
export async function engineMicro(opts: MicroOptions): Promise<MicroResults> {
  const inMemory = await inflateAndSha(opts);
  const extract = await extraction(opts);
  return { corpus: opts.corpus, ...inMemory, extract };
}
