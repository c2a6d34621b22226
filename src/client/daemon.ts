/**
 * `tsctr daemon`: the restart supervisor. On start it brings back the containers whose restart policy says
 * so (after a reboot `<state>` is empty and only `<root>` is left: startContainer rebuilds bundle, mounts and
 * network from the kept spec), then watches every task directory for new exits (one stat of `exit.json` per
 * container per poll) and starts containers again with Docker's rules and back-off. One daemon per root
 * (a lock); containers do not depend on it: it never stops one, and every other command works without it.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Context, type GlobalOptions } from "./context.ts";
import { emitEvent } from "./events.ts";
import { RESTART_LABEL, nextRestartDelay, parseRestartPolicy, shouldRestart, shouldStartWithDaemon, type RestartPolicy } from "./restart_policy.ts";
import { inspectContainer, startContainer } from "./tasks.ts";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { acquireLock, lockOwner } from "../platform/lock.ts";
import { TASK_FILES, readRestarts, readTaskExit, readTaskInfo, taskFile, wasStopped, writeRestarts, type TaskExit } from "../runtime/mod.ts";

export interface DaemonOptions extends GlobalOptions {
  /** Supervise every namespace under the root, not only `namespace`. */
  allNamespaces?: boolean;
  /** How often task directories are looked at (default 500 ms). */
  pollMs?: number;
  /** Ends the daemon (SIGTERM/SIGINT); running containers are left running. */
  signal: AbortSignal;
  /** One line per thing done (a restart, a failed start). */
  log?: (line: string) => void;
}

/** The daemon's lock file under `root`. */
export function daemonLockPath(root: string): string {
  return join(root, "locks", "daemon");
}

/** A restart to do: after `delayMs`, for the exit `exit` (none when it was running at a reboot). */
interface RestartPlan {
  policy: RestartPolicy;
  exit: TaskExit | undefined;
  delayMs: number;
  /** Give up if the container is marked stopped on purpose by then. */
  honorStop: boolean;
}

/** What the daemon remembers of one container between polls. */
interface Watched {
  /** exit.json's mtime when last looked at (0: none). */
  exitMtime: number;
  /** The last back-off delay (Docker's restart manager timeout). */
  delayMs: number;
  /** A restart is pending or under way. */
  busy: boolean;
}

/**
 * Runs the supervisor until `opts.signal` aborts. FailedPrecondition (naming the owner's PID) when another
 * daemon supervises the same root. Resolves once pending restarts are cancelled and any start under way has
 * finished; never stops a container.
 */
export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const lockPath = daemonLockPath(opts.root);
  const release = await acquireLock(lockPath, { timeoutMs: 0 }).catch(async () => {
    const owner = (await lockOwner(lockPath))?.split(" ")[0] ?? "?";
    throw errorOf("FailedPrecondition", `daemon: another tsctr daemon (pid ${owner}) supervises ${opts.root}`);
  });
  const daemon = new Supervisor(opts);
  try {
    for (let boot = true; !opts.signal.aborted; boot = false) {
      if (!boot) await sleep(opts.pollMs ?? 500, undefined, { signal: opts.signal }).catch(() => {});
      if (!opts.signal.aborted) await daemon.pass(boot).catch((e: unknown) => opts.log?.(`poll: ${(e as Error).message}`));
    }
    await daemon.drain();
  } finally {
    await daemon.close();
    await release();
  }
}

