/**
 * Start-up time: `tsctr version` from the amd64 single executable and from source on Node (type stripping).
 * Prints the median of N runs each, after a warm-up. The goal for the executable is well under 100 ms.
 *
 *   node test/bench/startup.ts [N]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import process from "node:process";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const WARMUP = 3;

/** One way to start tsctr: a label and the command line. */
export interface StartupCase {
  name: string;
  cmd: string;
  args: string[];
}

export interface StartupResult {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** The cases this benchmark compares; the executable only when it has been built. */
export function startupCases(): StartupCase[] {
  const cases: StartupCase[] = [];
  const exe = path.join(ROOT, "dist", "tsctr-linux-amd64");
  if (process.arch === "x64" && existsSync(exe)) {
    cases.push({ name: "dist/tsctr-linux-amd64 version", cmd: exe, args: ["version"] });
  } else {
    process.stderr.write("startup: dist/tsctr-linux-amd64 is missing or foreign here; run `npm run build` on amd64\n");
  }
  cases.push({ name: "node src/cli/main.ts version", cmd: process.execPath, args: [path.join(ROOT, "src", "cli", "main.ts"), "version"] });
  return cases;
}

/** Runs one case `runs` times (after a warm-up) and returns the wall-clock median. */
export function timeStartup(c: StartupCase, runs: number): StartupResult {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + runs; i++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(c.cmd, c.args, { stdio: ["ignore", "ignore", "pipe"] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 0) throw new Error(`${c.name}: exited ${res.status}: ${String(res.stderr).trim()}`);
    if (i >= WARMUP) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const median = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  return { name: c.name, runs, medianMs: median, minMs: times[0]!, maxMs: times[times.length - 1]! };
}

/** Runs every case and prints one line each. */
export function benchStartup(runs = 20): StartupResult[] {
  const results = startupCases().map((c) => timeStartup(c, runs));
  for (const r of results) {
    process.stdout.write(
      `startup: ${r.name.padEnd(34)} median ${r.medianMs.toFixed(1).padStart(6)} ms  (min ${r.minMs.toFixed(1)}, max ${r.maxMs.toFixed(1)}, N=${r.runs})\n`,
    );
  }
  return results;
}

if (import.meta.main) benchStartup(Number(process.argv[2] ?? 20));
