/**
 * The files a container's task directory holds (written by tsctr and by the monitor, see monitor/monitor.c):
 * `task.json` (init PID, monitor PID, start time), `init.pid` (from runc), `exit.json` (exit status and
 * time, written atomically by the monitor), `exits.log` (every exit, one JSON line each), `stopped` (an
 * explicit stop), `container.log[.N]` (output), `restarts.json` (the daemon's restart count, see RestartRecord).
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isErrno } from "../errdefs/mod.ts";
import { writeFileAtomic } from "../platform/durable.ts";

/** The names of the files in a task directory. */
export const TASK_FILES = {
  info: "task.json",
  pid: "init.pid",
  exit: "exit.json",
  exits: "exits.log",
  stopped: "stopped",
  log: "container.log",
  restarts: "restarts.json",
} as const;

/** A started task, as recorded by tsctr when the monitor reported it running. */
export interface TaskInfo {
  pid: number;
  monitorPid: number;
  startedAt: string;
}

/** How a task ended, as recorded by its monitor. `status` is the exit code, or 128+n for signal n. */
export interface TaskExit {
  pid: number;
  status: number;
  exitedAt: string;
}

/** The path of one of a task directory's files. */
export function taskFile(taskDir: string, name: string): string {
  return join(taskDir, name);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (err) {
    if (isErrno(err, "ENOENT") || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** The task's start record; undefined when it never started under a monitor. */
export function readTaskInfo(taskDir: string): Promise<TaskInfo | undefined> {
  return readJson<TaskInfo>(taskFile(taskDir, TASK_FILES.info));
}

/** Records a start (atomically and durably: it is what `ps` reports after a reboot). */
export function writeTaskInfo(taskDir: string, info: TaskInfo): Promise<void> {
  return writeFileAtomic(taskFile(taskDir, TASK_FILES.info), JSON.stringify(info) + "\n");
}

/** The task's exit record; undefined while it runs or when it never ran under a monitor. */
export function readTaskExit(taskDir: string): Promise<TaskExit | undefined> {
  return readJson<TaskExit>(taskFile(taskDir, TASK_FILES.exit));
}

/** Marks (or, with `false`, unmarks) the task as stopped on purpose, which a restart policy must respect. */
export async function markStopped(taskDir: string, stopped: boolean): Promise<void> {
  const path = taskFile(taskDir, TASK_FILES.stopped);
  if (stopped) await writeFile(path, new Date().toISOString() + "\n");
  else await rm(path, { force: true });
}

/** Whether the task was last stopped on purpose. */
export async function wasStopped(taskDir: string): Promise<boolean> {
  return readFile(taskFile(taskDir, TASK_FILES.stopped)).then(() => true, () => false);
}

/** Every recorded exit of the task, oldest first (the last line may be cut by a crash: it is skipped). */
export async function readExitHistory(taskDir: string): Promise<TaskExit[]> {
  const text = await readFile(taskFile(taskDir, TASK_FILES.exits), "utf8").catch((err: unknown) => {
    if (isErrno(err, "ENOENT")) return "";
    throw err;
  });
  const out: TaskExit[] = [];
  for (const line of text.split("\n")) {
    try {
      if (line.trim() !== "") out.push(JSON.parse(line) as TaskExit);
    } catch {
      // a line cut by a crash
    }
  }
  return out;
}

/** What the restart supervisor (`tsctr daemon`) records: restarts since the user last started it, and the last exit it handled. */
export interface RestartRecord {
  count: number;
  /** `exitedAt` of the last exit the supervisor decided on (restarted or left alone). */
  handledExit?: string;
}

/** The task's restart record; a count of 0 when there is none. */
export async function readRestarts(taskDir: string): Promise<RestartRecord> {
  return (await readJson<RestartRecord>(taskFile(taskDir, TASK_FILES.restarts))) ?? { count: 0 };
}

/** Records the restart count and handled exit (atomically); `undefined` removes the record (a user's start). */
export async function writeRestarts(taskDir: string, record: RestartRecord | undefined): Promise<void> {
  const path = taskFile(taskDir, TASK_FILES.restarts);
  if (record === undefined) await rm(path, { force: true });
  else await writeFileAtomic(path, JSON.stringify(record) + "\n");
}
