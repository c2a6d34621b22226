/**
 * `npm run bench`: tsctr against containerd, side by side in one run on the same machine.
 *
 *   node test/bench/run.ts [--rounds N] [--quick] [--timeout SECONDS] [--exe PATH]
 *
 * It builds its fixture images (busybox, and "devbench": ~50 Debian packages in 4 layers, see devbench.ts),
 * serves them from a local docker-registry, starts a private containerd, and then alternates the two
 * contenders (the order flips every round, so neither always runs first):
 *
 * - cold pull of devbench: `tsctr pull` vs `ctr images pull` (which unpacks to overlayfs), with the image,
 *   content and snapshots removed and the page cache dropped before every timed pull; wall time, peak RSS
 *   of the client (and of the containerd daemon), and when each first reported unpacking;
 * - peak RSS of one cold `tsctr pull` of "big", a 1 GB image (the memory target; tsctr only);
 * - start-up: `tsctr version` vs `ctr --version`;
 * - `tsctr run --rm busybox true` vs `ctr run --rm busybox ID true`;
 * - engine micro-figures (micro.ts), each against its reference: WASM inflate vs node:zlib, SHA-256 on WASM vs
 *   node:crypto, and extraction of one gzip layer as pull extracts it (both decompression engines) vs GNU tar.
 *
 * The machine is noisy, so the figures that count are the per-round ratios tsctr/containerd (their median),
 * not absolute times. `--quick` does one round, pulls busybox instead of devbench and measures the engines on a
 * small tar. Results are printed as a table and written as JSON to os.tmpdir()/tsctr-bench-results/.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { execFile } from "../../src/platform/exec.ts";
import { startRegistry } from "../helpers/registry.ts";
import { startContainerd, type PrivateContainerd } from "../helpers/containerd.ts";
import { serveBigImage, serveBusybox, serveDevbench, devbenchLayers, missingFixtureTools, BENCH_CACHE, DEVBENCH_LAYERS, type FixtureImage } from "./devbench.ts";
import { engineMicro, layerCorpus, usrCorpus, type EngineCorpus, type MicroResults, type ThroughputResult } from "./micro.ts";
import {
  TIME_BIN, canDropCaches, cleanupMeasure, dropCaches, killRunning, max, median, min, procMemory, ratios,
  procCpuMs, resetPeakRss, timeOk, type Pair, type Timed,
} from "./measure.ts";

const REPO = resolve(import.meta.dirname, "..", "..");
const RESULTS_DIR = join(tmpdir(), "tsctr-bench-results");

const USAGE = `usage: node test/bench/run.ts [--rounds N] [--quick] [--timeout SECONDS] [--exe PATH]
  --rounds N          cold-pull rounds, each one tsctr pull and one ctr pull (default 5)
  --quick             one round of everything, busybox instead of devbench for the pulls, and a small
                      engine corpus
  --startup-runs N    pairs of start-up timings (default 20)
  --run-runs N        pairs of 'run --rm busybox true' timings (default 10)
  --timeout S         deadline for any one pull (default 300)
  --exe PATH          the tsctr executable (default dist/tsctr-linux-amd64)
  --micro-rounds N    rounds of the in-memory inflate and SHA-256 timings (default 5)
  --extract-rounds N  rounds of the extraction timings, tsctr vs GNU tar (default 3)
  --engine-corpus C   the gzip tar for the engine figures: a devbench layer (${DEVBENCH_LAYERS.map((l) => l.name).join(", ")};
                      default runtimes) or usr (a tar of /usr/share and /usr/lib, ~200 MB; 24 MB with --quick,
                      which uses it by default)
  --micro-only        only the engine figures: no registry, containerd or pulls
  --pull-arg ARG      one more argument for every timed 'tsctr pull' (repeatable), e.g.
                      --pull-arg=--unpack-workers --pull-arg=1`;

interface Options {
  rounds: number;
  quick: boolean;
  startupRuns: number;
  runRuns: number;
  timeoutMs: number;
  exe: string;
  microRounds: number;
  extractRounds: number;
  engineCorpus: string;
  microOnly: boolean;
  pullArgs: string[];
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string" },
      quick: { type: "boolean", default: false },
      "startup-runs": { type: "string" },
      "run-runs": { type: "string" },
      timeout: { type: "string" },
      exe: { type: "string" },
      "micro-rounds": { type: "string" },
      "extract-rounds": { type: "string" },
      "engine-corpus": { type: "string" },
      "micro-only": { type: "boolean", default: false },
      "pull-arg": { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} wants a positive whole number, not "${v}"`);
    return n;
  };
  return {
    quick: values.quick,
    rounds: int("rounds", values.rounds, values.quick ? 1 : 5),
    startupRuns: int("startup-runs", values["startup-runs"], 20),
    runRuns: int("run-runs", values["run-runs"], 10),
    timeoutMs: int("timeout", values.timeout, 300) * 1000,
    exe: resolve(values.exe ?? join(REPO, "dist", "tsctr-linux-amd64")),
    microRounds: int("micro-rounds", values["micro-rounds"], values.quick ? 1 : 5),
    extractRounds: int("extract-rounds", values["extract-rounds"], values.quick ? 1 : 3),
    engineCorpus: engineCorpusName(values["engine-corpus"] ?? (values.quick ? "usr" : "runtimes")),
    microOnly: values["micro-only"],
    pullArgs: values["pull-arg"] ?? [],
  };
}

/** The extraction workers the timed pulls use (their --unpack-workers, else pull's default of 0). */
function pullWorkers(opts: Options): number {
  const i = opts.pullArgs.findIndex((a) => a === "--unpack-workers" || a.startsWith("--unpack-workers="));
  const arg = opts.pullArgs[i];
  const n = arg === undefined ? 0 : Number(arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : opts.pullArgs[i + 1]);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function engineCorpusName(c: string): string {
  const known = ["usr", ...DEVBENCH_LAYERS.map((l) => l.name)];
  if (!known.includes(c)) throw new UsageError(`--engine-corpus wants one of ${known.join(", ")}, not "${c}"`);
  return c;
}

class UsageError extends Error {}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---- clean-up on every exit path, Ctrl-C included ----

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;

function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    killRunning();
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log(`clean-up: ${(e as Error).message}`);
      }
    }
    await cleanupMeasure();
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (cleaning) {
      log("interrupted again: exiting without finishing the clean-up");
      process.exit(130);
    }
    log(`${sig}: stopping containerd and the registry, removing temporary files`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

/** Unmounts anything mounted under `dir` (deepest first), then removes it. */
async function removeTree(dir: string): Promise<void> {
  const mounts = (await execFile("findmnt", ["-rn", "-o", "TARGET"])).stdout
    .split("\n")
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    const r = await execFile("umount", [m]);
    if (r.code !== 0) await execFile("umount", ["-l", m]);
  }
  await rm(dir, { recursive: true, force: true });
}

