/**
 * OCI runtime spec generation: an image config plus run options become a `config.json` with the same
 * defaults as containerd's default Unix spec and Docker's (namespaces, mounts, capabilities, masked paths).
 */
import type { ImageConfig } from "../images/types.ts";
import { errorOf } from "../errdefs/mod.ts";
import type { Spec, SpecDeviceCgroup, SpecMount, SpecNamespace, SpecUser } from "./spec_types.ts";
import { capabilitySet } from "./capabilities.ts";
import { cgroupsPathFor } from "./cgroups.ts";
import { applySettings, type ContainerSettings } from "./spec_settings.ts";

export { DEFAULT_CAPABILITIES } from "./capabilities.ts";

/** The runtime-spec version tsctr writes; runc 1.1 implements 1.0.2. */
export const OCI_VERSION = "1.0.2";

/** PATH when the image sets none (Docker's and containerd's default). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Paths hidden from the container (runc bind-mounts /dev/null or an empty read-only tmpfs over them). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Paths the container sees read-only. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** The standard character devices a container may use; everything else is denied. */
const ALLOWED_DEVICES: readonly [major: number, minor: number | undefined][] = [
  [1, 3], // null
  [1, 5], // zero
  [1, 7], // full
  [1, 8], // random
  [1, 9], // urandom
  [5, 0], // tty
  [5, 2], // ptmx
  [136, undefined], // pts/* (any minor)
];

/** What a container spec is generated from: the image config plus the `run` command line. */
export interface SpecOptions {
  /** The container ID: the default hostname and the last cgroup path element. */
  id: string;
  /** The tsctr namespace (like containerd's): the cgroup path is /tsctr/<namespace>/<id>. */
  namespace: string;
  /** The image config the process is derived from. */
  image: ImageConfig;
  /** The root filesystem, absolute or relative to the bundle; default "rootfs". */
  rootfs?: string;
  /** CMD [ARG…] from the command line: replaces the image's Cmd; the Entrypoint stays. */
  args?: string[];
  /** K=V entries that override the image's Env by key, in order. */
  env?: string[];
  /** Give the process a terminal. */
  tty?: boolean;
  /** Default: the container ID. */
  hostname?: string;
  /** Default: the image's WorkingDir, or "/". */
  cwd?: string;
  /** The resolved image User (see resolveUser); default root (0:0). `home` sets HOME unless Env has it. */
  user?: SpecUser & { home?: string };
  /** Mounts, privileges, devices, seccomp and limits from the `run` flags (see spec_settings.ts). */
  settings?: ContainerSettings;
}

/**
 * Builds a runtime-spec config for one container. Pure and deterministic: the same options give the same
 * spec. Throws InvalidArgument when no command results (no Entrypoint, Cmd or args) or cwd is relative.
 */
export function generateSpec(opts: SpecOptions): Spec {
  const image = opts.image.config ?? {};
  const args = processArgs(image.Entrypoint, image.Cmd, opts.args);
  if (args.length === 0) throw errorOf("InvalidArgument", `generate spec for ${opts.id}: no command specified (the image has no Entrypoint or Cmd)`);
  const cwd = opts.cwd || image.WorkingDir || "/";
  if (!cwd.startsWith("/")) throw errorOf("InvalidArgument", `generate spec for ${opts.id}: working directory ${JSON.stringify(cwd)} is not absolute`);
  const user = opts.user ?? { uid: 0, gid: 0 };
  const defaults = [`PATH=${DEFAULT_PATH}`];
  if (opts.tty) defaults.push("TERM=xterm");
  if (user.home) defaults.push(`HOME=${user.home}`);
  const env = mergeEnv(mergeEnv(image.Env ?? [], opts.env ?? []), defaults, false);
  const settings = opts.settings ?? {};
  const caps = capabilitySet({ add: settings.capAdd, drop: settings.capDrop, privileged: settings.privileged, known: settings.knownCapabilities });
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.tty ?? false,
      user: { uid: user.uid, gid: user.gid, additionalGids: [...(user.additionalGids ?? [])] },
      args,
      env,
      cwd,
      capabilities: { bounding: caps, effective: [...caps], permitted: [...caps] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs ?? "rootfs", readonly: false },
    hostname: opts.hostname ?? opts.id,
    mounts: defaultMounts(),
    linux: {
      namespaces: (["pid", "ipc", "uts", "mount", "network"] as const).map((type): SpecNamespace => ({ type })),
      resources: { devices: defaultDeviceRules() },
      cgroupsPath: cgroupsPathFor(opts.namespace, opts.id),
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  applySettings(spec, settings);
  return spec;
}

/**
 * The process argv: Entrypoint followed by `override` when it is non-empty, otherwise by the image's Cmd
 * (Docker's rule, which `tsctr run IMAGE ID CMD…` follows).
 */
export function processArgs(entrypoint: readonly string[] | null | undefined, cmd: readonly string[] | null | undefined, override?: readonly string[]): string[] {
  const tail = override && override.length > 0 ? override : (cmd ?? []);
  return [...(entrypoint ?? []), ...tail];
}

/**
 * Merges K=V lists: an entry of `extra` replaces the base entry with the same key in place, new keys are
 * appended. With `replace` false, entries of `extra` are only added when the key is not yet set.
 * An entry without "=" counts its whole text as the key.
 */
export function mergeEnv(base: readonly string[], extra: readonly string[], replace = true): string[] {
  const out = [...base];
  const index = new Map<string, number>();
  out.forEach((kv, i) => index.set(envKey(kv), i));
  for (const kv of extra) {
    const at = index.get(envKey(kv));
    if (at === undefined) {
      index.set(envKey(kv), out.length);
      out.push(kv);
    } else if (replace) {
      out[at] = kv;
    }
  }
  return out;
}

function envKey(kv: string): string {
  const eq = kv.indexOf("=");
  return eq < 0 ? kv : kv.slice(0, eq);
}

function defaultMounts(): SpecMount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
  ];
}

function defaultDeviceRules(): SpecDeviceCgroup[] {
  const rules: SpecDeviceCgroup[] = [{ allow: false, access: "rwm" }];
  for (const [major, minor] of ALLOWED_DEVICES) {
    rules.push(minor === undefined ? { allow: true, type: "c", major, access: "rwm" } : { allow: true, type: "c", major, minor, access: "rwm" });
  }
  return rules;
}
