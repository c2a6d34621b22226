/** The command tree. Each command parses its arguments, calls a service, and renders the result. */
import { Command } from "commander";
import { setDebug } from "./exit.ts";
import { versionCommand } from "./commands/version.ts";
import { pullCommand } from "./commands/pull.ts";
import { imagesCommand } from "./commands/images.ts";
import { runCommand } from "./commands/run.ts";
import { containersCommand } from "./commands/containers.ts";

/** Builds the commander program with ctr-like global options. */
export function buildProgram(): Command {
  const program = new Command("tsctr")
    .description("a containerd-class container runtime in one executable")
    .option("--root <dir>", "root directory for persistent data", "/var/lib/tsctr")
    .option("--state <dir>", "state directory for runtime data", "/run/tsctr")
    .option("-n, --namespace <ns>", "namespace (tenant) to use", process.env.TSCTR_NAMESPACE ?? "default")
    .option("--debug", "print stack traces and debug output", false)
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    .hook("preAction", (cmd) => setDebug(Boolean(cmd.opts().debug)));
  program.addCommand(versionCommand());
  program.addCommand(pullCommand());
  program.addCommand(imagesCommand());
  program.addCommand(runCommand());
  program.addCommand(containersCommand());
  return program;
}