// ---- preflight ----

async function preflight(opts: Options): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("run as root (pulls unpack with real owners; runc and drop_caches need root)");
  const tools: [string, string][] = [["tar", "tar"], ["gzip", "gzip"]];
  if (!opts.microOnly) {
    if (!existsSync(opts.exe)) problems.push(`${opts.exe} is missing: run \`npm run build\` first`);
    tools.push(["containerd", "containerd"], ["ctr", "containerd"], ["runc", "runc"]);
  }
  for (const [bin, pkg] of tools) {
    if ((await execFile("sh", ["-c", `command -v ${bin}`])).code !== 0) problems.push(`${bin} is missing: apt-get install -y ${pkg}`);
  }
  if (!opts.microOnly) problems.push(...(await missingFixtureTools(!opts.quick)).map((m) => `missing ${m}`));
  else if (opts.engineCorpus !== "usr") problems.push(...(await missingFixtureTools(true)).filter((m) => !m.startsWith("docker-registry")).map((m) => `missing ${m}`));
  if (!canDropCaches()) problems.push("/proc/sys/vm/drop_caches is not there: cold pulls need it");
  if (!existsSync(TIME_BIN)) {
    log(`${TIME_BIN} is missing: apt-get install -y time`);
    await execFile("apt-get", ["install", "-y", "-q", "time"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).catch(() => undefined);
    if (!existsSync(TIME_BIN)) problems.push(`${TIME_BIN} is missing and could not be installed: apt-get install -y time`);
  }
  if (problems.length > 0) throw new UsageError(problems.join("\n       "));
}

