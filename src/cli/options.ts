/** Reading the global options from any (sub)command into a client Context. */
import type { Command } from "commander";
import process from "node:process";
import { Context, type GlobalOptions } from "../client/context.ts";

/** The root program's options, seen from a subcommand at any depth. */
export function globalOptions(cmd: Command): GlobalOptions & { debug: boolean } {
  let root = cmd;
  while (root.parent) root = root.parent;
  const o = root.opts() as GlobalOptions & { debug: boolean };
  return o;
}

/** The one-line warning every command prints for --skip-verify. */
export function warnSkipVerify(): void {
  process.stderr.write("tsctr: warning: --skip-verify: TLS certificates are not verified; the connection can be intercepted\n");
}

/** A client context for the command's global options. */
export function contextFrom(cmd: Command): Context {
  return new Context(globalOptions(cmd));
}

/** Runs `fn` with the command's client context and closes it afterwards, whether `fn` succeeds or throws. */
export async function withContext<T>(cmd: Command, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const ctx = contextFrom(cmd);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
