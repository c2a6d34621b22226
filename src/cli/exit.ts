/**
 * How tsctr ends: any error becomes one line on stderr and a distinct exit code, and the process ends by
 * letting its event loop drain, not by process.exit. (Node 24's process.exit shuts V8's worker threads down
 * while the isolate still lives; a background compile job waiting for a garbage collection then waits
 * forever, and the process hangs. A drained loop disposes of the isolate first.)
 */
import process from "node:process";
import { setTimeout } from "node:timers";
import { TsctrError } from "../errdefs/mod.ts";

/** How long a finished command waits for open handles to close before it exits anyway. */
const DRAIN_LIMIT_MS = 2000;

let debug = false;
let finished = false;

/** Enables stack traces in error reports (--debug). */
export function setDebug(on: boolean): void {
  debug = on;
}

/** Whether finish() was called: after it, a drained event loop is the expected end. */
export function hasFinished(): boolean {
  return finished;
}

/**
 * Sets the exit code and lets the process end when its event loop drains. A handle that stays open
 * (a bug) cannot keep it alive: after DRAIN_LIMIT_MS it exits anyway, naming the handles under --debug.
 */
export function finish(code: number): void {
  if (finished) return;
  finished = true;
  process.exitCode = code;
  // Work still unwinding after the command's result was reported (aborted siblings of a failed layer) cannot
  // change the exit code or print a second error.
  const late = (e: unknown) => {
    if (debug) process.stderr.write(`tsctr: debug: after the command ended: ${(e as Error)?.stack ?? String(e)}\n`);
  };
  process.on("uncaughtException", late);
  process.on("unhandledRejection", late);
  const limit = setTimeout(() => {
    if (debug) process.stderr.write(`tsctr: debug: still open after the command ended: ${process.getActiveResourcesInfo?.().join(", ") ?? "?"}\n`);
    process.exit(code);
  }, DRAIN_LIMIT_MS);
  limit.unref();
}

/** Prints `err` as "tsctr: <message>" and finishes with its kind's code (1 for unknown errors). */
export function reportAndFinish(err: unknown): void {
  if (finished) return;
  if (err instanceof TsctrError) {
    process.stderr.write(`tsctr: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return finish(err.exitCode);
  }
  const e = err as { message?: string; stack?: string; code?: string; exitCode?: number };
  if (e && (e.code === "commander.helpDisplayed" || e.code === "commander.version")) return finish(0);
  if (e && typeof e.code === "string" && e.code.startsWith("commander.")) return finish(2);
  process.stderr.write(`tsctr: internal error: ${e?.message ?? String(err)}\n`);
  if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
  finish(1);
}
