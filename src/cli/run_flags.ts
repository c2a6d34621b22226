/**
 * The `run` flags that shape a container: declared on the command and turned into the client's RunFlags.
 * Each value is parsed as it is read, so a malformed one is an InvalidArgument error (exit 10) before
 * anything is made.
 */
import type { Command } from "commander";
import { errorOf } from "../errdefs/mod.ts";
import type { RunFlags } from "../client/run_settings.ts";
import { normalizeCapability } from "../runtime/capabilities.ts";
import { parseDeviceFlag, type DeviceRequest } from "../runtime/devices.ts";
import { parseMountFlag, parseTmpfsFlag, parseVolumeFlag, type MountRequest } from "../runtime/mounts.ts";
import { parseCpus, parseSize, parseSwap } from "../runtime/resources.ts";
import { positiveInteger } from "./parse.ts";

/** The parsed option values commander hands over for these flags. */
export interface RunFlagOptions {
  volume: MountRequest[];
  mount: MountRequest[];
  tmpfs: MountRequest[];
  envFile: string[];
  user?: string;
  cwd?: string;
  hostname?: string;
  readOnly: boolean;
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  device: DeviceRequest[];
  securityOpt: SecurityOpt[];
  memory?: number;
  memorySwap?: number;
  cpus?: number;
  pidsLimit?: number;
}

type SecurityOpt = { seccomp: string } | { noNewPrivileges: boolean };

/** A parser for a repeatable option: each value parsed and appended. */
function many<T>(parse: (value: string) => T): (value: string, previous: T[]) => T[] {
  return (value, previous) => [...previous, parse(value)];
}

/** Declares the container-shaping options on `cmd` (chainable). */
export function addRunFlags(cmd: Command): Command {
  return cmd
    .option("-v, --volume <src:dst[:opts]>", "bind mount a host path or a named volume (opts: ro, rw, nocopy, a propagation; repeatable)", many(parseVolumeFlag), [])
    .option("--mount <spec>", "mount: type=bind|volume|tmpfs,src=…,dst=…[,ro][,bind-propagation=…][,tmpfs-size=…] (repeatable)", many(parseMountFlag), [])
    .option("--tmpfs <dst[:opts]>", "mount a tmpfs (opts: size=64m, mode=1777, ro; repeatable)", many(parseTmpfsFlag), [])
    .option("--env-file <file>", "read K=V lines from a file (repeatable; --env wins)", many(String), [])
    .option("-u, --user <user>", "run as uid[:gid] or name[:group] of the image's /etc/passwd and /etc/group", nonEmpty("--user"))
    .option("-w, --cwd <dir>", "working directory inside the container", absolute)
    .option("--hostname <name>", "the container's hostname (default: its ID)", hostname)
    .option("--read-only", "mount the root filesystem read-only", false)
    .option("--privileged", "every capability and host device, no seccomp, no masked paths", false)
    .option("--cap-add <cap>", "add a capability (NET_ADMIN, CAP_SYS_TIME, ALL; repeatable)", many(normalizeCapability), [])
    .option("--cap-drop <cap>", "drop a capability (repeatable)", many(normalizeCapability), [])
    .option("--device <dev>", "give a host device: /dev/x[:/dev/y][:rwm] (repeatable)", many(parseDeviceFlag), [])
    .option("--security-opt <opt>", "seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false] (repeatable)", many(securityOpt), [])
    .option("-m, --memory <size>", "memory limit with a unit (b, k, m, g): 256m", (v: string) => parseSize(v, "--memory"))
    .option("--memory-swap <size>", "memory plus swap limit (-1: unlimited swap; default: no swap)", parseSwap)
    .option("--cpus <n>", "CPU limit in CPUs: 1.5", parseCpus)
    .option("--pids-limit <n>", "most processes and threads at once", positiveInteger);
}

/** The client's RunFlags from the options commander parsed. */
export function runFlagsFrom(o: RunFlagOptions): RunFlags {
  const flags: RunFlags = {
    mounts: [...o.volume, ...o.mount, ...o.tmpfs],
    envFiles: o.envFile,
    user: o.user,
    cwd: o.cwd,
    hostname: o.hostname,
    readOnly: o.readOnly,
    privileged: o.privileged,
    capAdd: o.capAdd,
    capDrop: o.capDrop,
    devices: o.device,
    resources: { memory: o.memory, memorySwap: o.memorySwap, cpus: o.cpus, pidsLimit: o.pidsLimit },
  };
  for (const s of o.securityOpt) {
    if ("seccomp" in s) flags.seccomp = s.seccomp;
    else flags.noNewPrivileges = s.noNewPrivileges;
  }
  return flags;
}

function securityOpt(value: string): SecurityOpt {
  const [, key, arg] = /^([a-z-]+)(?:[=:](.*))?$/.exec(value) ?? [];
  if (key === "seccomp" && arg) return { seccomp: arg };
  if (key === "no-new-privileges" && (arg === undefined || arg === "true" || arg === "false")) return { noNewPrivileges: arg !== "false" };
  throw errorOf("InvalidArgument", `invalid --security-opt "${value}": expected seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]`);
}

function nonEmpty(flag: string): (value: string) => string {
  return (value) => {
    if (value.trim() === "") throw errorOf("InvalidArgument", `invalid ${flag}: empty`);
    return value.trim();
  };
}

function absolute(value: string): string {
  if (!value.startsWith("/")) throw errorOf("InvalidArgument", `invalid --cwd "${value}": must be an absolute path`);
  return value;
}

function hostname(value: string): string {
  const label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
  if (value.length > 64 || !new RegExp(`^${label}(\\.${label})*$`).test(value)) {
    throw errorOf("InvalidArgument", `invalid --hostname "${value}": letters, digits, '-' and '.', at most 64 characters`);
  }
  return value;
}
