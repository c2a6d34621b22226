/**
 * Timing helpers for the benchmark: run a command as its own process group with a deadline, take its
 * wall time (and, through /usr/bin/time, its peak RSS), note when chosen output lines first appear, and
 * turn samples into medians and per-pair ratios.
 *
 *   const t = await timeCommand("ctr", ["-a", sock, "images", "pull", ref], { rss: true, marks: { unpack: /unpacking/ } });
 *   t.ms; t.maxRssKb; t.marks.unpack;   // ms from start until "unpacking" was printed
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { lastLines } from "../helpers/text.ts";

export { lastLines };

export const TIME_BIN = "/usr/bin/time";

export interface Timed {
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  /** Peak resident set size of the command in KiB (only with `rss`). */
  maxRssKb?: number;
  /** CPU time of the command and its children, user + system, in milliseconds (only with `rss`). */
  cpuMs?: number;
  code: number;
  /** For each mark: ms from spawn until its pattern first (or, for lastMarks, last) matched the output. */
  marks: Record<string, number>;
  /** The last few KiB of stdout and stderr, for error messages. */
  tail: string;
}

export interface TimeOptions {
  /** Wrap in /usr/bin/time to get the peak RSS. */
  rss?: boolean;
  /** Patterns looked for in stdout and stderr; the first match time of each is recorded. */
  marks?: Record<string, RegExp>;
  /** Like marks, but the time of the last match is recorded. */
  lastMarks?: Record<string, RegExp>;
  /** Kill the command (its whole process group) after this long. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Children still running, so that an interrupted benchmark can kill them. */
const running = new Set<ChildProcess>();

/** Kills every command this module started that is still running (their process groups). */
export function killRunning(): void {
  for (const child of running) killGroup(child);
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

let rssDir: string | undefined;

/** Runs `cmd args` once and measures it. Never throws for a non-zero exit (see `code`); throws on timeout. */
export async function timeCommand(cmd: string, args: string[], opts: TimeOptions = {}): Promise<Timed> {
  let file = cmd;
  let argv = args;
  let rssFile: string | undefined;
  if (opts.rss) {
    rssDir ??= await mkdtemp(join(tmpdir(), "tsctr-bench-time-"));
    rssFile = join(rssDir, `${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(rssFile, "");
    file = TIME_BIN;
    argv = ["-f", "%e %M %U %S", "-o", rssFile, "--", cmd, ...args];
  }
  const marks: Record<string, number> = {};
  const patterns = Object.entries(opts.marks ?? {});
  const lastPatterns = Object.entries(opts.lastMarks ?? {});
  let tail = "";
  let carry = "";
  const t0 = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e6;
  // Detached: its own process group, so a deadline or Ctrl-C kills everything it started.
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"], detached: true, env: opts.env ?? process.env });
  running.add(child);
  const onData = (b: Buffer) => {
    const s = b.toString("latin1");
    tail = (tail + s).slice(-4096);
    if (patterns.length + lastPatterns.length > 0) {
      const text = carry + s;
      for (const [name, re] of patterns) if (marks[name] === undefined && re.test(text)) marks[name] = elapsed();
      // Only the new bytes for last-matches, so a match in the carried tail is not counted twice.
      for (const [name, re] of lastPatterns) if (re.test(s)) marks[name] = elapsed();
      carry = s.slice(-256);
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  let timedOut = false;
  const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), killGroup(child)), opts.timeoutMs) : undefined;
  const code = await new Promise<number>((resolve, reject) => {
    child.once("error", (e) => reject(new Error(`cannot run ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "not installed" : e.message}`)));
    child.once("close", (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  }).finally(() => {
    running.delete(child);
    if (timer) clearTimeout(timer);
  });
  const ms = elapsed();
  if (timedOut) throw new Error(`${cmd} ${args.join(" ")}: killed after ${(opts.timeoutMs! / 1000).toFixed(0)} s (raise --timeout)`);
  const result: Timed = { ms, code, marks, tail };
  if (rssFile) {
    const text = await readFile(rssFile, "utf8").catch(() => "");
    await rm(rssFile, { force: true });
    // /usr/bin/time writes "Command exited with non-zero status N" before the format line on failure.
    const m = /(\d+(?:\.\d+)?) (\d+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)\s*$/.exec(text.trim());
    if (m) {
      result.maxRssKb = Number(m[2]);
      result.cpuMs = (Number(m[3]) + Number(m[4])) * 1000;
    }
  }
  return result;
}

/** Like timeCommand, but throws with the command's output when it exits non-zero. */
export async function timeOk(what: string, cmd: string, args: string[], opts: TimeOptions = {}): Promise<Timed> {
  const t = await timeCommand(cmd, args, opts);
  if (t.code !== 0) throw new Error(`${what} failed (exit ${t.code}): ${lastLines(t.tail)}`);
  return t;
}


/** Writes back dirty pages and drops the page, dentry and inode caches, so the next run starts cold. */
export async function dropCaches(): Promise<void> {
  const s = await timeCommand("sync", []);
  if (s.code !== 0) throw new Error("sync failed");
  await writeFile("/proc/sys/vm/drop_caches", "3\n");
}

/** Whether /proc/sys/vm/drop_caches can be written (root, and not a read-only /proc). */
export function canDropCaches(): boolean {
  return existsSync("/proc/sys/vm/drop_caches");
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function min(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.min(...xs);
}

export function max(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.max(...xs);
}

/** One alternated pair: tsctr's and containerd's figure from the same round. */
export interface Pair {
  tsctr: number;
  containerd: number;
}

/** tsctr / containerd for each pair. */
export function ratios(pairs: readonly Pair[]): number[] {
  return pairs.map((p) => p.tsctr / p.containerd);
}

/** VmRSS and VmHWM (peak) of a process, in KiB. */
export async function procMemory(pid: number): Promise<{ rssKb: number; hwmKb: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/**
 * CPU time a running process and its finished children (containerd's unpigz) have used so far, user +
 * system, in milliseconds (clock ticks of 10 ms).
 */
export async function procCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
  // utime, stime, cutime, cstime are fields 14–17 of proc(5).
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

/** Resets a process's VmHWM to its current RSS (clear_refs 5), so the next read shows the peak since now. */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, "5\n");
    return true;
  } catch {
    return false;
  }
}

/** Cleans up the scratch directory of /usr/bin/time outputs. */
export async function cleanupMeasure(): Promise<void> {
  if (rssDir) await rm(rssDir, { recursive: true, force: true });
  rssDir = undefined;
}
