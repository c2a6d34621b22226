/** Running helper programs (runc, mount, setfattr…) in one place, the same on Node and Deno. */
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import process from "node:process";
import { errorOf } from "../errdefs/mod.ts";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` with `args` and collects its output. Resolves with the exit code (never throws for a
 * non-zero exit); rejects with FailedPrecondition when the program cannot be started (e.g. not installed).
 */
export function execFile(file: string, args: string[], opts: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      reject(errorOf("FailedPrecondition", `cannot run ${file}: ${e.code === "ENOENT" ? "not installed or not in PATH" : e.message}`, e));
    });
    child.on("close", (code, signal) => {
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs a program and throws `Internal` with its stderr when it exits non-zero; returns stdout. */
export async function execOk(file: string, args: string[], opts: { input?: string | Uint8Array } = {}): Promise<string> {
  const r = await execFile(file, args, opts);
  if (r.code !== 0) {
    const detail = r.stderr.trim().split("\n").pop() || `exit status ${r.code}`;
    throw errorOf("Internal", `${file} ${args[0] ?? ""} failed: ${detail}`);
  }
  return r.stdout;
}
