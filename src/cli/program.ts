/** The command tree. Each command parses its arguments, calls a service, and renders the result. */
import { Command, Option } from "commander";
import process from "node:process";
import { defaultDecompressEngine, setDecompressEngine, setDigestEngine } from "../platform/engines.ts";
import { setDebug } from "./exit.ts";
import { versionCommand } from "./commands/version.ts";
import { pullCommand } from "./commands/pull.ts";
import { imagesCommand } from "./commands/images.ts";
import { runCommand } from "./commands/run.ts";
import { containersCommand } from "./commands/containers.ts";
import { loginCommand, logoutCommand } from "./commands/login.ts";
import { DEFAULT_HOSTS_DIR } from "../client/context.ts";
import { pushCommand } from "./commands/push.ts";
import { checkCommand, contentCommand, dfCommand, namespacesCommand, pruneCommand, snapshotsCommand } from "./commands/store.ts";
import { eventsCommand, execCommand, killCommand, logsCommand, psCommand, rmCommand, startCommand, stopCommand } from "./commands/lifecycle.ts";
import { tasksCommand } from "./commands/tasks.ts";
import { volumeCommand } from "./commands/volume.ts";
import { statsCommand } from "./commands/stats.ts";
import { daemonCommand, systemCommand } from "./commands/daemon.ts";

/** Builds the commander program with ctr-like global options. */
export function buildProgram(): Command {
  const program = new Command("tsctr")
    .description("a containerd-class container runtime in one executable")
    .option("--root <dir>", "root directory for persistent data", "/var/lib/tsctr")
    .option("--state <dir>", "state directory for runtime data", "/run/tsctr")
    .option("-n, --namespace <ns>", "namespace (tenant) to use", process.env.TSCTR_NAMESPACE ?? "default")
    .option("--debug", "print stack traces and debug output", false)
    .option("--hosts-dir <dir>", "registry hosts and mirrors: <dir>/<registry>/hosts.toml", process.env.TSCTR_HOSTS_DIR ?? DEFAULT_HOSTS_DIR)
    .addOption(new Option("--digest-engine <engine>", "how SHA-256 digests are computed").choices(["native", "wasm"]).default(process.env.TSCTR_DIGEST_ENGINE === "wasm" ? "wasm" : "native"))
    .addOption(new Option("--decompress-engine <engine>", "how layers are decompressed").choices(["native", "wasm"]).default(defaultDecompressEngine()))
    .addOption(new Option("--sync <level>", "what reaches stable storage before a change is visible (default: config.json's, else full)").choices(["none", "metadata", "full"]))
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    .hook("preAction", (cmd) => {
      setDebug(Boolean(cmd.opts().debug));
      setDigestEngine(cmd.opts().digestEngine === "wasm" ? "wasm" : "native");
      setDecompressEngine(cmd.opts().decompressEngine === "native" ? "native" : "wasm");
    })
    .hook("preAction", async (cmd) => {
      const { applySyncLevel } = await import("../client/store_config.ts");
      await applySyncLevel(String(cmd.opts().root), cmd.opts().sync);
    });
  program.addCommand(versionCommand());
  program.addCommand(pullCommand());
  program.addCommand(imagesCommand());
  program.addCommand(runCommand());
  program.addCommand(containersCommand());
  program.addCommand(loginCommand());
  program.addCommand(logoutCommand());
  program.addCommand(pushCommand());
  for (const c of [checkCommand(), pruneCommand(), dfCommand(), contentCommand(), snapshotsCommand(), namespacesCommand()]) program.addCommand(c);
  program.addCommand(tasksCommand());
  for (const c of [psCommand(), logsCommand(), execCommand(), startCommand(), stopCommand(), killCommand(), rmCommand(), eventsCommand()]) program.addCommand(c);
  program.addCommand(volumeCommand());
  program.addCommand(statsCommand());
  program.addCommand(daemonCommand());
  program.addCommand(systemCommand());
  exitOverrideEverywhere(program);
  return program;
}

/** Subcommands added with addCommand do not inherit exitOverride: without it a usage error exits 1, not 2. */
function exitOverrideEverywhere(cmd: Command): void {
  for (const sub of cmd.commands) {
    sub.exitOverride();
    exitOverrideEverywhere(sub);
  }
}
