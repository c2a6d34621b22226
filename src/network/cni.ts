/**
 * A CNI runtime after the CNI specification 1.0.0: each plugin of a network configuration list is an
 * executable found on the plugin path, run with CNI_COMMAND=ADD|DEL|CHECK and the container's namespace in
 * the environment and its configuration on stdin; results chain through `prevResult`.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { errorOf } from "../errdefs/mod.ts";
import { execFile } from "../platform/exec.ts";
import { sbinPath } from "./netns.ts";

/** The CNI version tsctr speaks. */
export const CNI_VERSION = "1.0.0";

/** One plugin's entry in a configuration list: its `type` names the executable. */
export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A network configuration list (`.conflist`). */
export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
}

/** The parts of a CNI 1.0 result tsctr reads. */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[] };
}

/** Where and for whom the plugins run. */
export interface CniAttachment {
  /** Unique on the host: IPAM leases and iptables chains are keyed by it. */
  containerId: string;
  /** The namespace file; may be "" for a DEL after the namespace is gone. */
  netns: string;
  ifName: string;
  /** Runtime-provided values, passed to plugins that declare the matching capability (e.g. portMappings). */
  runtimeConfig?: Record<string, unknown>;
}

/** The plugin directories: TSCTR_CNI_PATH (colon-separated), else Debian's /usr/lib/cni then the usual /opt/cni/bin. */
export function cniPath(): string[] {
  return (process.env.TSCTR_CNI_PATH || "/usr/lib/cni:/opt/cni/bin").split(":").filter(Boolean);
}

/** ADD: runs the plugins in order, each given the previous one's result; returns the last result. */
export async function addNetworkList(list: CniConfList, at: CniAttachment): Promise<CniResult> {
  let result: CniResult | undefined;
  for (const plugin of list.plugins) result = await invoke("ADD", list, plugin, at, result);
  return result ?? { cniVersion: list.cniVersion };
}

/** CHECK: runs the plugins in order with the cached ADD result; throws the first plugin's complaint. */
export async function checkNetworkList(list: CniConfList, at: CniAttachment, cached: CniResult): Promise<void> {
  for (const plugin of list.plugins) await invoke("CHECK", list, plugin, at, cached);
}

/**
 * DEL: runs every plugin in reverse order (with the cached result when there is one), even after one
 * fails, and then throws the first failure. Plugins treat a DEL of what is already gone as success.
 */
export async function delNetworkList(list: CniConfList, at: CniAttachment, cached?: CniResult): Promise<void> {
  let first: unknown;
  for (const plugin of [...list.plugins].reverse()) {
    await invoke("DEL", list, plugin, at, cached).catch((e: unknown) => (first ??= e));
  }
  if (first !== undefined) throw first;
}

async function invoke(command: "ADD" | "DEL" | "CHECK", list: CniConfList, plugin: CniPluginConf, at: CniAttachment, prev?: CniResult): Promise<CniResult | undefined> {
  const action = `network ${list.name}: ${plugin.type} ${command}`;
  const dirs = cniPath();
  const binary = await findPlugin(plugin.type, dirs);
  if (!binary) throw errorOf("FailedPrecondition", `${action}: plugin not found in ${dirs.join(":")}: install containernetworking-plugins, set TSCTR_CNI_PATH, or run with --net none or --net host`);
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const wanted = Object.entries(plugin.capabilities ?? {}).filter(([k, on]) => on && at.runtimeConfig?.[k] !== undefined);
  if (wanted.length > 0) conf.runtimeConfig = Object.fromEntries(wanted.map(([k]) => [k, at.runtimeConfig![k]]));
  if (prev) conf.prevResult = prev;
  const env = {
    ...process.env,
    PATH: sbinPath(),
    CNI_COMMAND: command,
    CNI_CONTAINERID: at.containerId,
    CNI_NETNS: at.netns,
    CNI_IFNAME: at.ifName,
    CNI_PATH: dirs.join(":"),
  };
  const r = await execFile(binary, [], { input: JSON.stringify(conf), env });
  if (r.code !== 0) throw errorOf("FailedPrecondition", `${action}: ${pluginError(r.stdout, r.stderr, r.code)}`);
  if (command !== "ADD") return undefined;
  try {
    return JSON.parse(r.stdout) as CniResult;
  } catch {
    throw errorOf("Internal", `${action}: the plugin printed no JSON result`);
  }
}

/** The plugin's error as one line: its JSON `msg` and `details` (spec "Error" type), else its output. */
function pluginError(stdout: string, stderr: string, code: number): string {
  let text = "";
  try {
    const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    text = [e.msg, e.details].filter(Boolean).join(": ") + (e.code === undefined ? "" : ` (CNI error ${e.code})`);
  } catch {
    text = (stderr.trim() || stdout.trim()).split("\n").pop() ?? "";
  }
  return (text || `exit status ${code}`).replace(/\s*\n\s*/g, " ");
}

async function findPlugin(type: string, dirs: string[]): Promise<string | undefined> {
  if (type.includes("/")) return undefined;
  for (const dir of dirs) {
    const file = join(dir, type);
    if (await access(file, constants.X_OK).then(() => true, () => false)) return file;
  }
  return undefined;
}