// ---- the measurements ----

/** Runs `n` alternated pairs (tsctr first in even rounds, containerd first in odd ones) after `warmup` pairs. */
async function alternate<T>(n: number, warmup: number, tsctr: (i: number) => Promise<T>, ctd: (i: number) => Promise<T>): Promise<{ tsctr: T; containerd: T }[]> {
  for (let i = 0; i < warmup; i++) {
    await tsctr(-1 - i);
    await ctd(-1 - i);
  }
  const out: { tsctr: T; containerd: T }[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      const t = await tsctr(i);
      out.push({ tsctr: t, containerd: await ctd(i) });
    } else {
      const c = await ctd(i);
      out.push({ tsctr: await tsctr(i), containerd: c });
    }
  }
  return out;
}

interface PullSample {
  ms: number;
  /**
   * ms until every blob was downloaded: tsctr's last blob "done" line, ctr's "unpacking" line (it unpacks
   * only after fetching everything). With a streamed pipeline tsctr extracts while it downloads.
   */
  downloadedMs?: number;
  clientRssKb?: number;
  /** CPU time (user + system) of the client, and for containerd of its daemon during the pull too. */
  cpuMs?: number;
  /** containerd only: the daemon's peak RSS during the pull, and its RSS growth over it. */
  daemonPeakKb?: number;
  daemonGrowthKb?: number;
  /** Disk used by the store after the pull (KiB). */
  diskKb?: number;
}

async function duKb(dir: string): Promise<number | undefined> {
  const r = await execFile("du", ["-sk", dir]);
  return r.code === 0 ? Number(r.stdout.split(/\s+/)[0]) : undefined;
}

function tsctrCmd(exe: string, root: string, state: string, args: string[]): [string, string[]] {
  return [exe, ["--root", root, "--state", state, ...args]];
}

async function coldPulls(exe: string, ctd: PrivateContainerd, image: FixtureImage, base: string, opts: Options): Promise<{ tsctr: PullSample; containerd: PullSample }[]> {
  const root = join(base, "pull", "root");
  const state = join(base, "pull", "state");
  const tsctrPull = async (i: number): Promise<PullSample> => {
    await removeTree(join(base, "pull"));
    await dropCaches();
    const t = await timeOk(`tsctr pull ${image.ref}`, ...tsctrCmd(exe, root, state, ["pull", "--plain-http", ...opts.pullArgs, image.ref]), {
      rss: true,
      // Its last blob "done" line: every layer is downloaded and verified (unpacking may overlap).
      lastMarks: { downloaded: /layer-[0-9a-f]+: done \d/ },
      timeoutMs: opts.timeoutMs,
    });
    const sample = { ms: t.ms, downloadedMs: t.marks.downloaded, clientRssKb: t.maxRssKb, cpuMs: t.cpuMs, diskKb: await duKb(root) };
    if (i >= 0) log(`  round ${i + 1}: tsctr pull ${fmtS(t.ms)}`);
    return sample;
  };
  const ctrPull = async (i: number): Promise<PullSample> => {
    await ctd.clean();
    await dropCaches();
    const peakReset = await resetPeakRss(ctd.pid);
    const before = await procMemory(ctd.pid);
    const daemonCpuBefore = await procCpuMs(ctd.pid);
    const t: Timed = await timeOk(`ctr images pull ${image.ref}`, "ctr", ["-a", ctd.sock, "images", "pull", "--plain-http", image.ref], {
      rss: true,
      // ctr fetches every blob before it starts unpacking.
      marks: { downloaded: /unpacking/ },
      timeoutMs: opts.timeoutMs,
    });
    const after = await procMemory(ctd.pid);
    const daemonCpu = (await procCpuMs(ctd.pid)) - daemonCpuBefore;
    const snapshots = (await ctd.ctr(["snapshots", "ls"])).stdout.trim().split("\n").length - 1;
    if (snapshots < image.layers) throw new Error(`ctr images pull left ${snapshots} snapshots for ${image.layers} layers: it did not unpack`);
    if (i >= 0) log(`  round ${i + 1}: ctr pull   ${fmtS(t.ms)}`);
    return {
      ms: t.ms,
      downloadedMs: t.marks.downloaded,
      clientRssKb: t.maxRssKb,
      cpuMs: t.cpuMs === undefined ? undefined : t.cpuMs + daemonCpu,
      daemonPeakKb: peakReset ? after.hwmKb : undefined,
      daemonGrowthKb: after.rssKb - before.rssKb,
      diskKb: await duKb(join(ctd.dir, "root")),
    };
  };
  log(`cold pull of ${image.ref}: ${opts.rounds} round(s), alternating`);
  const out = await alternate(opts.rounds, 0, tsctrPull, ctrPull);
  await removeTree(join(base, "pull"));
  await ctd.clean();
  return out;
}

