/** Listing and removing container records (the lifecycle commands come with tasks). */
import { rm } from "node:fs/promises";
import type { Context } from "./context.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { errorOf } from "../errdefs/mod.ts";
import type { ContainerRecord } from "../metadata/mod.ts";
import { unmount } from "../mount/mod.ts";
import { Runc, findRunc } from "../runtime/mod.ts";
import { join } from "node:path";
import { disconnectNetwork } from "./network.ts";
import { killAndWait } from "./tasks.ts";
import { emitEvent } from "./events.ts";

/** Every container record in the namespace. */
export async function listContainers(ctx: Context): Promise<ContainerRecord[]> {
  return (await ctx.metadata()).listContainers(ctx.namespace);
}

/**
 * Removes a stopped container: its runc state (and cgroup), mount, bundle, task directory (log, exit
 * record), writable snapshot and record, in that order, so an interrupted removal can simply be repeated.
 * FailedPrecondition while it still runs, unless `force`: then it is killed (SIGKILL) and reaped first.
 */
export async function removeContainer(ctx: Context, id: string, opts: { force?: boolean } = {}): Promise<void> {
  const md = await ctx.metadata();
  const rec = md.getContainer(ctx.namespace, id);
  if (!rec) throw errorOf("NotFound", `container "${id}": not found in namespace ${ctx.namespace}`);
  const runc = new Runc({ binary: await findRunc(), root: ctx.runcRoot() });
  const state = await runc.state(id).catch(() => undefined);
  if (state && (state.status === "running" || state.status === "paused")) {
    if (!opts.force) throw errorOf("FailedPrecondition", `container "${id}": still ${state.status}; stop it first or use rm -f`);
    await killAndWait(ctx, id);
  }
  if (state) await runc.delete(id, { force: true });
  await disconnectNetwork(ctx, id);
  const bundle = ctx.bundleDir(id);
  await unmount(join(bundle, "rootfs")).catch(() => {});
  await rm(bundle, { recursive: true, force: true });
  await rm(ctx.taskDir(id), { recursive: true, force: true });
  const snapshotter = await openSnapshotter(ctx);
  if (await snapshotter.stat(rec.snapshotKey)) await snapshotter.remove(rec.snapshotKey);
  md.transaction(() => {
    md.deleteContainer(ctx.namespace, id);
    md.deleteSnapshot(ctx.namespace, rec.snapshotKey);
  });
  await emitEvent(ctx, "delete", id);
}
