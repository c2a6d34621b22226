/** `tsctr daemon` (the restart supervisor, in the foreground) and `tsctr system install-unit`. */
import { Command } from "commander";
import process from "node:process";
import { globalOptions } from "../options.ts";
import { DEFAULT_UNIT_PATH } from "../../client/systemd_unit.ts";

/** `daemon [--namespace-all]`: supervises restart policies until SIGTERM/SIGINT; containers keep running. */
export function daemonCommand(): Command {
  return new Command("daemon")
    .description("supervise restart policies in the foreground (for systemd): bring containers back after a reboot, restart them when they exit")
    .option("--namespace-all", "supervise every namespace, not only --namespace", false)
    .action(async (opts: { namespaceAll: boolean }, cmd: Command) => {
      const { runDaemon } = await import("../../client/daemon.ts");
      const global = globalOptions(cmd);
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
      const log = (line: string) => process.stderr.write(`tsctr daemon: ${line}\n`);
      log(`supervising ${opts.namespaceAll ? "every namespace" : `namespace ${global.namespace}`} of ${global.root}`);
      await runDaemon({ ...global, allNamespaces: opts.namespaceAll, signal: ac.signal, log });
      log("stopped (containers keep running)");
    });
}

/** `system install-unit [--path P] [--namespace-all] [--now]`. */
export function systemCommand(): Command {
  const c = new Command("system").description("host integration");
  c.command("install-unit")
    .description("write a systemd unit that runs `tsctr daemon` at boot")
    .option("--path <file>", "where to write the unit", DEFAULT_UNIT_PATH)
    .option("--namespace-all", "the daemon supervises every namespace", false)
    .option("--now", "enable and start it (prints the systemctl commands when systemd is not running here)", false)
    .action(async (opts: { path: string; namespaceAll: boolean; now: boolean }, cmd: Command) => {
      const { enableCommands, installUnit, systemdRunning, unitText } = await import("../../client/systemd_unit.ts");
      const { selfCommand } = await import("../../platform/runtime.ts");
      const global = globalOptions(cmd);
      await installUnit(opts.path, unitText({ command: selfCommand(), root: global.root, state: global.state, namespace: global.namespace, allNamespaces: opts.namespaceAll }));
      process.stdout.write(`wrote ${opts.path}\n`);
      if (!opts.now) return;
      const commands = enableCommands(opts.path);
      if (!systemdRunning()) {
        process.stdout.write(`systemd is not running here; run:\n${commands.map((c) => `  ${c}\n`).join("")}`);
        return;
      }
      const { execFile } = await import("../../platform/exec.ts");
      const { errorOf } = await import("../../errdefs/mod.ts");
      for (const line of commands) {
        const [file, ...args] = line.split(" ");
        const r = await execFile(file!, args);
        if (r.code !== 0) throw errorOf("FailedPrecondition", `${line}: ${r.stderr.trim() || `exit ${r.code}`}`);
      }
      process.stdout.write(`started ${commands.at(-1)!.split(" ").at(-1)}\n`);
    });
  return c;
}