/** The issue's memory target: peak RSS of a pull of a 1 GB image, in bytes (pull's own default settings). */
const BIG_PULL_RSS_LIMIT_BYTES = 100e6;

/** One cold tsctr pull of the 1 GB image, with its pull arguments; returns its time and peak RSS. */
async function bigPull(exe: string, image: FixtureImage, base: string, opts: Options): Promise<Timed> {
  const root = join(base, "big", "root");
  const state = join(base, "big", "state");
  await removeTree(join(base, "big"));
  await dropCaches();
  log(`cold pull of the 1 GB image ${image.ref} (tsctr only: peak RSS)`);
  const t = await timeOk(`tsctr pull ${image.ref}`, ...tsctrCmd(exe, root, state, ["pull", "--plain-http", ...opts.pullArgs, image.ref]), { rss: true, timeoutMs: opts.timeoutMs });
  log(`  tsctr pull ${fmtS(t.ms)}, peak RSS ${fmtMB(t.maxRssKb)} (MiB)`);
  await removeTree(join(base, "big"));
  return t;
}

async function startups(exe: string, runs: number): Promise<Pair[]> {
  log(`start-up: ${runs} pairs of 'tsctr version' and 'ctr --version'`);
  const opts = { timeoutMs: 30_000 };
  return alternate(
    runs,
    3,
    async () => (await timeOk("tsctr version", exe, ["version"], opts)).ms,
    async () => (await timeOk("ctr --version", "ctr", ["--version"], opts)).ms,
  );
}

/** Start-up with a cold page cache (the executable read from disk again): `n` pairs, caches dropped before each. */
async function coldStartups(exe: string, n: number): Promise<Pair[]> {
  log(`cold start-up: ${n} pairs of 'tsctr version' and 'ctr --version' after drop_caches`);
  const opts = { timeoutMs: 30_000 };
  return alternate(
    n,
    0,
    async () => (await dropCaches(), (await timeOk("tsctr version", exe, ["version"], opts)).ms),
    async () => (await dropCaches(), (await timeOk("ctr --version", "ctr", ["--version"], opts)).ms),
  );
}

async function runs(exe: string, ctd: PrivateContainerd, busybox: FixtureImage, base: string, n: number): Promise<Pair[]> {
  const root = join(base, "run", "root");
  const state = join(base, "run", "state");
  log(`run: pulling ${busybox.ref} into both, then ${n} pairs of 'run --rm … true'`);
  await timeOk("tsctr pull busybox", ...tsctrCmd(exe, root, state, ["pull", "--plain-http", busybox.ref]), { timeoutMs: 60_000 });
  await timeOk("ctr images pull busybox", "ctr", ["-a", ctd.sock, "images", "pull", "--plain-http", busybox.ref], { timeoutMs: 60_000 });
  const opts = { timeoutMs: 30_000 };
  // --net none: like ctr run without --cni (a network namespace of its own, no bridge)
  const pairs = await alternate(
    n,
    2,
    async (i) => (await timeOk("tsctr run --rm", ...tsctrCmd(exe, root, state, ["run", "--rm", "--net", "none", busybox.ref, `bench-t${i + 2}`, "true"]), opts)).ms,
    async (i) => (await timeOk("ctr run --rm", "ctr", ["-a", ctd.sock, "run", "--rm", busybox.ref, `bench-c${i + 2}`, "true"], opts)).ms,
  );
  await removeTree(join(base, "run"));
  await ctd.clean();
  return pairs;
}

