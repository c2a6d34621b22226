/**
 * Looking after an overlay snapshotter's directories from outside its normal operations: scanning for
 * damage and leftovers (`tsctr check`), disk usage (`tsctr df`, `snapshots usage`), and removing a
 * damaged snapshot directory that `remove` cannot read.
 */
import { createHash } from "node:crypto";
import { lstat, readFile, readdir, readlink, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isErrno } from "../../errdefs/mod.ts";
import { fsyncDir } from "../../platform/durable.ts";
import type { SnapshotInfo } from "../types.ts";
import { tmpName, tmpOwnerAlive } from "./overlay.ts";

export interface ScannedSnapshot {
  /** The directory under active/ or committed/. */
  dir: string;
  info?: SnapshotInfo;
  /** Why the directory is not a whole snapshot (unreadable info.json, wrong place, missing fs/). */
  problem?: string;
}

export interface OverlayScan {
  snapshots: ScannedSnapshot[];
  /** Names in l/ whose target is gone. */
  danglingLinks: string[];
  /** Entries in tmp/ that a dead process left. */
  leftoverTmp: string[];
}

/** Reads every snapshot directory without trusting any of them. */
export async function scanOverlay(root: string): Promise<OverlayScan> {
  const snapshots: ScannedSnapshot[] = [];
  for (const group of ["committed", "active"] as const) {
    for (const hex of await readdir(join(root, group)).catch(() => [])) {
      const dir = join(root, group, hex);
      let info: SnapshotInfo;
      try {
        info = JSON.parse(await readFile(join(dir, "info.json"), "utf8")) as SnapshotInfo;
      } catch (e) {
        snapshots.push({ dir, problem: isErrno(e, "ENOENT") ? "no info.json" : "unreadable info.json" });
        continue;
      }
      const expected = createHash("sha256").update(info.name).digest("hex");
      const inCommitted = info.kind === "committed";
      let problem: string | undefined;
      if (expected !== hex) problem = `info.json names "${info.name}", which belongs elsewhere`;
      else if (inCommitted !== (group === "committed")) problem = `a ${info.kind} snapshot under ${group}/`;
      else if (!(await stat(join(dir, "fs")).then((s) => s.isDirectory(), () => false))) problem = "no fs/ directory";
      snapshots.push({ dir, info, ...(problem ? { problem } : {}) });
    }
  }
  const danglingLinks: string[] = [];
  for (const name of await readdir(join(root, "l")).catch(() => [])) {
    const target = await readlink(join(root, "l", name)).catch(() => undefined);
    if (target === undefined || !(await stat(join(root, "l", target)).then(() => true, () => false))) danglingLinks.push(name);
  }
  const leftoverTmp = (await readdir(join(root, "tmp")).catch(() => [])).filter((n) => !tmpOwnerAlive(n));
  return { snapshots, danglingLinks, leftoverTmp };
}

/** Removes a snapshot directory whole (renamed into tmp/ first, so a crash leaves it there or gone). */
export async function removeSnapshotDir(root: string, dir: string): Promise<void> {
  const link = (await readFile(join(dir, "link"), "utf8").catch(() => "")).trim();
  if (link) await rm(join(root, "l", link), { force: true });
  const trash = join(root, "tmp", tmpName("rm"));
  await rename(dir, trash);
  await fsyncDir(join(dir, ".."));
  await rm(trash, { recursive: true, force: true });
}

/** Removes a dangling short link or a dead process's tmp/ entry. */
export async function removeLeftover(root: string, kind: "link" | "tmp", name: string): Promise<void> {
  await rm(join(root, kind === "link" ? "l" : "tmp", name), { recursive: true, force: true });
}

export interface Usage {
  /** Bytes of disk the files take (allocated blocks). */
  size: number;
  inodes: number;
}

/** Disk usage of a directory tree, counting each hard-linked inode once. */
export async function diskUsage(dir: string, seen = new Set<string>()): Promise<Usage> {
  const total: Usage = { size: 0, inodes: 0 };
  const walk = async (path: string) => {
    let st;
    try {
      st = await lstat(path, { bigint: true });
    } catch (e) {
      if (isErrno(e, "ENOENT")) return;
      throw e;
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    total.inodes++;
    total.size += Number(st.blocks) * 512;
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(dir);
  return total;
}

/** The directory that holds snapshot `info`. */
export function snapshotDir(root: string, info: SnapshotInfo): string {
  const [committed, active] = snapshotDirs(root, info.name);
  return info.kind === "committed" ? committed! : active!;
}

/** The directory of a snapshot by name (committed or active), as the overlay snapshotter lays it out. */
export function snapshotDirs(root: string, name: string): string[] {
  const hex = createHash("sha256").update(name).digest("hex");
  return [join(root, "committed", hex), join(root, "active", hex)];
}
