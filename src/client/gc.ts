/**
 * Reference-based garbage collection of blobs and snapshots (mark: references.ts; sweep: here), and the
 * removal of what interrupted operations left: stale ingests, tmp/ entries of dead processes, dangling
 * short links, dead leases and snapshot records that no image or container uses any more.
 *
 * One collector runs at a time (the "gc" lock). Each unmarked thing is removed only after its lock was
 * taken without waiting (a busy lock means it is in use: it stays) and no live lease holds it, so a pull
 * running meanwhile keeps everything it has leased. Snapshots go children first; every removal is a rename
 * or unlink, so a collector killed at any instant leaves only garbage that the next run removes.
 */
import type { Context } from "./context.ts";
import { lockResource } from "./coordination.ts";
import { markReferences, type Marks } from "./references.ts";
import { OverlaySnapshotter, diskUsage, removeLeftover, scanOverlay, snapshotDir, type OverlayScan } from "../snapshots/overlay/mod.ts";
import { removeIngest, scanBlobs, scanIngests } from "../content/scan.ts";
import { deleteDeadLeases, isLeased } from "../metadata/leases.ts";
import type { MetadataStore } from "../metadata/mod.ts";
import type { SnapshotInfo } from "../snapshots/types.ts";
import { join } from "node:path";
import type { Digest } from "../digest/mod.ts";

/** Partial downloads younger than this, or locked by a live process, are kept (a later pull resumes them). */
export const INGEST_GRACE_MS = 60 * 60_000;

export interface GcOptions {
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  ingestGraceMs?: number;
  /** Measure the disk usage of removed snapshots (slower; `df` wants it). */
  measure?: boolean;
  /** Sweep only these blobs and snapshots (an operation undoing what it made); no other leftovers or records. */
  only?: { content: ReadonlySet<string>; snapshots: ReadonlySet<string> };
}

export interface GcReport {
  blobs: Array<{ digest: string; size: number }>;
  snapshots: Array<{ name: string; size: number }>;
  /** Other leftovers removed: ingests, tmp entries, links, leases, records. */
  leftovers: string[];
  /** Bytes of the removed blobs and (when measured) snapshots. */
  bytes: number;
}

/** The store's snapshots as the overlay directories hold them, and the whole ones by name. */
export async function readSnapshots(ctx: Context): Promise<{ scan: OverlayScan; byName: Map<string, SnapshotInfo> }> {
  await OverlaySnapshotter.open(ctx.snapshotsDir());
  const scan = await scanOverlay(ctx.snapshotsDir());
  const byName = new Map<string, SnapshotInfo>();
  for (const s of scan.snapshots) if (s.info && !s.problem) byName.set(s.info.name, s.info);
  return { scan, byName };
}

/** Runs `fn` as the only collector or checker of the store. */
export async function exclusively<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const release = await lockResource(ctx, "gc", "");
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Collects garbage in the whole store (every namespace); see the module comment for the guarantees. */
export function collectGarbage(ctx: Context, opts: GcOptions = {}): Promise<GcReport> {
  return exclusively(ctx, () => collectLocked(ctx, opts));
}

