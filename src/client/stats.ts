/**
 * `stats`: usage figures of running containers read from their cgroups (v1 or v2), CPU as a share of
 * one core over the sampling interval, memory without the page cache the kernel can drop.
 */
import { totalmem } from "node:os";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Context } from "./context.ts";
import { errorOf } from "../errdefs/mod.ts";
import { Runc, cgroupLayout, cgroupsPathFor, findRunc, readCgroupStats, type CgroupLayout, type CgroupStats } from "../runtime/mod.ts";

/** One container's figures over one interval. */
export interface ContainerStats {
  id: string;
  /** 100 = one core busy for the whole interval. */
  cpuPercent: number;
  memoryUsage: number;
  /** The cgroup's limit, or the host's memory when the container has none. */
  memoryLimit: number;
  memoryPercent: number;
  pids: number;
  pidsLimit?: number;
}

/**
 * Yields the figures of every container in `ids` once per `intervalMs` (the first after one interval,
 * since CPU use needs two readings); once only unless `stream`. NotFound for an unknown container,
 * FailedPrecondition for one that is not running. A stream ends when a container stops.
 */
export async function* containerStats(ctx: Context, ids: readonly string[], opts: { stream: boolean; intervalMs?: number }): AsyncGenerator<ContainerStats[]> {
  const md = await ctx.metadata();
  const runc = new Runc({ binary: await findRunc(), root: ctx.runcRoot() });
  for (const id of ids) {
    if (!md.getContainer(ctx.namespace, id)) throw errorOf("NotFound", `container "${id}": not found in namespace ${ctx.namespace}`);
    const state = await runc.state(id).catch(() => undefined);
    if (state?.status !== "running" && state?.status !== "paused") throw errorOf("FailedPrecondition", `stats ${id}: the container is not running`);
  }
  const layout = await cgroupLayout();
  let previous = await readAll(layout, ctx.namespace, ids);
  for (;;) {
    await sleep(opts.intervalMs ?? 1000);
    const current = await readAll(layout, ctx.namespace, ids).catch(() => undefined);
    if (!current) return;
    yield ids.map((id, i) => figures(id, previous[i]!, current[i]!));
    if (!opts.stream) return;
    previous = current;
  }
}

interface Reading {
  at: bigint;
  stats: CgroupStats;
}

async function readAll(layout: CgroupLayout, namespace: string, ids: readonly string[]): Promise<Reading[]> {
  return Promise.all(ids.map(async (id) => ({ at: process.hrtime.bigint(), stats: await readCgroupStats(layout, cgroupsPathFor(namespace, id)) })));
}

function figures(id: string, before: Reading, after: Reading): ContainerStats {
  const elapsed = Number(after.at - before.at);
  const cpu = Math.max(0, after.stats.cpuNanos - before.stats.cpuNanos);
  const memoryLimit = Math.min(after.stats.memoryLimit ?? Infinity, totalmem());
  return {
    id,
    cpuPercent: elapsed > 0 ? (cpu / elapsed) * 100 : 0,
    memoryUsage: after.stats.memoryUsage,
    memoryLimit,
    memoryPercent: (after.stats.memoryUsage / memoryLimit) * 100,
    pids: after.stats.pids,
    ...(after.stats.pidsLimit === undefined ? {} : { pidsLimit: after.stats.pidsLimit }),
  };
}