// ---- the report ----

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
function fmtMs(ms: number): string {
  return `${ms.toFixed(1)} ms`;
}
function fmtMB(kb: number | undefined): string {
  return kb === undefined || Number.isNaN(kb) ? "-" : `${(kb / 1024).toFixed(0)} MB`;
}
function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : "-";
}

/** Pairs of one numeric field, skipping rounds where either side lacks it. */
function field(samples: { tsctr: PullSample; containerd: PullSample }[], f: (s: PullSample) => number | undefined): Pair[] {
  return samples.flatMap((p) => {
    const t = f(p.tsctr);
    const c = f(p.containerd);
    return t === undefined || c === undefined ? [] : [{ tsctr: t, containerd: c }];
  });
}

interface Row {
  label: string;
  tsctr: string;
  containerd: string;
  ratio: string;
  target: string;
}

function table(rows: Row[]): string {
  const head: Row = { label: "", tsctr: "tsctr", containerd: "containerd/ref", ratio: "tsctr/other", target: "target" };
  const all = [head, ...rows];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) =>
    `  ${r.label.padEnd(w("label"))}  ${r.tsctr.padStart(w("tsctr"))}  ${r.containerd.padStart(w("containerd"))}  ${r.ratio.padStart(w("ratio"))}  ${r.target}`.trimEnd();
  return [line(head), `  ${"-".repeat(line(head).length - 2)}`, ...rows.map(line)].join("\n");
}

function verdict(ratio: number, limit: number): string {
  return `≤ ${limit.toFixed(2)}× ${ratio <= limit ? "(met)" : "(missed)"}`;
}

/** For rates (MB/s), where higher is better. */
function verdictAtLeast(ratio: number, limit: number): string {
  return `≥ ${limit.toFixed(2)}× ${ratio >= limit ? "(met)" : "(missed)"}`;
}

function fmtRate(mbps: number): string {
  return Number.isFinite(mbps) ? `${mbps.toFixed(0)} MB/s` : "-";
}

// ---- the engine micro-figures ----

async function microBench(opts: Options, base: string): Promise<MicroResults> {
  let corpus: EngineCorpus;
  if (opts.engineCorpus === "usr") {
    corpus = await usrCorpus(join(base, "engine-corpus"), opts.quick ? 24 : 200, log);
  } else {
    const layer = (await devbenchLayers(log)).find((l) => l.name === opts.engineCorpus);
    if (!layer) throw new Error(`devbench has no layer "${opts.engineCorpus}"`);
    corpus = layerCorpus(layer);
  }
  return engineMicro({ rounds: opts.microRounds, extractRounds: opts.extractRounds, scratch: join(base, "extract"), corpus, extractWorkers: pullWorkers(opts), log });
}

/** The report rows of the engine figures: tsctr's engine, then the reference, both in MB/s. */
function microRows(m: MicroResults): Row[] {
  const row = (label: string, t: ThroughputResult): Row => ({
    label: `${label} (N=${t.rounds.length})`,
    tsctr: fmtRate(t.medianMBps.tsctr),
    containerd: fmtRate(t.medianMBps.reference),
    ratio: fmtRatio(t.medianRatio),
    target: t.target === undefined ? "" : verdictAtLeast(t.medianRatio, t.target),
  });
  return [
    { label: "engines, MB/s of tar (vs reference)", tsctr: "", containerd: "", ratio: "", target: "" },
    row("  inflate: WASM vs node:zlib", m.inflate),
    row("  SHA-256: WASM vs node:crypto", m.sha256),
    row("  extract: native engine vs GNU tar", m.extract.native),
    row("  extract: WASM engine vs GNU tar", m.extract.wasm),
  ];
}

