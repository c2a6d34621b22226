/**
 * Store administration beside GC: `df`, `prune`, `content ls|rm`, `snapshots ls|rm|usage`,
 * `namespaces ls|create|rm`. Removals refuse what is in use (FailedPrecondition) instead of breaking it.
 */
import { join } from "node:path";
import type { Context } from "./context.ts";
import { collectGarbage, exclusively, readSnapshots, type GcReport } from "./gc.ts";
import { markReferences } from "./references.ts";
import { lockResource } from "./coordination.ts";
import { scanBlobs } from "../content/scan.ts";
import { errorOf } from "../errdefs/mod.ts";
import { isDigest, type Digest } from "../digest/mod.ts";
import { OverlaySnapshotter, diskUsage, snapshotDir, type Usage } from "../snapshots/overlay/mod.ts";
import type { SnapshotInfo } from "../snapshots/types.ts";
import { isLeased } from "../metadata/leases.ts";
import { createNamespace, listNamespaces, removeNamespace } from "../metadata/namespaces.ts";

export interface DiskReport {
  blobs: { count: number; size: number };
  snapshots: { count: number; size: number };
  containers: { count: number; size: number };
  /** Bytes GC would free now (unreferenced blobs and snapshots). */
  reclaimable: number;
}

/** Disk use of the store by kind; snapshot sizes are allocated blocks (shared inodes counted once). */
export async function diskFree(ctx: Context): Promise<DiskReport> {
  const blobs = (await scanBlobs(join(ctx.root, "content"))).filter((b) => b.digest);
  const { byName } = await readSnapshots(ctx);
  const report: DiskReport = {
    blobs: { count: blobs.length, size: blobs.reduce((n, b) => n + b.size, 0) },
    snapshots: { count: 0, size: 0 },
    containers: { count: 0, size: 0 },
    reclaimable: 0,
  };
  const seen = new Set<string>();
  for (const info of byName.values()) {
    const u = await diskUsage(snapshotDir(ctx.snapshotsDir(), info), seen);
    const bucket = info.kind === "committed" ? report.snapshots : report.containers;
    bucket.count++;
    bucket.size += u.size;
  }
  report.reclaimable = (await collectGarbage(ctx, { dryRun: true, measure: true })).bytes;
  return report;
}

/** Removes the namespace's images that no container uses (with `all`), then collects garbage. */
export async function prune(ctx: Context, opts: { all?: boolean } = {}): Promise<{ images: string[]; gc: GcReport }> {
  const md = await ctx.metadata();
  const images: string[] = [];
  if (opts.all) {
    md.transaction(() => {
      const used = new Set(md.listContainers(ctx.namespace).map((c) => c.image));
      for (const img of md.listImages(ctx.namespace)) {
        if (used.has(img.name)) continue;
        md.deleteImage(ctx.namespace, img.name);
        images.push(img.name);
      }
    });
  }
  return { images, gc: await collectGarbage(ctx) };
}

export interface ContentEntry {
  digest: string;
  size: number;
  /** Whether an image, container or live lease references it. */
  used: boolean;
}

/** Every blob in the content store (shared by all namespaces). */
export async function listContent(ctx: Context): Promise<ContentEntry[]> {
  const { byName } = await readSnapshots(ctx);
  const marks = await markReferences(await ctx.metadata(), await ctx.content(), byName);
  return (await scanBlobs(join(ctx.root, "content"))).flatMap((b) => (b.digest ? [{ digest: b.digest, size: b.size, used: marks.content.has(b.digest) }] : []));
}

/** Removes blobs; FailedPrecondition for one that an image or a live lease references. */
export async function removeContent(ctx: Context, digests: string[]): Promise<void> {
  await exclusively(ctx, async () => {
    const md = await ctx.metadata();
    const content = await ctx.content();
    const { byName } = await readSnapshots(ctx);
    const marks = await markReferences(md, content, byName);
    for (const d of digests) {
      if (!isDigest(d)) throw errorOf("InvalidArgument", `content rm: "${d}" is not a digest (sha256:<64 hex>)`);
      if (!(await content.info(d as Digest))) throw errorOf("NotFound", `content ${d}: not found`);
      if (marks.content.has(d)) throw errorOf("FailedPrecondition", `content rm ${d}: an image or an operation in progress uses it`);
      const release = await lockResource(ctx, "blob", d, { timeoutMs: 0 });
      try {
        if (isLeased(md, "content", d)) throw errorOf("FailedPrecondition", `content rm ${d}: an operation in progress uses it`);
        await content.delete(d as Digest);
      } finally {
        await release();
      }
    }
  });
}

export interface SnapshotEntry extends SnapshotInfo {
  used: boolean;
}

/** Every snapshot (shared by all namespaces). */
export async function listSnapshotsWithUse(ctx: Context): Promise<SnapshotEntry[]> {
  const { byName } = await readSnapshots(ctx);
  const marks = await markReferences(await ctx.metadata(), await ctx.content(), byName);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => ({ ...s, used: marks.snapshots.has(s.name) }));
}

/** Removes snapshots; FailedPrecondition for one that an image, a container, a lease or a child uses. */
export async function removeSnapshots(ctx: Context, names: string[]): Promise<void> {
  await exclusively(ctx, async () => {
    const md = await ctx.metadata();
    const { byName } = await readSnapshots(ctx);
    const marks = await markReferences(md, await ctx.content(), byName);
    const snapshotter = await OverlaySnapshotter.open(ctx.snapshotsDir());
    for (const name of names) {
      if (!byName.has(name)) throw errorOf("NotFound", `snapshot "${name}": not found`);
      if (marks.snapshots.has(name)) throw errorOf("FailedPrecondition", `snapshot rm "${name}": an image, a container or an operation in progress uses it`);
      const release = await lockResource(ctx, "snapshot", name, { timeoutMs: 0 });
      try {
        await snapshotter.remove(name);
      } finally {
        await release();
      }
    }
  });
}

/** Disk usage of one snapshot, or of each when `name` is omitted. */
export async function snapshotUsage(ctx: Context, name?: string): Promise<Array<{ name: string } & Usage>> {
  const { byName } = await readSnapshots(ctx);
  if (name !== undefined && !byName.has(name)) throw errorOf("NotFound", `snapshot "${name}": not found`);
  const infos = name === undefined ? [...byName.values()] : [byName.get(name)!];
  const out: Array<{ name: string } & Usage> = [];
  for (const info of infos) out.push({ name: info.name, ...(await diskUsage(snapshotDir(ctx.snapshotsDir(), info))) });
  return out;
}

/** Every namespace. */
export async function namespaces(ctx: Context): Promise<string[]> {
  return listNamespaces(await ctx.metadata());
}

/** Creates namespaces (AlreadyExists when one exists). */
export async function createNamespaces(ctx: Context, names: string[]): Promise<void> {
  const md = await ctx.metadata();
  const { Context: Ctx } = await import("./context.ts");
  for (const n of names) {
    new Ctx({ root: ctx.root, state: ctx.state, namespace: n }); // validates the name
    createNamespace(md, n);
  }
}

/** Removes empty namespaces (FailedPrecondition for one that holds anything). */
export async function removeNamespaces(ctx: Context, names: string[]): Promise<void> {
  const md = await ctx.metadata();
  for (const n of names) removeNamespace(md, n);
}
