/**
 * `tsctr system install-unit`: a systemd unit that runs `tsctr daemon` at boot. KillMode=process, so a
 * daemon restart (or `systemctl stop tsctr`) ends only the daemon, never the containers' monitors.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { writeFileAtomic } from "../platform/durable.ts";

/** Where install-unit writes by default. */
export const DEFAULT_UNIT_PATH = "/etc/systemd/system/tsctr.service";

export interface UnitOptions {
  /** The command that runs tsctr (see selfCommand in platform/runtime.ts). */
  command: string[];
  root: string;
  state: string;
  namespace: string;
  allNamespaces: boolean;
}

/** One ExecStart word: quoted when it holds blanks or quotes, `%` doubled (systemd's specifier escape). */
function unitWord(word: string): string {
  const w = word.replaceAll("%", "%%");
  return /[\s"'\\]/.test(w) ? `"${w.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : w;
}

/** The unit file's text: Type=simple, Restart=always, KillMode=process, after the network and local mounts. */
export function unitText(o: UnitOptions): string {
  const args = [...o.command, "--root", resolve(o.root), "--state", resolve(o.state), "--namespace", o.namespace, "daemon", ...(o.allNamespaces ? ["--namespace-all"] : [])];
  return [
    "[Unit]",
    "Description=tsctr restart supervisor (brings containers back after a reboot)",
    "Wants=network-online.target",
    "After=network-online.target local-fs.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${args.map(unitWord).join(" ")}`,
    "Restart=always",
    "RestartSec=2",
    "# Containers' monitors live in this unit's cgroup: stopping or restarting the daemon must not kill them.",
    "KillMode=process",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Writes the unit file atomically (mode 0644), creating its directory. */
export async function installUnit(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text, { mode: 0o644 });
}

/** True when systemd runs as PID 1 here (its own test, sd_booted: /run/systemd/system exists). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

/** The systemctl commands that load and start the unit at `path`. */
export function enableCommands(path: string): string[] {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return ["systemctl daemon-reload", `systemctl enable --now ${name}`];
}
