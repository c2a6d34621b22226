/**
 * Seccomp profiles in Docker's file format (rules that apply only with some capabilities or on some
 * architectures) and their compilation into the runtime-spec filter that runc installs for one container.
 * The default profile lives in seccomp_default.ts.
 */
import { open } from "node:fs/promises";
import { errorOf } from "../errdefs/mod.ts";
import type { SpecSeccomp, SpecSeccompArg, SpecSeccompSyscall } from "./spec_types.ts";

/** Which containers a rule applies to: by capabilities the container holds and by the host architecture. */
export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
}

/** One rule of a profile; `includes` must all hold and no `excludes` may hold for it to apply. */
export interface SeccompRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: SpecSeccompArg[] | null;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  comment?: string;
}

/** A profile as Docker's JSON files write it (`architectures` or `archMap`, `syscalls`). */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls?: SeccompRule[];
}

const ACTIONS = new Set(["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"]);
const OPS = new Set(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]);

/** The libseccomp architectures a filter covers on a host (its native one plus the compat ABIs). */
export const SECCOMP_ARCHES: Readonly<Record<string, readonly string[]>> = {
  amd64: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  arm64: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
  arm: ["SCMP_ARCH_ARM"],
  "386": ["SCMP_ARCH_X86"],
};

/** libseccomp's name of each host architecture (GOARCH) for `archMap` look-ups. */
const NATIVE_ARCH: Readonly<Record<string, string>> = { amd64: "SCMP_ARCH_X86_64", arm64: "SCMP_ARCH_AARCH64", arm: "SCMP_ARCH_ARM", "386": "SCMP_ARCH_X86" };

/**
 * The filter for a container holding `capabilities` on a host of architecture `arch` (GOARCH: amd64,
 * arm64, arm): rules whose includes/excludes do not match are left out, names are merged per rule.
 */
export function compileSeccomp(profile: SeccompProfile, opts: { capabilities: readonly string[]; arch: string }): SpecSeccomp {
  // Docker's rules: a rule applies when the container holds every included capability and the host is one of
  // the included architectures, and it holds no excluded capability and is no excluded architecture.
  const holds = (cap: string) => opts.capabilities.includes(cap);
  const included = (f: SeccompFilter = {}) => (f.caps ?? []).every(holds) && (!f.arches?.length || f.arches.includes(opts.arch));
  const excluded = (f: SeccompFilter = {}) => (f.caps ?? []).some(holds) || (f.arches ?? []).includes(opts.arch);
  const syscalls: SpecSeccompSyscall[] = [];
  for (const rule of profile.syscalls ?? []) {
    if (!included(rule.includes) || excluded(rule.excludes)) continue;
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (names.length === 0) continue;
    const out: SpecSeccompSyscall = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }
  const filter: SpecSeccomp = { defaultAction: profile.defaultAction, architectures: architecturesFor(profile, opts.arch), syscalls };
  if (profile.defaultErrnoRet !== undefined) filter.defaultErrnoRet = profile.defaultErrnoRet;
  return filter;
}

function architecturesFor(profile: SeccompProfile, arch: string): string[] {
  if (profile.architectures) return [...profile.architectures];
  if (profile.archMap) {
    const native = NATIVE_ARCH[arch];
    const entry = profile.archMap.find((m) => m.architecture === native);
    return entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [];
  }
  return [...(SECCOMP_ARCHES[arch] ?? [])];
}

/**
 * Checks that `value` (parsed JSON from `source`) is a usable profile: a known default action, rules with
 * names, known actions and argument operators. Throws InvalidArgument naming `source` and the problem.
 */
export function parseSeccompProfile(value: unknown, source: string): SeccompProfile {
  const fail = (detail: string) => errorOf("InvalidArgument", `seccomp profile ${source}: ${detail}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail("expected a JSON object");
  const p = value as Record<string, unknown>;
  if (typeof p.defaultAction !== "string" || !ACTIONS.has(p.defaultAction)) throw fail(`unknown defaultAction ${JSON.stringify(p.defaultAction)}`);
  if (p.defaultErrnoRet !== undefined && !Number.isInteger(p.defaultErrnoRet)) throw fail("defaultErrnoRet must be a whole number");
  if (p.architectures !== undefined && !(Array.isArray(p.architectures) && p.architectures.every((a) => typeof a === "string"))) throw fail("architectures must be a list of names");
  if (p.syscalls !== undefined && !Array.isArray(p.syscalls)) throw fail("syscalls must be a list");
  for (const [i, r] of ((p.syscalls ?? []) as Record<string, unknown>[]).entries()) {
    const names = r?.names ?? (r?.name === undefined ? undefined : [r.name]);
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === "string")) throw fail(`syscalls[${i}] has no names`);
    if (typeof r.action !== "string" || !ACTIONS.has(r.action)) throw fail(`syscalls[${i}] has unknown action ${JSON.stringify(r.action)}`);
    for (const a of (r.args ?? []) as Record<string, unknown>[]) {
      if (!Number.isInteger(a?.index) || typeof a.value !== "number" || typeof a.op !== "string" || !OPS.has(a.op)) throw fail(`syscalls[${i}] has a malformed argument rule`);
    }
  }
  return value as SeccompProfile;
}

/** ELF e_machine values of the architectures seccomp filters are built for. */
const ELF_MACHINES: Readonly<Record<number, string>> = { 0x3e: "amd64", 0xb7: "arm64", 0x28: "arm", 0x03: "386" };

/**
 * The architecture (GOARCH) of the executable at `path`, from its ELF header; undefined when it is not an
 * ELF file of a known machine. runc installs the filter, so its architecture is the filter's native one,
 * even when tsctr itself or the container's programs run under qemu-user emulation.
 */
export async function executableArchitecture(path: string): Promise<string | undefined> {
  const header = new Uint8Array(20);
  try {
    const fh = await open(path, "r");
    try {
      await fh.read(header, 0, 20, 0);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  const elf = header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c && header[3] === 0x46;
  const little = header[5] === 1;
  const machine = little ? header[18]! | (header[19]! << 8) : (header[18]! << 8) | header[19]!;
  return elf ? ELF_MACHINES[machine] : undefined;
}
