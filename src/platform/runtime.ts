/** Facts about the JavaScript runtime and host that the rest of tsctr asks through one seam. */
import process from "node:process";

declare const Deno: { version: { deno: string } } | undefined;

/** "deno" when running under Deno, otherwise "node". */
export function runtimeName(): "node" | "deno" {
  return typeof Deno !== "undefined" ? "deno" : "node";
}

/** The runtime's own version string (e.g. "24.21.0" or "2.5.6"). */
export function runtimeVersion(): string {
  return typeof Deno !== "undefined" ? Deno.version.deno : process.versions.node;
}

/** The host CPU in OCI/GOARCH terms: amd64, arm64, arm, 386, ppc64le, s390x, riscv64. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  return map[process.arch] ?? process.arch;
}

/** True when the process runs as root (uid 0). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * The command that runs this tsctr again: the executable alone for a single executable (Node SEA, deno
 * compile), else the runtime, its flags and the absolute path of the script (a run from source).
 */
export function selfCommand(): string[] {
  const script = process.argv[1];
  if (!script || !/\.[cm]?[jt]s$/.test(script) || script === process.execPath) return [process.execPath];
  const abs = script.startsWith("/") ? script : `${process.cwd()}/${script}`;
  return runtimeName() === "deno" ? [process.execPath, "run", "--allow-all", "--quiet", abs] : [process.execPath, abs];
}
