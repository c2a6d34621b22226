/**
 * `npm run bench:daemon [-- --containers N] [--seconds S] [--exe dist/tsctr-linux-amd64]`: what `tsctr daemon`
 * costs while nothing happens. Starts N (default 5) detached containers with `--restart always`, then the
 * daemon (from source on Node, or the single executable given with --exe),
 * lets it settle, and samples its VmRSS and its CPU time (utime+stime from /proc/<pid>/stat) over S seconds
 * (default 30). Prints the figures as a table and as one JSON line.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { startRegistry } from "../helpers/registry.ts";
import { NODE_SOURCE, makeTsctr } from "../helpers/tsctr.ts";
import { serveBusybox } from "./devbench.ts";
import { procMemory } from "./measure.ts";

/** The kernel's clock ticks per second (USER_HZ), 100 on Linux. */
const TICKS_PER_SECOND = 100;

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function ok(what: string, r: { code: number; stderr: string }): void {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim()}`);
}

async function main(): Promise<void> {
  const n = arg("--containers", 5);
  const seconds = arg("--seconds", 30);
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  const ids = Array.from({ length: n }, (_, k) => `dm-bench-${process.pid}-${k}`);
  const exe = process.argv.indexOf("--exe");
  const [file, ...pre] = exe >= 0 ? [resolve(process.argv[exe + 1]!)] : NODE_SOURCE;
  const daemon = spawn(file!, [...pre, "--root", tsctr.root, "--state", tsctr.state, "daemon"], { stdio: ["ignore", "ignore", "inherit"] });
  try {
    const image = await serveBusybox(reg);
    ok("tsctr pull", await tsctr(["pull", "-q", "--plain-http", image.ref]));
    for (const id of ids) ok("tsctr run -d", await tsctr(["run", "-d", "--restart", "always", image.ref, id, "sleep", "100000"]));
    await sleep(5000);
    const pid = daemon.pid!;
    const t0 = await cpuTicks(pid);
    const rss: number[] = [];
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      rss.push((await procMemory(pid)).rssKb);
    }
    const cpuSeconds = ((await cpuTicks(pid)) - t0) / TICKS_PER_SECOND;
    const { hwmKb } = await procMemory(pid);
    const fig = { containers: n, seconds, rssKbMax: Math.max(...rss), rssKbLast: rss.at(-1)!, hwmKb, cpuSeconds, cpuPercent: Number(((cpuSeconds / seconds) * 100).toFixed(2)) };
    process.stdout.write(`daemon (${exe >= 0 ? "single executable" : "from source"}) idle with ${n} containers over ${seconds} s: VmRSS ${fig.rssKbLast} KiB (max ${fig.rssKbMax}, peak ${hwmKb}), CPU ${cpuSeconds.toFixed(2)} s = ${fig.cpuPercent} %\n`);
    process.stdout.write(`${JSON.stringify(fig)}\n`);
  } finally {
    daemon.kill("SIGTERM");
    if (daemon.exitCode === null) await once(daemon, "exit");
    for (const id of ids) await tsctr(["rm", "-f", id]);
    await tsctr.cleanup();
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:daemon: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
