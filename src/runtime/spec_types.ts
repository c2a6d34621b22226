/**
 * The parts of the OCI runtime-spec 1.x `config.json` that tsctr writes (runtime-spec v1.0.2 field names).
 * Only fields tsctr sets are declared; runc reads the file, tsctr never parses one back.
 */

/** The uid, gid and supplementary gids a container process runs as. */
export interface SpecUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/** Capability sets; names carry the `CAP_` prefix (e.g. "CAP_CHOWN"). */
export interface SpecCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

/** One POSIX resource limit (type like "RLIMIT_NOFILE"). */
export interface SpecRlimit {
  type: string;
  hard: number;
  soft: number;
}

/** The container's init process. */
export interface SpecProcess {
  terminal: boolean;
  user: SpecUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: SpecCapabilities;
  rlimits: SpecRlimit[];
  noNewPrivileges: boolean;
}

/** The container's root filesystem: a path absolute or relative to the bundle. */
export interface SpecRoot {
  path: string;
  readonly?: boolean;
}

/** A mount made inside the container's mount namespace. */
export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** A namespace to create (no path) or to join (path). */
export interface SpecNamespace {
  type: "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";
  path?: string;
}

/** A device cgroup rule: allow or deny access ("rwm") to devices of a type, major and minor. */
export interface SpecDeviceCgroup {
  allow: boolean;
  type?: "a" | "c" | "b";
  major?: number;
  minor?: number;
  access?: string;
}

/** Memory limits in bytes; swap is memory plus swap (-1: unlimited). */
export interface SpecMemory {
  limit?: number;
  swap?: number;
}

/** CPU bandwidth: `quota` microseconds of CPU time per `period`. */
export interface SpecCpu {
  quota?: number;
  period?: number;
}

/** Cgroup resource settings. */
export interface SpecResources {
  devices?: SpecDeviceCgroup[];
  memory?: SpecMemory;
  cpu?: SpecCpu;
  pids?: { limit: number };
}

/** A device node created in the container's /dev. */
export interface SpecDevice {
  path: string;
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** One comparison of a syscall argument (runtime-spec seccomp). */
export interface SpecSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: "SCMP_CMP_NE" | "SCMP_CMP_LT" | "SCMP_CMP_LE" | "SCMP_CMP_EQ" | "SCMP_CMP_GE" | "SCMP_CMP_GT" | "SCMP_CMP_MASKED_EQ";
}

/** One seccomp rule: an action for syscalls by name, optionally only when every arg comparison holds. */
export interface SpecSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SpecSeccompArg[];
}

/** A seccomp filter as runc installs it. */
export interface SpecSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: SpecSeccompSyscall[];
}

/** Linux-specific settings. */
export interface SpecLinux {
  namespaces: SpecNamespace[];
  resources?: SpecResources;
  cgroupsPath?: string;
  devices?: SpecDevice[];
  seccomp?: SpecSeccomp;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
}

/** A runtime-spec `config.json`. */
export interface Spec {
  ociVersion: string;
  process: SpecProcess;
  root: SpecRoot;
  hostname?: string;
  mounts: SpecMount[];
  linux: SpecLinux;
  annotations?: Record<string, string>;
}
