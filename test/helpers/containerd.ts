/**
 * A private containerd for tests and benchmarks: Debian's containerd with `containerd config default` moved
 * to its own root, state and socket under a temporary directory, the CRI plugin off. The client is
 * `ctr -a socket`. `stop()` ends it, kills the shims it started and deletes the directory.
 *
 *   const ctd = await startContainerd();
 *   await execFile("ctr", ["-a", ctd.socket, "images", "ls"]);
 *   await ctd.stop();
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { execFile } from "../../src/platform/exec.ts";

export interface TestContainerd {
  /** The gRPC socket, for `ctr -a`. */
  socket: string;
  /** containerd's pid. */
  pid: number;
  /** Stops containerd (SIGTERM, then SIGKILL), the shims it started, and removes its directory (unless `dir` was given). */
  stop(): Promise<void>;
}

/** The default config with every path under `dir` and the CRI plugin disabled. */
export async function containerdConfig(dir: string): Promise<string> {
  const r = await execFile("containerd", ["config", "default"]);
  if (r.code !== 0) throw new Error(`containerd config default failed: ${r.stderr.trim().split("\n").pop()}`);
  let cfg = r.stdout
    .replaceAll("/var/lib/containerd", join(dir, "root"))
    .replaceAll("/run/containerd", join(dir, "state"))
    .replace(/^disabled_plugins = \[.*\]$/m, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]');
  if (!cfg.includes('disabled_plugins = ["io.containerd.grpc.v1.cri"]')) cfg = `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n${cfg}`;
  if (cfg.includes("/run/containerd") || cfg.includes("/var/lib/containerd")) throw new Error("containerd config still names the system paths");
  return cfg;
}

/** Starts a private containerd under `dir` (default: a fresh temporary directory) and waits until it answers. */
export async function startContainerd(dir?: string): Promise<TestContainerd> {
  const base = dir ?? (await mkdtemp(join(tmpdir(), "tsctr-containerd-")));
  await mkdir(base, { recursive: true });
  const config = join(base, "config.toml");
  await writeFile(config, await containerdConfig(base));
  const socket = join(base, "state", "containerd.sock");
  const logPath = join(base, "containerd.log");
  const log = openSync(logPath, "a");
  // Its own process group: Ctrl-C reaches only the caller, which then stops containerd in order.
  const child = spawn("containerd", ["--config", config], { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => ((exited = true), resolve()));
    child.once("error", () => ((exited = true), resolve()));
  });
  const logTail = async () => (await readFile(logPath, "utf8").catch(() => "")).trim().split("\n").slice(-5).join(" | ");
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(timer);
    }
    await killShims(socket);
    if (dir === undefined) {
      const mounts = (await execFile("findmnt", ["-rn", "-o", "TARGET"])).stdout.split("\n").filter((m) => m.startsWith(base));
      for (const m of mounts.reverse()) await execFile("umount", ["-l", m]);
      await rm(base, { recursive: true, force: true });
    }
  };
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`containerd exited at start-up: ${await logTail()}`);
    const r = await execFile("ctr", ["-a", socket, "version"]).catch(() => undefined);
    if (r && r.code === 0) break;
    if (i >= 100) {
      await stop();
      throw new Error(`containerd did not answer on ${socket} within 20 s: ${await logTail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { socket, pid: child.pid!, stop };
}

/** Kills containerd-shim processes that were started for the containerd on `socket` (they outlive it). */
async function killShims(socket: string): Promise<void> {
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!argv[0]?.includes("containerd-shim")) continue;
    const i = argv.indexOf("-address");
    if (i >= 0 && argv[i + 1] === socket) {
      try {
        process.kill(Number(name), "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
}
