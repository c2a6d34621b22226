/**
 * Linux capabilities by name: normalising `--cap-add`/`--cap-drop` values and computing a container's
 * capability set from Docker's default set, the additions and the removals.
 */
import { errorOf } from "../errdefs/mod.ts";

/** Every capability Linux defines, in bit order (CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE is 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** Docker's default capability set (in bit order), granted in the bounding, effective and permitted sets. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_RAW",
  "CAP_SYS_CHROOT",
  "CAP_MKNOD",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/**
 * "sys_admin", "CAP_SYS_ADMIN", "Sys_Admin" → "CAP_SYS_ADMIN"; "all" → "ALL". Throws InvalidArgument
 * naming the value for anything that is not a Linux capability.
 */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === "ALL") return "ALL";
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) throw errorOf("InvalidArgument", `invalid capability "${name}": not a Linux capability (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)`);
  return full;
}

/**
 * The capability set of a container, Docker's rules: start from the default set (every capability when
 * privileged); "ALL" in `drop` empties it and "ALL" in `add` fills it; then the named additions are added
 * and the named removals taken away. `known` limits the result to what the kernel knows. In bit order.
 */
export function capabilitySet(opts: { add?: readonly string[]; drop?: readonly string[]; privileged?: boolean; known?: readonly string[] }): string[] {
  const add = (opts.add ?? []).map(normalizeCapability);
  const drop = (opts.drop ?? []).map(normalizeCapability);
  const set = new Set<string>(opts.privileged || add.includes("ALL") ? ALL_CAPABILITIES : drop.includes("ALL") ? [] : DEFAULT_CAPABILITIES);
  for (const c of add) if (c !== "ALL") set.add(c);
  if (!opts.privileged) for (const c of drop) if (c !== "ALL") set.delete(c);
  const known = opts.known ?? ALL_CAPABILITIES;
  return ALL_CAPABILITIES.filter((c) => set.has(c) && known.includes(c));
}
