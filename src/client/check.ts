/**
 * `tsctr check [--full] [--repair]`: verifies the store, metadata against files.
 * - damage: a named image that no platform of is whole (a blob or layer missing), a blob whose size (or,
 *   with `full`, digest) is wrong, a snapshot directory that is unreadable or whose parent is missing;
 * - leftovers (harmless, GC removes them): unreferenced blobs and snapshots, stale ingests, staging dirs
 *   of dead processes, dangling links;
 * - marked: images that an earlier repair marked; the next pull of each fetches it again.
 * `repair` removes damaged blobs and snapshots (and the snapshots built on them), marks the images that
 * lost pieces, runs GC for the leftovers, and checks again: what it returns is the state after repair.
 */
import type { Context } from "./context.ts";
import { collectLocked, exclusively, garbageSnapshots, readSnapshots } from "./gc.ts";
import { markReferences } from "./references.ts";
import { lockResource } from "./coordination.ts";
import { digestFile, scanBlobs } from "../content/scan.ts";
import { removeSnapshotDir, snapshotDir, snapshotDirs } from "../snapshots/overlay/mod.ts";
import { listImageMarks, markImage } from "../metadata/image_marks.ts";
import type { SnapshotInfo } from "../snapshots/types.ts";
import { join } from "node:path";
import { rm } from "node:fs/promises";

export type FindingKind = "damaged" | "leftover" | "marked" | "repaired";

export interface Finding {
  kind: FindingKind;
  /** One line: "<what>: <detail>". */
  text: string;
}

export interface CheckOptions {
  /** Verify every blob's digest (reads all content). */
  full?: boolean;
  repair?: boolean;
  ingestGraceMs?: number;
}

/** Checks (and with `repair`, repairs) the store; findings in a stable order, damage first. */
export function checkStore(ctx: Context, opts: CheckOptions = {}): Promise<Finding[]> {
  return exclusively(ctx, async () => {
    if (!opts.repair) return inspect(ctx, opts);
    const repaired = await repair(ctx, opts);
    const gc = await collectLocked(ctx, { ingestGraceMs: opts.ingestGraceMs });
    for (const b of gc.blobs) repaired.push({ kind: "repaired", text: `blob ${b.digest}: removed (unreferenced)` });
    for (const s of gc.snapshots) repaired.push({ kind: "repaired", text: `snapshot ${s.name}: removed (unreferenced)` });
    for (const l of gc.leftovers) repaired.push({ kind: "repaired", text: `${l}: removed (leftover)` });
    return [...repaired, ...(await inspect(ctx, opts))];
  });
}

interface Inspection {
  findings: Finding[];
  damagedBlobs: string[];
  damagedSnapshotDirs: string[];
  damagedImages: Array<{ namespace: string; name: string; problem: string }>;
}

async function inspect(ctx: Context, opts: CheckOptions): Promise<Finding[]> {
  return (await examine(ctx, opts)).findings;
}

