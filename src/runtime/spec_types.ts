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

/** Cgroup resource settings; tsctr only sets device rules so far. */
export interface SpecResources {
  devices?: SpecDeviceCgroup[];
}

/** Linux-specific settings. */
export interface SpecLinux {
  namespaces: SpecNamespace[];
  resources?: SpecResources;
  cgroupsPath?: string;
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
