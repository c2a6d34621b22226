/**
 * Inter-process locks on one host without native addons: a lock is a file created with O_EXCL that holds
 * its owner's identity, "<pid> <start time>" (the start time from /proc/<pid>/stat tells a live owner from a
 * recycled PID). A lock whose owner is gone is stale and is taken over: the taker first holds a second lock
 * named after the stale content ("breaking" it), then removes the lock file only if it still holds that
 * content. While a lock's owner lives nobody else removes its file, so the check and the removal cannot be
 * split by another process; a taker that dies while breaking leaves a stale break lock, taken over the same way.
 *
 *   const release = await acquireLock(join(root, "locks", "blob-<hex>"));
 *   try { ... } finally { await release(); }
 */
import { readFileSync } from "node:fs";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import process from "node:process";
import { errorOf, isErrno } from "../errdefs/mod.ts";

/** Undoes an acquireLock; safe to call twice. */
export type Release = () => Promise<void>;

export interface LockOptions {
  /** Give up after this many milliseconds (default: wait as long as the owner lives). */
  timeoutMs?: number;
  /** Names the resource in the error when the wait times out. */
  what?: string;
  /** Called once when the lock is busy and the caller starts waiting. */
  onWait?: (owner: string) => void;
}

let selfId: string | undefined;

/** This process's lock identity, "<pid> <start time>". */
export function ownerId(): string {
  return (selfId ??= `${process.pid} ${startTime(process.pid) ?? 0}`);
}

/** True while the process named by an owner identity ("<pid> <start time>") still runs. */
export function ownerAlive(owner: string): boolean {
  const [pidText, startText] = owner.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const start = startTime(pid);
  if (start === undefined) return false;
  return startText === undefined || startText === "0" || String(start) === startText;
}

/** The owner identity written in lock file `path`, or undefined when there is no such lock. */
export async function lockOwner(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (e) {
    if (isErrno(e, "ENOENT")) return undefined;
    throw e;
  }
}

/** True when lock file `path` exists and its owner still runs. */
export async function lockHeld(path: string): Promise<boolean> {
  const owner = await lockOwner(path);
  return owner !== undefined && ownerAlive(owner);
}

/**
 * Takes the lock file at `path`, waiting (polling, 10 → 200 ms) while a live process holds it and taking it
 * over from a dead one. Locks are per process: a second acquire in the same process waits as well.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<Release> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const me = `${ownerId()} ${randomBytes(4).toString("hex")}`;
  await mkdir(dirname(path), { recursive: true });
  let delay = 10;
  let waited = false;
  for (;;) {
    if (await tryCreate(path, me)) return releaser(path, me);
    const owner = await lockOwner(path);
    if (owner !== undefined && !ownerAlive(owner)) {
      await breakStaleLock(path, owner, deadline);
      continue;
    }
    if (Date.now() >= deadline) throw errorOf("Unavailable", `lock ${opts.what ?? path}: held by process ${owner?.split(" ")[0] ?? "?"}`);
    if (!waited && owner !== undefined) opts.onWait?.(owner);
    waited = true;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(200, delay * 2);
  }
}

/** Runs `fn` while holding the lock at `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Creates the lock file whole: written beside it, then linked into place (link fails if it exists). */
async function tryCreate(path: string, me: string): Promise<boolean> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.new`;
  await writeFile(tmp, `${me}\n`);
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if (isErrno(e, "EEXIST")) return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Removes the lock file at `path` if it still holds `stale` (an owner known to be dead), holding the break
 * lock for that content meanwhile, so that of several takers exactly one removes it, and none removes a lock
 * created after it (by a taker that read the stale owner late). Exported for tests.
 */
export async function breakStaleLock(path: string, stale: string, deadline = Infinity): Promise<void> {
  const breaker = `${path}.${createHash("sha256").update(stale).digest("hex").slice(0, 16)}.break`;
  const timeoutMs = deadline === Infinity ? undefined : Math.max(0, deadline - Date.now());
  const release = await acquireLock(breaker, { timeoutMs, what: path });
  try {
    if ((await lockOwner(path)) === stale) await rm(path, { force: true });
  } finally {
    await release();
  }
}

function releaser(path: string, me: string): Release {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    if ((await lockOwner(path)) === me) await rm(path, { force: true });
  };
}

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined. */
function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