async function examine(ctx: Context, opts: CheckOptions): Promise<Inspection> {
  const md = await ctx.metadata();
  const content = await ctx.content();
  const out: Inspection = { findings: [], damagedBlobs: [], damagedSnapshotDirs: [], damagedImages: [] };
  const damaged = (text: string) => out.findings.push({ kind: "damaged", text });
  const leftover = (text: string) => out.findings.push({ kind: "leftover", text });

  const { scan, byName } = await readSnapshots(ctx);
  for (const s of scan.snapshots) {
    if (s.problem) {
      damaged(`snapshot ${s.info?.name ?? s.dir}: ${s.problem}`);
      out.damagedSnapshotDirs.push(s.dir);
    }
  }
  // A snapshot whose parent is gone cannot be mounted; neither can anything built on it.
  const broken = new Set<string>();
  const brokenReason = (info: SnapshotInfo, seen = 0): string | undefined => {
    if (info.parent === undefined) return undefined;
    const p = byName.get(info.parent);
    if (!p) return `its parent ${info.parent} is missing`;
    if (p.kind !== "committed") return `its parent ${info.parent} is not committed`;
    return seen > 10_000 ? "its parent chain loops" : brokenReason(p, seen + 1) && `its ancestor chain is broken at ${info.parent}`;
  };
  for (const info of byName.values()) {
    const reason = brokenReason(info);
    if (!reason) continue;
    broken.add(info.name);
    damaged(`snapshot ${info.name}: ${reason}`);
    out.damagedSnapshotDirs.push(snapshotDir(ctx.snapshotsDir(), info));
  }
  for (const name of broken) byName.delete(name);

  const marks = await markReferences(md, content, byName);
  for (const blob of await scanBlobs(join(ctx.root, "content"))) {
    if (!blob.digest || !blob.isFile) {
      leftover(`blob file ${blob.name}: not a blob`);
      continue;
    }
    const expected = marks.content.get(blob.digest);
    if (expected !== undefined && expected >= 0 && expected !== blob.size) {
      damaged(`blob ${blob.digest}: ${blob.size} bytes, expected ${expected}`);
      out.damagedBlobs.push(blob.digest);
      continue;
    }
    if (opts.full) {
      const got = await digestFile(blob.path).catch((e) => `unreadable (${e instanceof Error ? e.message : String(e)})`);
      if (got !== blob.digest) {
        damaged(`blob ${blob.digest}: content has digest ${got}`);
        out.damagedBlobs.push(blob.digest);
        continue;
      }
    }
    if (expected === undefined) leftover(`blob ${blob.digest}: unreferenced (${blob.size} bytes)`);
  }

  const marked = new Map(listImageMarks(md).map((m) => [`${m.namespace}/${m.name}`, m]));
  for (const img of marks.images) {
    const mark = marked.get(`${img.namespace}/${img.name}`);
    const problem = img.problem;
    if (mark) out.findings.push({ kind: "marked", text: `image ${img.namespace}/${img.name}: pull it again (${mark.reason})` });
    else if (problem) {
      damaged(`image ${img.namespace}/${img.name}: ${problem}`);
      out.damagedImages.push({ namespace: img.namespace, name: img.name, problem });
    }
  }

  for (const s of garbageSnapshots(byName, marks)) leftover(`snapshot ${s.name}: unreferenced ${s.kind}`);
  const report = await collectLocked(ctx, { dryRun: true, ingestGraceMs: opts.ingestGraceMs });
  for (const l of report.leftovers) leftover(`${l}: left by an interrupted operation`);
  const order: Record<FindingKind, number> = { damaged: 0, repaired: 1, marked: 2, leftover: 3 };
  out.findings.sort((a, b) => order[a.kind] - order[b.kind]);
  return out;
}

async function repair(ctx: Context, opts: CheckOptions): Promise<Finding[]> {
  const found = await examine(ctx, opts);
  const md = await ctx.metadata();
  const content = await ctx.content();
  const out: Finding[] = [];
  for (const digest of found.damagedBlobs) {
    const release = await lockResource(ctx, "blob", digest);
    try {
      await content.delete(digest as `sha256:${string}`);
    } finally {
      await release();
    }
    out.push({ kind: "repaired", text: `blob ${digest}: removed (damaged)` });
  }
  // Children before parents: a damaged snapshot's descendants are unusable as well.
  const dirs = new Set(found.damagedSnapshotDirs);
  const { byName } = await readSnapshots(ctx);
  let grew = true;
  while (grew) {
    grew = false;
    for (const info of byName.values()) {
      const dir = snapshotDir(ctx.snapshotsDir(), info);
      const parentDir = info.parent === undefined ? undefined : snapshotDirs(ctx.snapshotsDir(), info.parent)[0];
      if (parentDir && dirs.has(parentDir) && !dirs.has(dir)) {
        dirs.add(dir);
        grew = true;
      }
    }
  }
  for (const dir of [...dirs].reverse()) {
    await removeSnapshotDir(ctx.snapshotsDir(), dir).catch(() => rm(dir, { recursive: true, force: true }));
    out.push({ kind: "repaired", text: `snapshot ${dir}: removed (damaged)` });
  }
  // Images that lost pieces now: every image the first pass found damaged, and those the removals broke.
  const after = await readSnapshots(ctx);
  const marks = await markReferences(md, content, after.byName);
  const marked = new Set(listImageMarks(md).map((m) => `${m.namespace}/${m.name}`));
  for (const img of marks.images) {
    const problem = img.problem ?? found.damagedImages.find((d) => d.namespace === img.namespace && d.name === img.name)?.problem;
    if (!problem || marked.has(`${img.namespace}/${img.name}`)) continue;
    markImage(md, img.namespace, img.name, problem);
    out.push({ kind: "repaired", text: `image ${img.namespace}/${img.name}: marked for a new pull (${problem})` });
  }
  return out;
}