/** The lines under the table that say what the engine rows measured. */
function microNotes(m: MicroResults): string[] {
  const c = m.corpus;
  const lines = [
    `  engine corpus: ${c.name}: ${(c.gzBytes / 1e6).toFixed(1)} MB gzip, ${(c.tarBytes / 1e6).toFixed(1)} MB tar, ${c.entries} entries (${c.gzFile})`,
    `  engine rows: second column is the reference (node:zlib, node:crypto, GNU tar); the ratio is the median of`,
    `  per-round tsctr/reference MB/s ratios, so ≥ 1.00× means tsctr is at least as fast. inflate: ${m.inflate.tsctrName}`,
    `  vs ${m.inflate.referenceName}, both fed ${m.inflate.inputChunk / 1024} KiB chunks from memory; SHA-256: ${m.sha256.tsctrName}`,
    `  (--digest-engine wasm; the default is node:crypto) vs ${m.sha256.referenceName}, ${m.sha256.chunk / 1024} KiB chunks;`,
    `  extract: a layer as pull extracts it (${m.extract.workers > 0 ? `decompressed in the bench process, diffID by ${m.extract.digestEngine} and files on ${m.extract.workers} worker(s)` : `all in the bench process, diffID by ${m.extract.digestEngine}`}) vs \`tar -xzf\` (${m.extract.gnuTar}),`,
    `  into a fresh directory on the same filesystem, order rotating, sync + drop_caches before each (after one`,
    `  untimed extraction per engine).`,
    "  extraction rounds:",
  ];
  m.extract.rounds.forEach((r, i) => {
    lines.push(
      `    ${String(i + 1).padStart(2)} (${r.order.join(", ")}): GNU tar ${fmtS(r.gnuTarMs)}, native ${fmtS(r.nativeMs)} (${fmtRatio(r.gnuTarMs / r.nativeMs)}), wasm ${fmtS(r.wasmMs)} (${fmtRatio(r.gnuTarMs / r.wasmMs)})`,
    );
  });
  return lines;
}

async function writeResults(started: Date, result: object): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const json = JSON.stringify(result, null, 2) + "\n";
  await writeFile(join(RESULTS_DIR, `${stamp}.json`), json);
  await writeFile(join(RESULTS_DIR, "latest.json"), json);
  return `  results: ${join(RESULTS_DIR, "latest.json")} (and ${stamp}.json); fixture cache: ${BENCH_CACHE}`;
}

/** `--micro-only`: the engine figures alone. */
async function microOnly(opts: Options, started: Date, base: string): Promise<void> {
  const m = await microBench(opts, base);
  const lines = [
    "",
    `tsctr engine figures, ${started.toISOString()}`,
    `  ${cpus().length} CPUs; node ${process.versions.node}`,
    "",
    table(microRows(m)),
    "",
    ...microNotes(m),
  ];
  const where = await writeResults(started, {
    started: started.toISOString(),
    machine: { cpus: cpus().length, node: process.versions.node },
    options: { quick: opts.quick, microRounds: opts.microRounds, extractRounds: opts.extractRounds, engineCorpus: opts.engineCorpus, microOnly: true },
    engine: m,
  });
  lines.push("", where);
  process.stdout.write(lines.join("\n") + "\n");
}

