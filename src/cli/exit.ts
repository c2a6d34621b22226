/** Turns any error into one line on stderr and a distinct exit code. */
import process from "node:process";
import { TsctrError } from "../errdefs/mod.ts";

let debug = false;

/** Enables stack traces in error reports (--debug). */
export function setDebug(on: boolean): void {
  debug = on;
}

/** Prints `err` as "tsctr: <message>" and exits with its kind's code (1 for unknown errors). */
export function reportAndExit(err: unknown): never {
  if (err instanceof TsctrError) {
    process.stderr.write(`tsctr: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exit(err.exitCode);
  }
  const e = err as { message?: string; stack?: string; code?: string; exitCode?: number };
  if (e && (e.code === "commander.helpDisplayed" || e.code === "commander.version")) process.exit(0);
  if (e && typeof e.code === "string" && e.code.startsWith("commander.")) process.exit(2);
  process.stderr.write(`tsctr: internal error: ${e?.message ?? String(err)}\n`);
  if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}