/** GC for a caller that holds the collector lock already (check --repair). */
export async function collectLocked(ctx: Context, opts: GcOptions = {}): Promise<GcReport> {
  const md = await ctx.metadata();
  const content = await ctx.content();
  const report: GcReport = { blobs: [], snapshots: [], leftovers: [], bytes: 0 };
  if (!opts.dryRun && !opts.only) {
    const n = deleteDeadLeases(md);
    if (n > 0) report.leftovers.push(`${n} dead lease${n === 1 ? "" : "s"}`);
  }
  const { scan, byName } = await readSnapshots(ctx);
  const marks = await markReferences(md, content, byName);
  const snapshotter = opts.dryRun ? undefined : await OverlaySnapshotter.open(ctx.snapshotsDir());

  for (const info of garbageSnapshots(byName, marks)) {
    if (opts.only && !opts.only.snapshots.has(info.name)) continue;
    const size = opts.measure ? (await diskUsage(snapshotDir(ctx.snapshotsDir(), info))).size : 0;
    if (snapshotter) {
      const release = await lockResource(ctx, "snapshot", info.name, { timeoutMs: 0 }).catch(() => undefined);
      if (!release) continue;
      try {
        if (isLeased(md, "snapshot", info.name)) continue;
        const removed = await snapshotter.remove(info.name).then(() => true, () => false);
        if (!removed) continue;
      } finally {
        await release();
      }
    }
    report.snapshots.push({ name: info.name, size });
    report.bytes += size;
  }

  for (const blob of await scanBlobs(join(ctx.root, "content"))) {
    if (!blob.digest || marks.content.has(blob.digest)) continue;
    if (opts.only && !opts.only.content.has(blob.digest)) continue;
    if (!opts.dryRun) {
      const release = await lockResource(ctx, "blob", blob.digest, { timeoutMs: 0 }).catch(() => undefined);
      if (!release) continue;
      try {
        if (isLeased(md, "content", blob.digest)) continue;
        await content.delete(blob.digest as Digest);
      } finally {
        await release();
      }
    }
    report.blobs.push({ digest: blob.digest, size: blob.size });
    report.bytes += blob.size;
  }

  if (opts.only) return report;
  report.leftovers.push(...(await removeLeftovers(ctx, scan, opts)));
  if (!opts.dryRun) report.leftovers.push(...dropStaleRecords(md, marks));
  return report;
}

/** Unmarked whole snapshots, children before their parents; staging snapshots of live pulls excluded. */
export function garbageSnapshots(byName: Map<string, SnapshotInfo>, marks: Marks): SnapshotInfo[] {
  const depth = (info: SnapshotInfo): number => {
    let d = 0;
    for (let p = info.parent; p !== undefined && d < 10_000; p = byName.get(p)?.parent) d++;
    return d;
  };
  return [...byName.values()]
    .filter((s) => !marks.snapshots.has(s.name) && !(marks.liveLeases && s.kind !== "committed" && s.name.startsWith("extract-")))
    .sort((a, b) => depth(b) - depth(a));
}

/** Stale ingests, dead processes' tmp entries and dangling links; returns what it removed (or would). */
async function removeLeftovers(ctx: Context, scan: OverlayScan, opts: GcOptions): Promise<string[]> {
  const out: string[] = [];
  const grace = opts.ingestGraceMs ?? INGEST_GRACE_MS;
  for (const ingest of await scanIngests(join(ctx.root, "content"))) {
    if (ingest.locked || Date.now() - ingest.mtimeMs < grace) continue;
    if (!opts.dryRun) await removeIngest(ingest.path);
    out.push(`ingest ${ingest.ref ?? ingest.path}`);
  }
  for (const name of scan.leftoverTmp) {
    if (!opts.dryRun) await removeLeftover(ctx.snapshotsDir(), "tmp", name);
    out.push(`snapshot staging ${name}`);
  }
  for (const name of scan.danglingLinks) {
    if (!opts.dryRun) await removeLeftover(ctx.snapshotsDir(), "link", name);
    out.push(`snapshot link l/${name}`);
  }
  return out;
}

/**
 * Deletes per-namespace snapshot records that no image or container of that namespace uses (after an
 * `images rm`), in one transaction; records a live lease holds (a pull about to write its image) stay.
 */
function dropStaleRecords(md: MetadataStore, marks: Marks): string[] {
  return md.transaction(() => {
    const out: string[] = [];
    const containers = new Set(md.statement("SELECT namespace, snapshot_key FROM containers").all().map((r) => `${String(r.namespace)}/${String(r.snapshot_key)}`));
    for (const rec of md.listSnapshots()) {
      const used = rec.kind === "committed" ? marks.chainsByNamespace.get(rec.namespace)?.has(rec.key) : containers.has(`${rec.namespace}/${rec.key}`);
      if (used || isLeased(md, "snapshot", rec.key)) continue;
      md.deleteSnapshot(rec.namespace, rec.key);
      out.push(`snapshot record ${rec.namespace}/${rec.key}`);
    }
    return out;
  });
}
