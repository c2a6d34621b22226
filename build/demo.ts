/**
 * The offline demo's second half (build/demo.sh runs it after set-up and build): a local registry with a
 * busybox index (amd64 + arm64), then the built executable pulls and runs it as a user would.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { startRegistry } from "../test/helpers/registry.ts";
import { pushBusyboxIndex } from "../test/helpers/oci_builder.ts";

const arch = process.arch === "arm64" ? "arm64" : "amd64";
const exe = resolve(import.meta.dirname, "..", "dist", `tsctr-linux-${arch}`);
const dir = await mkdtemp(join(tmpdir(), "tsctr-demo-"));
const reg = await startRegistry();
let failed = false;

/** Quotes an argument for display the way a shell user would type it. */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
}

/** Shows a command as a user would type it, runs it with the terminal attached, and returns its status. */
function step(args: string[]): number {
  process.stdout.write(`\n$ tsctr ${args.map(shellQuote).join(" ")}\n`);
  const r = spawnSync(exe, ["--root", join(dir, "root"), "--state", join(dir, "state"), ...args], { stdio: "inherit" });
  return r.status ?? 1;
}

try {
  process.stdout.write(`demo: registry on ${reg.host}; building busybox:1 (linux/amd64 + linux/arm64/v8) from Debian's busybox-static\n`);
  await pushBusyboxIndex(reg.host, "busybox", "1");
  const ref = `${reg.host}/busybox:1`;
  process.stdout.write(`demo: using ${exe} with --root/--state under ${dir}\n`);
  const steps: Array<[string[], number]> = [
    [["version"], 0],
    [["pull", "--plain-http", ref], 0],
    [["images", "ls"], 0],
    [["run", "--rm", ref, "demo", "sh", "-c", "echo hello from a tsctr container on $(uname -m); cat /etc/passwd | wc -l"], 0],
    [["run", "--rm", "--env", "CODE=3", ref, "demo-exit", "sh", "-c", "exit $CODE"], 3],
  ];
  for (const [args, expected] of steps) {
    const status = step(args);
    if (status !== expected) {
      process.stderr.write(`demo: "tsctr ${args.join(" ")}" exited ${status}, expected ${expected}\n`);
      failed = true;
      break;
    }
  }
  if (!failed) process.stdout.write("\ndemo: done — the container's exit status (3) came back as tsctr's\n");
} finally {
  await reg.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
