/**
 * The lifecycle of a container's task (its running process): start detached under a monitor, status, stop,
 * kill, pause/resume, exec, processes. A container's task is runc's container of the same ID in the
 * namespace's runc root; its log, start and exit records live in the task directory (`Context.taskDir`).
 */
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { constants as osConstants } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "./context.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { errorOf, isKind } from "../errdefs/mod.ts";
import type { ContainerRecord } from "../metadata/mod.ts";
import { mountAll, unmount } from "../mount/mod.ts";
import {
  Runc,
  findRunc,
  forwardSignals,
  markStopped,
  mergeEnv,
  readExitHistory,
  readTaskExit,
  readTaskInfo,
  readRestarts,
  wasStopped,
  writeRestarts,
  resolveUser,
  startMonitored,
  writeBundle,
  type RuncListEntry,
  type Spec,
  type TaskExit,
  type TaskInfo,
} from "../runtime/mod.ts";
import { writeFileAtomic } from "../platform/durable.ts";
import { withLock } from "../platform/lock.ts";
import { eventsFile } from "./events.ts";
import { RESTART_LABEL } from "./restart_policy.ts";
import { disconnectNetwork, reconnectNetwork } from "./network.ts";

/** Where a container's task is: never started, running, frozen, or ended. */
export type TaskStatus = "created" | "running" | "paused" | "stopped";

/** A container record with the state of its task. */
export interface ContainerStatus {
  record: ContainerRecord;
  status: TaskStatus;
  /** The init process (host PID) while it runs. */
  pid?: number;
  /** When the task last started (the monitor's report, or runc's creation time). */
  startedAt?: string;
  /** How it last ended, when a monitor (or a foreground `run`) recorded it. */
  exit?: TaskExit;
  /** The process's args from the container's spec. */
  command: string[];
  /** How many times `tsctr daemon` restarted it since it was last started by hand. */
  restarts: number;
}

/** How long `stop` and `rm -f` wait for a killed task to be reaped before giving up. */
const KILL_WAIT_MS = 10_000;

/** The runc driver for the context's namespace. */
export async function openRunc(ctx: Context): Promise<Runc> {
  return new Runc({ binary: await findRunc(), root: ctx.runcRoot() });
}

/** The record of container `id`; NotFound when there is none in the namespace. */
export async function getContainerRecord(ctx: Context, id: string): Promise<ContainerRecord> {
  const rec = (await ctx.metadata()).getContainer(ctx.namespace, id);
  if (!rec) throw errorOf("NotFound", `container "${id}": not found in namespace ${ctx.namespace}`);
  return rec;
}

/** The container's spec: the durable copy in the task directory, else the bundle's; undefined when lost. */
async function readSpec(ctx: Context, id: string): Promise<Spec | undefined> {
  for (const path of [join(ctx.taskDir(id), "config.json"), join(ctx.bundleDir(id), "config.json")]) {
    try {
      return JSON.parse(await readFile(path, "utf8")) as Spec;
    } catch {
      // try the next copy
    }
  }
  return undefined;
}

/**
 * Starts the bundle's container detached under a monitor, keeping a durable copy of its spec (for `start`
 * after a reboot). On failure the task directory is removed again and nothing runs.
 */
