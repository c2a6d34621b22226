/**
 * The scheduling priority of the runtime's thread pool (libuv's "libuv-worker" threads, on Node).
 *
 * A pull inflates its gzip layers on the pool while the main thread hashes, parses and writes what they
 * produce: the main thread is the one everything waits on. On a device with two cores, three layers' inflates
 * plus the main thread are four runnable threads, and at equal priority the kernel gives the main thread only
 * its fair share: it spent 1.2–1.9 s of a devbench pull runnable but not running. With the pool threads a few
 * nice levels lower, the main thread runs whenever it can and the pool takes the rest of the CPU (and all of
 * it whenever the main thread waits), so the inflates still keep ahead. Linux keeps nice values per thread,
 * so this leaves the main thread, other processes and children alone; it can only lower priority, never raise it.
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import process from "node:process";

/** The nice value given to pool threads: low enough that the main thread wins a shared core (weight 110 vs 1024). */
export const POOL_NICE = 10;

/** This process's pool threads (by the name libuv gives them), from /proc; none where that cannot be read. */
function poolThreads(): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const t of tasks) {
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "libuv-worker") out.push(Number(t));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * Lowers every pool thread of this process to POOL_NICE (a thread already as low or lower keeps its value).
 * Call it once the pool has started (after the first piece of work was queued on it). Best effort:
 * returns how many threads were lowered by this call, 0 off Linux, without /proc, or where not permitted
 * (TSCTR_POOL_NICE=0 turns it off; another number is used instead of POOL_NICE).
 */
export function lowerPoolPriority(): number {
  if (process.platform !== "linux") return 0;
  const nice = niceSetting();
  if (nice === 0) return 0;
  let n = 0;
  for (const tid of poolThreads()) {
    try {
      if (os.getPriority(tid) >= nice) continue;
      os.setPriority(tid, nice);
      n++;
    } catch {
      // not permitted, or gone: it keeps its priority
    }
  }
  return n;
}

function niceSetting(): number {
  const v = process.env.TSCTR_POOL_NICE;
  if (v === undefined || v === "") return POOL_NICE;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 19 ? n : POOL_NICE;
}