async function main(): Promise<void> {
  const opts = options();
  await preflight(opts);
  const started = new Date();

  const base = await mkdtemp(join(tmpdir(), "tsctr-bench-"));
  onCleanup(() => removeTree(base));
  if (opts.microOnly) return microOnly(opts, started, base);
  // A private copy: another build rewriting dist/ cannot change the executable half-way through.
  const exe = join(base, "tsctr");
  await copyFile(opts.exe, exe);
  const version = (await execFile(exe, ["version"])).stdout;
  const revision = /Revision:\s*(\S+)/.exec(version)?.[1] ?? "?";

  log("starting docker-registry");
  const reg = await startRegistry();
  onCleanup(() => reg.stop());
  const busybox = await serveBusybox(reg);
  const pullImage = opts.quick ? busybox : await serveDevbench(reg, log);
  const imageName = opts.quick ? "busybox" : "devbench";

  log("starting a private containerd");
  const ctd = await startContainerd(join(base, "containerd"));
  onCleanup(() => ctd.stop());
  const ctrVersion = ((await execFile("ctr", ["--version"])).stdout.trim().split(/\s+/).pop() ?? "?") || "?";

  const startup = await startups(exe, opts.startupRuns);
  const coldStartup = await coldStartups(exe, Math.max(3, opts.rounds));
  const run = await runs(exe, ctd, busybox, base, opts.runRuns);
  const pulls = await coldPulls(exe, ctd, pullImage, base, opts);
  const big = opts.quick ? undefined : await bigPull(exe, await serveBigImage(reg, log), base, opts);
  const micro = await microBench(opts, base);

  // ---- report ----
  const pairRow = (label: string, pairs: Pair[], fmt: (x: number) => string, target?: number): Row => {
    const r = median(ratios(pairs));
    return {
      label,
      tsctr: fmt(median(pairs.map((p) => p.tsctr))),
      containerd: fmt(median(pairs.map((p) => p.containerd))),
      ratio: fmtRatio(r),
      target: target === undefined ? "" : verdict(r, target),
    };
  };
  const pullMs = field(pulls, (s) => s.ms);
  const downloaded = field(pulls, (s) => s.downloadedMs);
  const afterDownload = field(pulls, (s) => (s.downloadedMs === undefined ? undefined : s.ms - s.downloadedMs));
  const clientRss = field(pulls, (s) => s.clientRssKb);
  const daemonPeak = pulls.map((p) => p.containerd.daemonPeakKb).filter((x): x is number => x !== undefined);
  const daemonGrowth = pulls.map((p) => p.containerd.daemonGrowthKb).filter((x): x is number => x !== undefined);
  const combined = field(pulls, (s) => (s.daemonPeakKb === undefined ? s.clientRssKb : s.clientRssKb === undefined ? undefined : s.clientRssKb + s.daemonPeakKb));
  const disk = field(pulls, (s) => s.diskKb);
  const cpu = field(pulls, (s) => s.cpuMs);

  const rows: Row[] = [
    pairRow(`cold pull ${imageName} (N=${pulls.length})`, pullMs, fmtS, opts.quick ? undefined : 0.6),
    pairRow("  until all blobs downloaded", downloaded, fmtS),
    pairRow("  from there to the end", afterDownload, fmtS),
    pairRow("  peak RSS, client", clientRss, fmtMB),
    {
      label: "  peak RSS, containerd daemon",
      tsctr: "",
      containerd: fmtMB(median(daemonPeak)),
      ratio: "",
      target: daemonGrowth.length ? `(daemon RSS growth: median ${fmtMB(median(daemonGrowth))})` : "",
    },
    pairRow("  peak RSS, client + daemon", combined, fmtMB),
    pairRow("  disk used after the pull", disk, fmtMB),
    pairRow("  CPU time, user + sys (ctr + daemon)", cpu, fmtS),
    ...(big === undefined
      ? []
      : [{
        label: "peak RSS, pull of a 1 GB image (N=1)",
        // In the target's unit (10^6 bytes), not the MiB of the other RSS rows.
        tsctr: big.maxRssKb === undefined ? "-" : `${((big.maxRssKb * 1024) / 1e6).toFixed(0)} MB`,
        containerd: "",
        ratio: "",
        target: big.maxRssKb === undefined ? "" : `≤ 100 MB of 10^6 bytes ${big.maxRssKb * 1024 <= BIG_PULL_RSS_LIMIT_BYTES ? "(met)" : "(missed)"}`,
      }]),
    pairRow(`start-up: version (N=${startup.length})`, startup, fmtMs),
    pairRow(`start-up after drop_caches (N=${coldStartup.length})`, coldStartup, fmtMs),
    pairRow(`run --rm busybox true (N=${run.length})`, run, fmtMs, 1.0),
    ...microRows(micro),
  ];

  const img = pullImage;
  const lines: string[] = [];
  lines.push("");
  lines.push(`tsctr benchmark, ${started.toISOString()}`);
  lines.push(`  tsctr ${revision} (${opts.exe}${opts.pullArgs.length ? `; pull ${opts.pullArgs.join(" ")}` : ""}); containerd ${ctd.version || ctrVersion}, ctr ${ctrVersion}; ${cpus().length} CPUs; node ${process.versions.node}`);
  lines.push(
    `  ${imageName}: ${img.layers} layer(s), ${(img.compressedBytes / 1e6).toFixed(1)} MB compressed` +
      (img.tarBytes !== undefined ? `, ${(img.tarBytes / 1e6).toFixed(1)} MB uncompressed, ${img.entries} entries (${(img.fileBytes! / 1e6).toFixed(1)} MB of file data)` : ""),
  );
  lines.push(`  medians; the ratio is the median of per-round ratios tsctr/containerd (order alternates every round)`);
  lines.push("");
  lines.push(table(rows));
  lines.push("");
  lines.push("  all blobs downloaded: tsctr's last blob \"done\" line, ctr's \"unpacking\" line (ctr unpacks only after");
  lines.push("  fetching everything; a streamed tsctr extracts while it downloads). Cold pulls and the second start-up row");
  lines.push("  run after sync + drop_caches, so they include reading each executable from disk.");
  lines.push("");
  lines.push(`  cold pull rounds (${imageName}):`);
  pulls.forEach((p, i) => {
    const first = i % 2 === 0 ? "tsctr first" : "ctr first";
    const t = p.tsctr;
    const c = p.containerd;
    lines.push(
      `    ${String(i + 1).padStart(2)} (${first}): tsctr ${fmtS(t.ms)} [downloaded at ${t.downloadedMs === undefined ? "-" : fmtS(t.downloadedMs)}, ${fmtMB(t.clientRssKb)}]` +
        `  containerd ${fmtS(c.ms)} [downloaded at ${c.downloadedMs === undefined ? "-" : fmtS(c.downloadedMs)}, ctr ${fmtMB(c.clientRssKb)}, daemon ${fmtMB(c.daemonPeakKb)}]` +
        `  ratio ${fmtRatio(t.ms / c.ms)}`,
    );
  });
  const spread = (pairs: Pair[], fmt: (x: number) => string) =>
    `tsctr ${fmt(min(pairs.map((p) => p.tsctr)))}…${fmt(max(pairs.map((p) => p.tsctr)))}, containerd ${fmt(min(pairs.map((p) => p.containerd)))}…${fmt(max(pairs.map((p) => p.containerd)))}, ratios ${fmtRatio(min(ratios(pairs)))}…${fmtRatio(max(ratios(pairs)))}`;
  lines.push(`  start-up range: ${spread(startup, fmtMs)}`);
  lines.push(`  run range:      ${spread(run, fmtMs)}`);
  lines.push("");
  lines.push(...microNotes(micro));

  const result = {
    started: started.toISOString(),
    tsctr: { exe: opts.exe, revision },
    containerd: { version: ctd.version, ctr: ctrVersion },
    machine: { cpus: cpus().length, node: process.versions.node },
    options: {
      rounds: opts.rounds,
      quick: opts.quick,
      startupRuns: opts.startupRuns,
      runRuns: opts.runRuns,
      microRounds: opts.microRounds,
      extractRounds: opts.extractRounds,
      engineCorpus: opts.engineCorpus,
    },
    image: { name: imageName, ...img },
    coldPull: { rounds: pulls, medianRatio: median(ratios(pullMs)), target: 0.6 },
    bigPull: big === undefined ? undefined : { ms: big.ms, maxRssKb: big.maxRssKb, targetBytes: BIG_PULL_RSS_LIMIT_BYTES },
    startup: { pairsMs: startup, medianRatio: median(ratios(startup)) },
    coldStartup: { pairsMs: coldStartup, medianRatio: median(ratios(coldStartup)) },
    run: { pairsMs: run, medianRatio: median(ratios(run)), target: 1.0 },
    engine: micro,
  };
  const where = await writeResults(started, result);
  lines.push("");
  lines.push(where);
  process.stdout.write(lines.join("\n") + "\n");
}

try {
  await main();
  await cleanupAll();
} catch (e) {
  await cleanupAll();
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`bench: ${e instanceof UsageError ? "" : "failed: "}${msg}\n`);
  if (process.env.BENCH_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
}

