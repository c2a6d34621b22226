#!/usr/bin/env node
/** tsctr's entry point: parses the command line, runs a command, and is the only place that ends the process. */
import "./early.ts"; // first: it may replace this process before anything else is loaded
import process from "node:process";
import { buildProgram } from "./program.ts";
import { finish, hasFinished, reportAndFinish } from "./exit.ts";
import { errorOf } from "../errdefs/mod.ts";

// If the event loop drains while a command is still awaiting something, that is a bug, not success:
// report it instead of exiting 0.
process.once("beforeExit", () => {
  if (!hasFinished()) reportAndFinish(errorOf("Internal", "the command stalled before it finished"));
});

buildProgram()
  .parseAsync(process.argv)
  .then(() => finish(Number(process.exitCode ?? 0)), reportAndFinish);
