/**
 * Starting a container under its monitor (see monitor.c): the monitor detaches, runs `runc run -d`,
 * keeps the container's output in a rotated log and records its exit status, while tsctr returns.
 */
import { spawn } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import type { Buffer } from "node:buffer";
import { errorOf } from "../../errdefs/mod.ts";
import type { Runc } from "../runc.ts";
import { installMonitor } from "./install.ts";
import { eventFields } from "../events.ts";
import { TASK_FILES, taskFile, writeTaskInfo, type TaskInfo } from "../task_files.ts";

/** Default log cap per file: 10 MiB. */
export const DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024;
/** Default number of log files kept: the live one and two rotated. */
export const DEFAULT_LOG_MAX_FILES = 3;

/** What a monitor is started with. */
export interface MonitorOptions {
  runc: Runc;
  id: string;
  bundle: string;
  /** Where the monitor keeps the log, the init pid and the exit status (kept across reboots). */
  taskDir: string;
  /** Where the monitor executable is written (tsctr's --state), and where instead when that is noexec (--root). */
  stateDir: string;
  fallbackDir?: string;
  logMaxSize?: number;
  logMaxFiles?: number;
  /** The event log the monitor appends the start and exit events to, and the namespace they name. */
  events?: { file: string; namespace: string };
}

/**
 * Starts the container detached under a new monitor process and resolves once it runs, with its init's PID
 * and the monitor's; records both in the task directory. FailedPrecondition with runc's message when the
 * container cannot start (nothing then runs; the monitor has exited).
 */
export async function startMonitored(opts: MonitorOptions): Promise<TaskInfo> {
  const monitor = await installMonitor(opts.stateDir, opts.fallbackDir);
  await mkdir(opts.taskDir, { recursive: true, mode: 0o700 });
  await Promise.all([TASK_FILES.exit, TASK_FILES.pid, TASK_FILES.info].map((f) => rm(taskFile(opts.taskDir, f), { force: true })));
  const size = opts.logMaxSize ?? DEFAULT_LOG_MAX_SIZE;
  const files = opts.logMaxFiles ?? DEFAULT_LOG_MAX_FILES;
  const runcArgs = opts.runc.detachedRunArgs(opts.id, opts.bundle, taskFile(opts.taskDir, TASK_FILES.pid));
  const report = await new Promise<string>((resolve, reject) => {
    const events = opts.events ? [opts.events.file, eventFields(opts.events.namespace, opts.id)] : ["-", "-"];
    const child = spawn(monitor, [opts.taskDir, String(size), String(files), ...events, opts.runc.binary, ...runcArgs], { stdio: ["ignore", "pipe", "ignore"] });
    let text = "";
    child.stdout.on("data", (b: Buffer) => (text += b.toString()));
    child.once("error", (err) => reject(errorOf("FailedPrecondition", `start container ${opts.id}: cannot run the monitor ${monitor}: ${err.message}`, err)));
    // The monitor's first process exits at once; the detached one reports on the pipe and closes it.
    child.once("close", () => resolve(text.trim()));
  });
  const ok = /^ok (\d+) (\d+)$/.exec(report);
  if (!ok) {
    const detail = (await opts.runc.runFailure(opts.bundle)) || (report === "" ? "the monitor reported nothing" : `runc ${report}`);
    throw errorOf("FailedPrecondition", `start container ${opts.id}: ${detail}`);
  }
  const info: TaskInfo = { pid: Number(ok[1]), monitorPid: Number(ok[2]), startedAt: new Date().toISOString() };
  await writeTaskInfo(opts.taskDir, info);
  return info;
}