class Supervisor {
  readonly #opts: DaemonOptions;
  readonly #contexts = new Map<string, Context>();
  readonly #watched = new Map<string, Watched>();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
  }

  /** One look at every task directory: on the first (`boot`), every container; later, those whose exit.json changed. */
  async pass(boot: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const ns of await this.#namespaces()) {
      let ctx: Context;
      try {
        ctx = this.#context(ns);
      } catch {
        continue; // not a namespace (a stray directory under tasks/)
      }
      for (const id of await listDir(join(this.#opts.root, "tasks", ns))) {
        const key = `${ns}/${id}`;
        seen.add(key);
        const mtime = await stat(taskFile(ctx.taskDir(id), TASK_FILES.exit)).then((s) => s.mtimeMs, () => 0);
        let w = this.#watched.get(key);
        if (!w) this.#watched.set(key, (w = { exitMtime: -1, delayMs: 0, busy: false }));
        if (w.busy || (!boot && w.exitMtime === mtime)) continue;
        w.exitMtime = mtime;
        await this.#consider(ctx, id, w, boot).catch((e: unknown) => this.#log(`${key}: ${(e as Error).message}`));
      }
    }
    for (const key of this.#watched.keys()) if (!seen.has(key) && !this.#watched.get(key)!.busy) this.#watched.delete(key);
  }

  /** Waits for restarts under way (pending back-offs are cancelled by the abort). */
  async drain(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }

  async close(): Promise<void> {
    for (const ctx of this.#contexts.values()) await ctx.close();
  }

  async #namespaces(): Promise<string[]> {
    return this.#opts.allNamespaces ? listDir(join(this.#opts.root, "tasks")) : [this.#opts.namespace];
  }

  #context(ns: string): Context {
    let ctx = this.#contexts.get(ns);
    if (!ctx) this.#contexts.set(ns, (ctx = new Context({ ...this.#opts, namespace: ns })));
    return ctx;
  }

  #log(line: string): void {
    this.#opts.log?.(line);
  }

  /** Decides on a container that is not known to run: an exit not yet handled, or (at boot) Docker's start rule. */
  async #consider(ctx: Context, id: string, w: Watched, boot: boolean): Promise<void> {
    const record = (await ctx.metadata()).getContainer(ctx.namespace, id);
    const policyText = record?.labels[RESTART_LABEL];
    if (!record || policyText === undefined) return;
    const policy = parseRestartPolicy(policyText);
    if (policy.name === "no") return;
    const taskDir = ctx.taskDir(id);
    const [info, exit, stopped, restarts] = await Promise.all([readTaskInfo(taskDir), readTaskExit(taskDir), wasStopped(taskDir), readRestarts(taskDir)]);
    if (!info) {
      // Never started detached, or a start is under way whose exit came before its start record: look again.
      if (exit) w.exitMtime = -1;
      return;
    }
    const status = await inspectContainer(ctx, id);
    if (status.status === "running" || status.status === "paused") return;
    const unhandled = exit !== undefined && exit.exitedAt !== restarts.handledExit;
    if (unhandled && shouldRestart(policy, exit.status, restarts.count, stopped)) {
      const ranMs = Date.parse(exit.exitedAt) - Date.parse(info.startedAt);
      w.delayMs = nextRestartDelay(w.delayMs, Number.isFinite(ranMs) ? ranMs : 0);
      this.#schedule(ctx, id, w, { policy, exit, delayMs: w.delayMs, honorStop: true });
    } else if (boot && shouldStartWithDaemon(policy, stopped)) {
      // Docker's rule at daemon start (`always` even after an explicit stop): the policy has decided already.
      this.#schedule(ctx, id, w, { policy, exit, delayMs: 0, honorStop: false });
    } else if (unhandled) {
      await writeRestarts(taskDir, { ...restarts, handledExit: exit.exitedAt });
    }
  }

  #schedule(ctx: Context, id: string, w: Watched, plan: RestartPlan): void {
    w.busy = true;
    const job = this.#restart(ctx, id, w, plan).finally(() => {
      w.busy = false;
      this.#inFlight.delete(job);
    });
    this.#inFlight.add(job);
  }

  /** After `delayMs`, starts the container unless it was stopped on purpose or started meanwhile; retries a failed start by the policy. */
  async #restart(ctx: Context, id: string, w: Watched, plan: RestartPlan): Promise<void> {
    const { policy, exit } = plan;
    let delayMs = plan.delayMs;
    const taskDir = ctx.taskDir(id);
    const key = `${ctx.namespace}/${id}`;
    for (;;) {
      const aborted = await sleep(delayMs, false, { signal: this.#opts.signal }).catch(() => true);
      if (aborted) return;
      const restarts = await readRestarts(taskDir);
      const done = { count: restarts.count, handledExit: exit?.exitedAt ?? restarts.handledExit };
      if (!(await ctx.metadata()).getContainer(ctx.namespace, id)) return; // removed meanwhile
      try {
        // Not started: it was started by hand meanwhile, or (with honorStop) stopped on purpose during the back-off.
        if (!(await startContainer(ctx, id, { supervised: { honorStop: plan.honorStop } }))) return;
        await writeRestarts(taskDir, { ...done, count: done.count + 1 });
        await emitEvent(ctx, "restart", id);
        this.#log(`${key}: restarted (${policy.name}, restart ${done.count + 1})`);
        w.exitMtime = -1; // look at it again on the next pass
        return;
      } catch (e) {
        this.#log(`${key}: restart failed: ${(e as Error).message}`);
        if (!(await ctx.metadata()).getContainer(ctx.namespace, id)) return;
        await writeRestarts(taskDir, { ...done, count: done.count + 1 });
        if (!shouldRestart(policy, 255, done.count + 1, await wasStopped(taskDir))) return;
        w.delayMs = delayMs = nextRestartDelay(w.delayMs, 0);
      }
    }
  }
}

/** The entries of a directory; none when it does not exist. */
async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return [];
    throw e;
  }
}
