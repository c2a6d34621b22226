/**
 * What the `run` flags change in a generated spec: user mounts, a read-only root, privileges, devices,
 * the seccomp filter and resource limits. Everything here is already resolved against the host (bind
 * sources checked, volumes made, devices looked up), so applying it is pure.
 */
import { hostArchitecture } from "../platform/runtime.ts";
import { deviceSpec, type HostDevice } from "./devices.ts";
import { specResources, type ResourceLimits } from "./resources.ts";
import { compileSeccomp, type SeccompProfile } from "./seccomp.ts";
import { DEFAULT_SECCOMP_PROFILE } from "./seccomp_default.ts";
import type { Spec, SpecMount } from "./spec_types.ts";

/** The container settings from the `run` command line, resolved on the host. */
export interface ContainerSettings {
  /** Bind, volume and tmpfs mounts; one on the destination of a default mount (e.g. /dev/shm) replaces it. */
  mounts?: SpecMount[];
  /** Mount the root filesystem read-only. */
  readOnly?: boolean;
  /** Every capability, host devices, no seccomp, no masked paths, writable /sys. */
  privileged?: boolean;
  /** Capabilities to add and drop (normalised names or "ALL"). */
  capAdd?: string[];
  capDrop?: string[];
  /** Capabilities tsctr may grant (its own bounding set); default every one tsctr knows. */
  knownCapabilities?: string[];
  /** Devices to create in the container and allow in its device cgroup. */
  devices?: HostDevice[];
  /** A seccomp profile, or "unconfined" for none; default DEFAULT_SECCOMP_PROFILE. */
  seccomp?: SeccompProfile | "unconfined";
  /** The architecture (GOARCH) of the runc that installs the filter; default the one tsctr runs on. */
  arch?: string;
  /** Default true: setuid binaries and file capabilities grant nothing. */
  noNewPrivileges?: boolean;
  /** Memory, CPU and pids limits. */
  resources?: ResourceLimits;
  /** Whether the kernel accounts swap (then no swap is the default with a memory limit). */
  swapAccounting?: boolean;
}

/** Applies `s` to a freshly generated `spec` in place (see ContainerSettings for each field's effect). */
export function applySettings(spec: Spec, s: ContainerSettings): void {
  const linux = spec.linux;
  spec.root.readonly = s.readOnly ?? false;
  spec.process.noNewPrivileges = s.noNewPrivileges ?? true;
  if (s.mounts && s.mounts.length > 0) {
    const replaced = new Set(s.mounts.map((m) => m.destination));
    spec.mounts = [...spec.mounts.filter((m) => !replaced.has(m.destination)), ...s.mounts.map((m) => ({ ...m, options: [...(m.options ?? [])] }))];
    const propagations = s.mounts.flatMap((m) => m.options ?? []);
    if (propagations.some((o) => o === "shared" || o === "rshared")) linux.rootfsPropagation = "rshared";
    else if (propagations.some((o) => o === "slave" || o === "rslave")) linux.rootfsPropagation = "rslave";
  }
  const devices = deviceSpec(s.devices ?? []);
  if (devices.nodes.length > 0) linux.devices = devices.nodes;
  linux.resources = { ...specResources(s.resources ?? {}, s.swapAccounting ?? false), devices: [...(linux.resources?.devices ?? []), ...devices.rules] };
  if (s.privileged) {
    linux.resources.devices = [{ allow: true, access: "rwm" }];
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
    for (const m of spec.mounts) {
      if (m.destination === "/sys" || m.destination === "/sys/fs/cgroup") m.options = (m.options ?? []).map((o) => (o === "ro" ? "rw" : o));
    }
  }
  if (!s.privileged && s.seccomp !== "unconfined") {
    const capabilities = spec.process.capabilities.bounding ?? [];
    linux.seccomp = compileSeccomp(s.seccomp ?? DEFAULT_SECCOMP_PROFILE, { capabilities, arch: s.arch ?? hostArchitecture() });
  }
}
