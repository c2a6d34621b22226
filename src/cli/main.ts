#!/usr/bin/env node
/** tsctr's entry point: parses the command line, runs a command, and is the only place that exits. */
import process from "node:process";
import { buildProgram } from "./program.ts";
import { reportAndExit } from "./exit.ts";

buildProgram()
  .parseAsync(process.argv)
  .then(() => process.exit(process.exitCode ?? 0), reportAndExit);
