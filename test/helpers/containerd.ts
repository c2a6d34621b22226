/**
 * A private containerd for tests and the benchmark: Debian's containerd with `containerd config default` moved to
 * its own root, state and socket under a directory of ours, the CRI plugin off, started in the background
 * and stopped (with any shims it left) at the end. The client is `ctr -a SOCK`.
 *
 *   const ctd = await startContainerd(join(base, "containerd"));
 *   await ctd.ctr(["images", "pull", "--plain-http", ref]);
 *   await ctd.clean();   // no images, containers, snapshots or content left
 *   await ctd.stop();
 */
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { execFile, type ExecResult } from "../../src/platform/exec.ts";
import { lastLines } from "./text.ts";

export interface PrivateContainerd {
  /** The gRPC socket, for `ctr -a`. */
  sock: string;
  /** containerd's pid (for its RSS). */
  pid: number;
  dir: string;
  version: string;
  /** Runs `ctr -a SOCK ...args`. */
  ctr(args: string[]): Promise<ExecResult>;
  /** Removes every container, image, snapshot and content blob, and waits for the garbage collector. */
  clean(): Promise<void>;
  /** Stops containerd (SIGTERM, then SIGKILL) and the shims it started; safe to call twice. */
  stop(): Promise<void>;
}

/** The default config with every path under `dir` and the CRI plugin disabled. */
export async function containerdConfig(dir: string): Promise<string> {
  const r = await execFile("containerd", ["config", "default"]);
  if (r.code !== 0) throw new Error(`containerd config default failed: ${lastLines(r.stderr)}`);
  let cfg = r.stdout
    .replaceAll("/var/lib/containerd", join(dir, "root"))
    .replaceAll("/run/containerd", join(dir, "state"))
    .replace(/^disabled_plugins = \[.*\]$/m, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]');
  if (!cfg.includes('disabled_plugins = ["io.containerd.grpc.v1.cri"]')) cfg = `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n${cfg}`;
  if (cfg.includes("/run/containerd") || cfg.includes("/var/lib/containerd")) throw new Error("containerd config still names the system paths");
  return cfg;
}

export async function startContainerd(dir: string): Promise<PrivateContainerd> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, "config.toml");
  await writeFile(config, await containerdConfig(dir));
  const sock = join(dir, "state", "containerd.sock");
  const logPath = join(dir, "containerd.log");
  const log = openSync(logPath, "a");
  // Its own process group: Ctrl-C reaches only the benchmark, which then stops containerd in order.
  const child = spawn("containerd", ["--config", config], { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => ((exited = true), resolve()));
    child.once("error", () => ((exited = true), resolve()));
  });
  const ctr = (args: string[]) => execFile("ctr", ["-a", sock, ...args]);

  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(timer);
    }
    await killShims(sock);
  };

  let version = "";
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`containerd exited at start-up: ${lastLines(await readFile(logPath, "utf8").catch(() => ""))}`);
    const r = await ctr(["version"]).catch(() => undefined);
    if (r && r.code === 0) {
      version = /Server:[\s\S]*?Version:\s*(\S+)/.exec(r.stdout)?.[1] ?? "";
      break;
    }
    if (i >= 100) {
      await stop();
      throw new Error(`containerd did not answer on ${sock} within 20 s: ${lastLines(await readFile(logPath, "utf8").catch(() => ""))}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const clean = async () => {
    for (const id of lines((await ctr(["tasks", "ls", "-q"])).stdout)) await ctr(["tasks", "kill", "-s", "SIGKILL", id]);
    for (const id of lines((await ctr(["tasks", "ls", "-q"])).stdout)) await ctr(["tasks", "rm", "-f", id]);
    for (const id of lines((await ctr(["containers", "ls", "-q"])).stdout)) await ctr(["containers", "rm", id]);
    const images = lines((await ctr(["images", "ls", "-q"])).stdout);
    if (images.length > 0) await ctr(["images", "rm", "--sync", ...images]);
    // The GC usually removed everything; remove what is left, children before their parents.
    for (let pass = 0; pass < 20; pass++) {
      const rows = lines((await ctr(["snapshots", "ls"])).stdout).slice(1).map((l) => l.split(/\s+/));
      if (rows.length === 0) break;
      const parents = new Set(rows.map((r) => r[1]));
      for (const [key] of rows) if (key && !parents.has(key)) await ctr(["snapshots", "rm", key]);
    }
    const blobs = lines((await ctr(["content", "ls", "-q"])).stdout);
    for (let i = 0; i < blobs.length; i += 50) await ctr(["content", "rm", ...blobs.slice(i, i + 50)]);
    const left = lines((await ctr(["snapshots", "ls"])).stdout).length - 1 + lines((await ctr(["content", "ls", "-q"])).stdout).length;
    if (left > 0) throw new Error(`containerd still holds ${left} snapshots or blobs after cleaning`);
  };

  return { sock, pid: child.pid!, dir, version, ctr, clean, stop };
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Kills containerd-shim processes that were started for the containerd on `sock` (they outlive it). */
async function killShims(sock: string): Promise<void> {
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    const argv = cmdline.split("\0");
    if (!argv[0]?.includes("containerd-shim")) continue;
    const i = argv.indexOf("-address");
    if (i >= 0 && argv[i + 1] === sock) {
      try {
        process.kill(Number(name), "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
}
