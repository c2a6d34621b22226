/**
 * `npm run bench:monitor [-- --containers N]`: the memory a detached container costs beside it, side by side.
 * tsctr: the monitor process (the parent of the container's init) after `tsctr run -d`; containerd: the
 * containerd-shim-runc-v2 process after `ctr run -d`, on a private containerd. Each container prints a line
 * a second, so the log path is exercised. Reports VmRSS, VmHWM (peak) and Pss (smaps_rollup) per process.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { startRegistry } from "../helpers/registry.ts";
import { makeTsctr } from "../helpers/tsctr.ts";
import { serveBusybox } from "./devbench.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { procMemory } from "./measure.ts";

interface Figure {
  who: string;
  pid: number;
  rssKb: number;
  hwmKb: number;
  pssKb: number;
}

const SCRIPT = "while true; do echo tick; sleep 1; done";

async function parentOf(pid: number): Promise<number> {
  return Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

async function measure(who: string, pid: number): Promise<Figure> {
  const mem = await procMemory(pid);
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
  const pssKb = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? NaN);
  return { who, pid, ...mem, pssKb };
}

function ok(what: string, r: { code: number; stderr: string }): void {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim()}`);
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--containers");
  const n = i >= 0 ? Number(process.argv[i + 1]) : 3;
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  const figures: Figure[] = [];
  const ids = Array.from({ length: n }, (_, k) => `lc-bench-${process.pid}-${k}`);
  let ctd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  try {
    const image = await serveBusybox(reg);
    ok("tsctr pull", await tsctr(["pull", "-q", "--plain-http", image.ref]));
    for (const id of ids) ok("tsctr run -d", await tsctr(["run", "-d", image.ref, id, "sh", "-c", SCRIPT]));
    await sleep(3000);
    for (const id of ids) {
      const ps = JSON.parse((await tsctr(["ps", "--format", "json"])).stdout.split("\n").find((l) => l.includes(`"${id}"`))!) as { Pid: number };
      figures.push(await measure("tsctr-monitor", await parentOf(ps.Pid)));
    }

    ctd = await startContainerd(join(tsctr.root, "..", "containerd"));
    ok("ctr pull", await ctd.ctr(["images", "pull", "--plain-http", image.ref]));
    for (const id of ids) ok("ctr run -d", await ctd.ctr(["run", "-d", image.ref, id, "sh", "-c", SCRIPT]));
    await sleep(3000);
    const tasks = (await ctd.ctr(["tasks", "ls"])).stdout.split("\n").slice(1).filter(Boolean);
    for (const row of tasks) figures.push(await measure("containerd-shim-runc-v2", await parentOf(Number(row.split(/\s+/)[1]))));
  } finally {
    for (const id of ids) await tsctr(["rm", "-f", id]);
    if (ctd) {
      await ctd.clean().catch(() => {});
      await ctd.stop();
    }
    await tsctr.cleanup();
    await reg.stop();
  }
  process.stdout.write(`${"process".padEnd(26)}${"pid".padStart(8)}${"VmRSS KiB".padStart(12)}${"VmHWM KiB".padStart(12)}${"Pss KiB".padStart(10)}\n`);
  for (const f of figures) process.stdout.write(`${f.who.padEnd(26)}${String(f.pid).padStart(8)}${String(f.rssKb).padStart(12)}${String(f.hwmKb).padStart(12)}${String(f.pssKb).padStart(10)}\n`);
  process.stdout.write(`${JSON.stringify({ monitor: figures.filter((f) => f.who === "tsctr-monitor"), shim: figures.filter((f) => f.who !== "tsctr-monitor") })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:monitor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
