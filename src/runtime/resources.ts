/**
 * Resource limits of a container (`--memory`, `--memory-swap`, `--cpus`, `--pids-limit`): parsing the
 * command-line values and turning them into the runtime spec's linux.resources, which runc applies on
 * cgroup v1 and v2 alike.
 */
import { errorOf } from "../errdefs/mod.ts";
import type { SpecResources } from "./spec_types.ts";

/** Limits asked for on the command line; undefined means "no limit". */
export interface ResourceLimits {
  /** Memory in bytes. */
  memory?: number;
  /** Memory plus swap in bytes; -1 for unlimited swap. Default: no swap beyond `memory` where the kernel accounts swap. */
  memorySwap?: number;
  /** CPUs worth of time (1.5 = one and a half cores). */
  cpus?: number;
  /** Most processes and threads at once. */
  pidsLimit?: number;
}

const UNITS: Readonly<Record<string, number>> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** The CFS period runc is given for `--cpus` (100 ms, as Docker uses). */
export const CPU_PERIOD_US = 100_000;

/** The smallest memory limit accepted (Docker's: below it a container cannot even start). */
export const MIN_MEMORY = 6 * 1024 * 1024;

/**
 * "256m" → 268435456. A number (decimals allowed) followed by a unit b, k, m, g or t (optionally with a
 * trailing "b": "256mb", case-insensitive), powers of 1024. A bare number is refused: InvalidArgument
 * naming `flag` and the value, since "256" almost always means megabytes and would be 256 bytes.
 */
export function parseSize(value: string, flag: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt])b?$/i.exec(value.trim());
  if (!m) {
    const hint = /^[0-9.]+$/.test(value.trim()) ? "a unit is required" : "expected a number and a unit";
    throw errorOf("InvalidArgument", `invalid ${flag} "${value}": ${hint} (b, k, m, g; e.g. 256m, 1.5g)`);
  }
  const bytes = Math.floor(Number(m[1]) * (UNITS[m[2]!.toLowerCase()] ?? 1));
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw errorOf("InvalidArgument", `invalid ${flag} "${value}": out of range`);
  return bytes;
}

/** "--memory-swap": a size, or "-1" for unlimited swap. */
export function parseSwap(value: string): number {
  return value.trim() === "-1" ? -1 : parseSize(value, "--memory-swap");
}

/** "1.5" → 1.5; a positive decimal with at most two places (0.01 CPU steps), else InvalidArgument. */
export function parseCpus(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+(?:\.[0-9]{1,2})?$/.test(value.trim()) || !(n > 0)) throw errorOf("InvalidArgument", `invalid --cpus "${value}": expected a positive number of CPUs such as 0.5 or 2`);
  return n;
}

/**
 * Checks limits against each other and the host: memory at least 6 MiB, swap not below memory and only
 * with memory, CPUs not more than `hostCpus`. Throws InvalidArgument.
 */
export function checkLimits(limits: ResourceLimits, hostCpus: number): void {
  if (limits.memory !== undefined && limits.memory < MIN_MEMORY) throw errorOf("InvalidArgument", `invalid --memory: ${limits.memory} bytes is below the minimum of 6m`);
  if (limits.memorySwap !== undefined) {
    if (limits.memory === undefined) throw errorOf("InvalidArgument", "invalid --memory-swap: it needs --memory as well");
    if (limits.memorySwap !== -1 && limits.memorySwap < limits.memory) throw errorOf("InvalidArgument", "invalid --memory-swap: it is memory plus swap, so it cannot be below --memory");
  }
  if (limits.cpus !== undefined && limits.cpus > hostCpus) throw errorOf("InvalidArgument", `invalid --cpus ${limits.cpus}: this host has ${hostCpus} CPUs`);
}

/**
 * The spec's resources for `limits`. Without an explicit swap limit, swap is capped at the memory limit
 * (no swap) when `swapAccounting` says the kernel can enforce that.
 */
export function specResources(limits: ResourceLimits, swapAccounting: boolean): Omit<SpecResources, "devices"> {
  const out: Omit<SpecResources, "devices"> = {};
  if (limits.memory !== undefined) {
    out.memory = { limit: limits.memory };
    const swap = limits.memorySwap ?? (swapAccounting ? limits.memory : undefined);
    if (swap !== undefined) out.memory.swap = swap;
  }
  if (limits.cpus !== undefined) out.cpu = { quota: Math.round(limits.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  if (limits.pidsLimit !== undefined) out.pids = { limit: limits.pidsLimit };
  return out;
}
