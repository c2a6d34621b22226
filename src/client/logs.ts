/** A container's output as its monitor logged it (see runtime/container_log.ts). */
import type { Context } from "./context.ts";
import { getContainerRecord } from "./tasks.ts";
import { readLog, readTaskInfo, type LogRecord } from "../runtime/mod.ts";
import process from "node:process";

/** Which records `logs` prints. */
export interface LogsOptions {
  tail?: number;
  follow?: boolean;
}

/** True while process `pid` exists (signal 0 reaches it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The records of container `id`'s log, oldest first; with `follow`, also every new one until its monitor
 * has exited (the container ended and its output is drained). NotFound for an unknown container.
 */
export async function containerLogs(ctx: Context, id: string, opts: LogsOptions = {}): Promise<AsyncGenerator<LogRecord>> {
  await getContainerRecord(ctx, id);
  const taskDir = ctx.taskDir(id);
  const done = async () => {
    const info = await readTaskInfo(taskDir);
    return info === undefined || !alive(info.monitorPid);
  };
  return readLog(taskDir, { tail: opts.tail, follow: opts.follow, done });
}