export async function startDetached(ctx: Context, runc: Runc, id: string, bundle: string, opts: { logMaxSize?: number } = {}): Promise<TaskInfo> {
  const taskDir = ctx.taskDir(id);
  await mkdir(taskDir, { recursive: true, mode: 0o700 });
  try {
    await copyFile(join(bundle, "config.json"), join(taskDir, "config.json"));
    await markStopped(taskDir, false);
    return await startMonitored({ runc, id, bundle, taskDir, stateDir: ctx.state, fallbackDir: ctx.root, logMaxSize: opts.logMaxSize, events: { file: eventsFile(ctx), namespace: ctx.namespace } });
  } catch (e) {
    await rm(taskDir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

/** Records how a foreground `run` ended, so `ps -a` can show it like a monitored one. */
export async function recordForegroundExit(ctx: Context, id: string, status: number): Promise<void> {
  const exit: TaskExit = { pid: 0, status, exitedAt: new Date().toISOString() };
  await writeFileAtomic(join(ctx.taskDir(id), "exit.json"), JSON.stringify(exit) + "\n");
}

function statusOf(entry: Pick<RuncListEntry, "status" | "pid" | "created"> | undefined, info: TaskInfo | undefined, exit: TaskExit | undefined): Omit<ContainerStatus, "record" | "command" | "restarts"> {
  if (entry && (entry.status === "running" || entry.status === "paused" || entry.status === "created")) {
    // A monitor's exit record newer than runc's view wins: the init is gone, runc has not noticed yet.
    if (exit && info && Date.parse(exit.exitedAt) >= Date.parse(info.startedAt)) return { status: "stopped", exit, startedAt: info.startedAt };
    return { status: entry.status, pid: entry.pid, startedAt: info?.startedAt ?? entry.created };
  }
  if (exit || entry) return { status: "stopped", exit, startedAt: info?.startedAt };
  return { status: "created" };
}

/** Every container in the namespace with its task's state (one `runc list` for all). */
export async function listContainerStatuses(ctx: Context): Promise<ContainerStatus[]> {
  const records = (await ctx.metadata()).listContainers(ctx.namespace);
  if (records.length === 0) return [];
  const runc = await openRunc(ctx);
  const entries = new Map((await runc.list()).map((e) => [e.id, e]));
  return Promise.all(records.map((record) => describe(ctx, record, entries.get(record.id))));
}

async function describe(ctx: Context, record: ContainerRecord, entry: Pick<RuncListEntry, "status" | "pid" | "created"> | undefined): Promise<ContainerStatus> {
  const taskDir = ctx.taskDir(record.id);
  const [info, exit, spec, restarts] = await Promise.all([readTaskInfo(taskDir), readTaskExit(taskDir), readSpec(ctx, record.id), readRestarts(taskDir)]);
  return { record, command: spec?.process.args ?? [], restarts: restarts.count, ...statusOf(entry, info, exit) };
}

/** Container `id` with its task's state; NotFound when there is no such container. */
export async function inspectContainer(ctx: Context, id: string): Promise<ContainerStatus> {
  const record = await getContainerRecord(ctx, id);
  const runc = await openRunc(ctx);
  const state = await runc.state(id).catch((e: unknown) => {
    if (isKind(e, "NotFound")) return undefined;
    throw e;
  });
  return describe(ctx, record, state && { status: state.status, pid: state.pid, created: state.created });
}

/**
 * Runs `fn` holding container `id`'s task lock, which orders a start against a stop: a restart policy's
 * start and a user's `stop` never interleave (the stop is either seen by the start, or stops what it started).
 */
export async function withTaskLock<T>(ctx: Context, id: string, fn: () => Promise<T>): Promise<T> {
  const name = createHash("sha256").update(`${ctx.namespace}/${id}`).digest("hex").slice(0, 32);
  return withLock(join(ctx.root, "locks", `task-${name}`), fn, { what: `container ${id}` });
}

/** How `tsctr daemon` starts a container: not by hand, and whether an explicit stop forbids it. */
export interface SupervisedStart {
  /** Leave it stopped when it is marked stopped on purpose (false only for Docker's `always` at daemon start). */
  honorStop: boolean;
}

/**
 * Starts a stopped (or never started) container again, detached: remounts its snapshot, rewrites its bundle
 * from the kept spec and starts a new monitor; true when it started it. A running container is left as it
 * is. A start by hand resets the restart count, as Docker's `start` does; a `supervised` one (by the daemon)
 * does not, and with `honorStop` does nothing for a container stopped on purpose.
 */
export async function startContainer(ctx: Context, id: string, opts: { logMaxSize?: number; supervised?: SupervisedStart } = {}): Promise<boolean> {
  return withTaskLock(ctx, id, async () => {
    const current = await inspectContainer(ctx, id);
    if (current.status === "running" || current.status === "paused") return false;
    if (opts.supervised?.honorStop && (await wasStopped(ctx.taskDir(id)))) return false;
    if (!opts.supervised) await writeRestarts(ctx.taskDir(id), undefined);
    await startStopped(ctx, id, current, opts);
    return true;
  });
}

async function startStopped(ctx: Context, id: string, current: ContainerStatus, opts: { logMaxSize?: number }): Promise<void> {
  const spec = await readSpec(ctx, id);
  if (!spec) throw errorOf("FailedPrecondition", `start container "${id}": its spec is lost; remove it and run it again`);
  spec.process.terminal = false; // a detached task has no terminal
  const runc = await openRunc(ctx);
  await runc.delete(id, { force: true }).catch(() => {});
  const bundle = ctx.bundleDir(id);
  const rootfs = join(bundle, "rootfs");
  const snapshotter = await openSnapshotter(ctx);
  await unmount(rootfs).catch(() => {});
  await mkdir(bundle, { recursive: true, mode: 0o711 }); // gone after a reboot (<state> is a tmpfs)
  await reconnectNetwork(ctx, id, current.record.labels, bundle, spec);
  await writeBundle(bundle, spec);
  await mountAll(await snapshotter.mounts(current.record.snapshotKey), rootfs);
  try {
    await startDetached(ctx, runc, id, bundle, opts);
  } catch (e) {
    await unmount(rootfs).catch(() => {});
    await disconnectNetwork(ctx, id).catch(() => {});
    throw e;
  }
}

/** A signal by name ("TERM", "SIGTERM") or number; InvalidArgument for anything else. */
export function parseSignal(value: string): string {
  if (/^\d+$/.test(value) && Number(value) > 0 && Number(value) < 65) return value;
  const name = value.toUpperCase().startsWith("SIG") ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
  if (!(name in osConstants.signals)) throw errorOf("InvalidArgument", `invalid signal "${value}": expected a name like TERM or a number`);
  return name;
}

/** Signals whose `kill` by a user counts as an explicit stop (a restart policy does not undo it); HUP, USR1… do not. */
const STOPPING_SIGNALS = new Set(["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "9", "15", "2", "3"]);

/** Sends `signal` to the container's init (or, with `all`, every process in it). FailedPrecondition when it is not running. */
export async function killContainer(ctx: Context, id: string, signal: string = "SIGTERM", opts: { all?: boolean } = {}): Promise<void> {
  const sig = parseSignal(signal);
  const current = await inspectContainer(ctx, id);
  if (current.status !== "running" && current.status !== "paused") throw errorOf("FailedPrecondition", `kill container "${id}": not running`);
  if (STOPPING_SIGNALS.has(sig)) await withTaskLock(ctx, id, () => markStopped(ctx.taskDir(id), true));
  await (await openRunc(ctx)).kill(id, sig, opts);
}

/**
 * Waits up to `ms` for the task to end; true once it has. When a monitor watches it, also waits for the
 * monitor's exit record, so a caller that returns afterwards sees the exit status in `ps`.
 */
async function waitStopped(ctx: Context, id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await inspectContainer(ctx, id);
    if (s.status === "stopped" || s.status === "created") {
      const monitored = (await readTaskInfo(ctx.taskDir(id))) !== undefined;
      if (!monitored || s.exit || Date.now() > deadline) return true;
    }
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/**
 * Stops a running container: SIGTERM, then after `timeoutSeconds` SIGKILL to every process in it; recorded
 * as an explicit stop (a restart policy does not undo it). A stopped container is left as it is.
 */
export async function stopContainer(ctx: Context, id: string, timeoutSeconds = 10): Promise<void> {
  const current = await withTaskLock(ctx, id, async () => {
    const s = await inspectContainer(ctx, id);
    // Also when it has ended already: a restart policy about to start it again (in its back-off) must not.
    if (s.status !== "created") await markStopped(ctx.taskDir(id), true).catch(() => {});
    return s;
  });
  if (current.status !== "running" && current.status !== "paused") return;
  const runc = await openRunc(ctx);
  await runc.kill(id, "SIGTERM").catch(ignoreGone);
  if (current.status === "paused") await runc.resume(id).catch(ignoreGone);
  if (await waitStopped(ctx, id, timeoutSeconds * 1000)) return;
  await runc.kill(id, "SIGKILL", { all: true }).catch(ignoreGone);
  if (!(await waitStopped(ctx, id, KILL_WAIT_MS))) throw errorOf("Internal", `stop container "${id}": still running ${KILL_WAIT_MS / 1000} s after SIGKILL`);
}

/** Kills a running container outright (for `rm -f`) and waits for it to be reaped. */
export async function killAndWait(ctx: Context, id: string): Promise<void> {
  await markStopped(ctx.taskDir(id), true).catch(() => {});
  const runc = await openRunc(ctx);
  await runc.kill(id, "SIGKILL", { all: true }).catch(ignoreGone);
  await waitStopped(ctx, id, KILL_WAIT_MS);
}

/** A task that ended between our look and our signal is what we wanted anyway. */
function ignoreGone(e: unknown): void {
  if (!isKind(e, "NotFound") && !isKind(e, "FailedPrecondition")) throw e;
}

/** Freezes or thaws every process of a running container. */
export async function pauseContainer(ctx: Context, id: string, pause: boolean): Promise<void> {
  await getContainerRecord(ctx, id);
  const runc = await openRunc(ctx);
  await (pause ? runc.pause(id) : runc.resume(id));
}

/** The host PIDs of the processes in a running container. */
export async function containerProcesses(ctx: Context, id: string): Promise<number[]> {
  const current = await inspectContainer(ctx, id);
  if (current.status !== "running" && current.status !== "paused") throw errorOf("FailedPrecondition", `list processes of container "${id}": not running`);
  return (await openRunc(ctx)).ps(id);
}

/** What `exec` runs, and how. */
export interface ExecOptions {
  args: string[];
  tty?: boolean;
  /** Keep stdin attached (`-i`). */
  interactive?: boolean;
  env?: string[];
  cwd?: string;
  /** uid[:gid] or a name from the container's /etc/passwd. */
  user?: string;
}

/**
 * Runs a further process in a running container, in the foreground with stdio passed through (the
 * container's namespaces, cgroup and, by default, its init's environment, user and working directory);
 * resolves with its exit status. FailedPrecondition when the container is not running.
 */
export async function execInContainer(ctx: Context, id: string, opts: ExecOptions): Promise<number> {
  const current = await inspectContainer(ctx, id);
  if (current.status !== "running") throw errorOf("FailedPrecondition", `exec in container "${id}": not running (${current.status})`);
  if (opts.args.length === 0) throw errorOf("InvalidArgument", `exec in container "${id}": no command given`);
  const bundle = ctx.bundleDir(id);
  const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as Spec;
  const proc = { ...spec.process, args: opts.args, terminal: opts.tty ?? false, env: mergeEnv(spec.process.env, opts.env ?? []), cwd: opts.cwd ?? spec.process.cwd };
  if (opts.user !== undefined) {
    const u = await resolveUser(join(bundle, "rootfs"), opts.user);
    proc.user = { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids };
  }
  const file = join(bundle, `exec-${randomBytes(6).toString("hex")}.json`);
  await writeFile(file, JSON.stringify(proc), { mode: 0o600 });
  try {
    const task = (await openRunc(ctx)).execProcess(id, file, { tty: opts.tty, stdin: opts.interactive });
    const stopForwarding = forwardSignals(task.child);
    try {
      return await task.exited;
    } finally {
      stopForwarding();
    }
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * Everything known about container `id` (for `containers info`): record, task state, restart policy and
 * count, every recorded exit, whether it was stopped on purpose, and its spec.
 */
export async function containerInfo(ctx: Context, id: string): Promise<ContainerStatus & { restartPolicy: string; exits: TaskExit[]; stoppedExplicitly: boolean; spec?: Spec }> {
  const status = await inspectContainer(ctx, id);
  const taskDir = ctx.taskDir(id);
  const [exits, stoppedExplicitly, spec] = await Promise.all([readExitHistory(taskDir), wasStopped(taskDir), readSpec(ctx, id)]);
  return { ...status, restartPolicy: status.record.labels[RESTART_LABEL] ?? "no", exits, stoppedExplicitly, spec };
}
