/**
 * A private containerd for the benchmark: Debian's containerd with `containerd config default` moved to
 * its own root, state and socket under a directory of ours, the CRI plugin off, started in the background
 * and stopped (with any shims it left) at the end. The client is `ctr -a SOCK`.
 *
 *   const ctd = await startContainerd(join(base, "containerd"));
 *   await ctd.ctr(["images", "pull", "--plain-http", ref]);
 *   await ctd.clean();   // no images, containers, snapshots or content left
 *   await ctd.stop();
 */
import { execFile, type ExecResult } from "../../src/platform/exec.ts";
import { startContainerd as startTestContainerd } from "../helpers/containerd.ts";

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

export async function startContainerd(dir: string): Promise<PrivateContainerd> {
  const started = await startTestContainerd(dir);
  const sock = started.socket;
  const ctr = (args: string[]) => execFile("ctr", ["-a", sock, ...args]);
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= started.stop());
  const r = await ctr(["version"]);
  const version = /Server:[\s\S]*?Version:\s*(\S+)/.exec(r.stdout)?.[1] ?? "";

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

  return { sock, pid: started.pid, dir, version, ctr, clean, stop };
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}
