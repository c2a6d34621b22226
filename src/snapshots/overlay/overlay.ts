/**
 * The overlayfs snapshotter. Layout under its root:
 *   committed/<sha256 hex of name>/{fs, info.json, link}  frozen layers (lower directories)
 *   l/<short id> -> ../committed/<hex>/fs                  short names for lowerdir= (as Docker's overlay2 does):
 *                                                          mounts name lowers relative to the root, ~13 bytes each,
 *                                                          so hundreds of layers fit the kernel's one-page limit
 *   active/<sha256 hex of key>/{fs, work, info.json}      writable (or view) snapshots
 *   tmp/                                                  snapshots being made or removed
 * A snapshot appears and disappears by renaming its directory, so a crash leaves it whole or absent.
 */
import { createHash, randomBytes } from "node:crypto";
import { access, mkdir, readFile, readdir, readlink, rename, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { errorOf, isErrno } from "../../errdefs/mod.ts";
import { MOUNT_DATA_LIMIT, overlaySupported } from "../../mount/mount.ts";
import { execFile } from "../../platform/exec.ts";
import { fsyncDir, syncsData, writeFileAtomic } from "../../platform/durable.ts";
import { ownerAlive, ownerId } from "../../platform/lock.ts";
import type { Mount, SnapshotInfo, Snapshotter } from "../types.ts";

interface Found {
  dir: string;
  info: SnapshotInfo;
}

export class OverlaySnapshotter implements Snapshotter {
  readonly root: string;
  readonly #indexOff: boolean;

  /** Use `OverlaySnapshotter.open`, which checks the kernel and creates the layout. */
  constructor(root: string, indexOff: boolean) {
    this.root = root;
    this.#indexOff = indexOff;
  }

  /**
   * Opens (creating if needed) the snapshotter rooted at `root`, removing leftovers of interrupted
   * operations. Throws FailedPrecondition when the kernel has no overlayfs.
   */
  static async open(root: string): Promise<OverlaySnapshotter> {
    if (!(await overlaySupported())) {
      throw errorOf("FailedPrecondition", "open overlay snapshotter: overlayfs is not available on this kernel (the native snapshotter comes later)");
    }
    if (/[:,]/.test(root)) throw errorOf("InvalidArgument", `open overlay snapshotter: root "${root}" must not contain ':' or ','`);
    for (const d of ["active", "committed", "tmp", "l"]) await mkdir(join(root, d), { recursive: true, mode: 0o700 });
    // Other tsctr processes may be working in tmp/ right now: only what dead processes left is removed.
    for (const name of await readdir(join(root, "tmp"))) {
      if (!tmpOwnerAlive(name)) await rm(join(root, "tmp", name), { recursive: true, force: true });
    }
    await finishCommits(root);
    // When the overlay module indexes by default, mounting a lower directory under two uppers fails.
    const indexOff = await access("/sys/module/overlay/parameters/index").then(
      () => true,
      () => false,
    );
    return new OverlaySnapshotter(root, indexOff);
  }

  /** Info of the active, view or committed snapshot called `name`, or undefined. */
  async stat(name: string): Promise<SnapshotInfo | undefined> {
    return (await this.#find(name))?.info;
  }

  /** Creates active snapshot `key` on committed `parent` (NotFound if absent) and returns its read-write mounts. */
  async prepare(key: string, parent?: string): Promise<Mount[]> {
    await this.#create(key, "active", parent);
    return this.mounts(key);
  }

  /** Creates read-only snapshot `key` of committed `parent` and returns its read-only mounts. */
  async view(key: string, parent?: string): Promise<Mount[]> {
    await this.#create(key, "view", parent);
    return this.mounts(key);
  }

  /**
   * The mounts that show active or view snapshot `key`: overlay of upper on the parent chain (top first),
   * a bind of `fs` without a parent, a read-only bind of the parent for a one-layer view.
   */
  async mounts(key: string): Promise<Mount[]> {
    const found = await this.#find(key);
    if (!found || found.info.kind === "committed") throw errorOf("NotFound", `snapshot mounts: no active snapshot "${key}"`);
    const lowers = await this.#lowerDirs(found.info.parent);
    const fs = join(found.dir, "fs");
    if (found.info.kind === "view") {
      if (lowers.length === 0) return [{ type: "bind", source: fs, options: ["rbind", "ro"] }];
      if (lowers.length === 1) return [{ type: "bind", source: join(this.root, lowers[0]!), options: ["rbind", "ro"] }];
      return [this.#overlay(key, [`lowerdir=${lowers.join(":")}`])];
    }
    if (lowers.length === 0) return [{ type: "bind", source: fs, options: ["rbind", "rw"] }];
    return [this.#overlay(key, [`workdir=${join(found.dir, "work")}`, `upperdir=${fs}`, `lowerdir=${lowers.join(":")}`])];
  }

  /** The directory holding active snapshot `key`'s own files (where a layer is extracted). */
  async upperDir(key: string): Promise<string> {
    const found = await this.#find(key);
    if (!found || found.info.kind !== "active") throw errorOf("NotFound", `snapshot upper dir: no active snapshot "${key}"`);
    return join(found.dir, "fs");
  }

  /** Flushes the filesystem holding active snapshot `key` (syncfs), where the store syncs data at all. */
  async flush(key: string): Promise<void> {
    const found = await this.#find(key);
    if (!found || found.info.kind !== "active") throw errorOf("NotFound", `flush snapshot: no active snapshot "${key}"`);
    if (!syncsData()) return;
    const r = await execFile("sync", ["-f", join(found.dir, "fs")]);
    if (r.code !== 0) throw errorOf("Internal", `flush snapshot "${key}": sync failed: ${r.stderr.trim()}`);
  }

  /**
   * Freezes active snapshot `key` as committed `name`, atomically: its data is synced, its info rewritten,
   * then its directory renamed into committed/. AlreadyExists when `name` exists (the active one stays).
   */
  async commit(name: string, key: string, opts: { parent?: string; flushed?: boolean } = {}): Promise<void> {
    const found = await this.#find(key);
    if (!found || found.info.kind !== "active") throw errorOf("NotFound", `commit snapshot "${name}": no active snapshot "${key}"`);
    if (await this.#find(name)) throw errorOf("AlreadyExists", `commit snapshot "${name}": a snapshot with that name exists`);
    const parent = opts.parent ?? found.info.parent;
    if (opts.parent !== undefined && (await this.#find(opts.parent))?.info.kind !== "committed") {
      throw errorOf("NotFound", `commit snapshot "${name}": parent "${opts.parent}" is not a committed snapshot`);
    }
    // syncfs(2) of the filesystem holding the layer: a committed layer survives a power cut whole. A layer
    // flushed since its last write is on disk already (one spawn and syncfs fewer on a pull's commit chain).
    const r = syncsData() && !opts.flushed ? await execFile("sync", ["-f", join(found.dir, "fs")]) : { code: 0, stderr: "" };
    if (r.code !== 0) throw errorOf("Internal", `commit snapshot "${name}": sync failed: ${r.stderr.trim()}`);
    const info: SnapshotInfo = { name, kind: "committed", ...(parent ? { parent } : {}), created: new Date().toISOString() };
    // Who is committing: a crash between the info rewrite and the rename is finished by the next open,
    // but never while the committer still runs.
    await writeFileAtomic(join(found.dir, COMMITTING), ownerId(), { durable: false });
    await writeFileAtomic(join(found.dir, "info.json"), `${JSON.stringify(info)}\n`);
    await rm(join(found.dir, "work"), { recursive: true, force: true });
    try {
      await rename(found.dir, this.#path("committed", name));
    } catch (e) {
      // e.g. lost a race with another commit of the same name: the snapshot stays active.
      await writeFileAtomic(join(found.dir, "info.json"), `${JSON.stringify(found.info)}\n`);
      if (isErrno(e, "ENOTEMPTY") || isErrno(e, "EEXIST")) throw errorOf("AlreadyExists", `commit snapshot "${name}": a snapshot with that name exists`);
      throw e;
    }
    await fsyncDir(join(this.root, "committed"));
    await fsyncDir(join(this.root, "active"));
    await rm(join(this.#path("committed", name), COMMITTING), { force: true });
    await this.#shortLink(this.#path("committed", name));
  }

  /**
   * The short lowerdir name ("l/<id>", relative to the root) of a committed snapshot's fs, created on first
   * use: a crash between commit and link creation, or a store from before links, is repaired here.
   */
  async #shortLink(dir: string): Promise<string> {
    const hex = dir.slice(dir.lastIndexOf("/") + 1);
    const target = join("..", "committed", hex, "fs");
    let id = (await readFile(join(dir, "link"), "utf8").catch(() => "")).trim();
    if (id && (await readlink(join(this.root, "l", id)).catch(() => "")) === target) return `l/${id}`;
    if (!id) {
      id = randomShortId();
      await writeFileAtomic(join(dir, "link"), id);
    }
    await symlink(target, join(this.root, "l", id)).catch((e) => {
      if (!isErrno(e, "EEXIST")) throw e;
    });
    await fsyncDir(join(this.root, "l"));
    return `l/${id}`;
  }

  /** Removes snapshot `name` (active, view or committed). FailedPrecondition when others build on it. */
  async remove(name: string): Promise<void> {
    const found = await this.#find(name);
    if (!found) throw errorOf("NotFound", `remove snapshot "${name}": not found`);
    if (found.info.kind === "committed") {
      const child = (await this.list()).find((s) => s.parent === name);
      if (child) throw errorOf("FailedPrecondition", `remove snapshot "${name}": snapshot "${child.name}" is based on it`);
    }
    const link = (await readFile(join(found.dir, "link"), "utf8").catch(() => "")).trim();
    // unlink, not rm: Deno 2's rm follows the link to the directory and fails with EISDIR.
    if (link) await unlink(join(this.root, "l", link)).catch((e) => {
      if (!isErrno(e, "ENOENT")) throw e;
    });
    const trash = join(this.root, "tmp", tmpName("rm"));
    await rename(found.dir, trash);
    await fsyncDir(join(found.dir, ".."));
    await rm(trash, { recursive: true, force: true });
  }

  /** Every snapshot. */
  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const group of ["committed", "active"] as const) {
      for (const hex of await readdir(join(this.root, group))) {
        const info = await readInfo(join(this.root, group, hex));
        if (info) out.push(info);
      }
    }
    return out;
  }

  #overlay(key: string, options: string[]): Mount {
    const all = this.#indexOff ? ["index=off", ...options] : options;
    const length = all.join(",").length;
    if (length >= MOUNT_DATA_LIMIT) {
      throw errorOf("ResourceExhausted", `snapshot mounts "${key}": overlay options of ${length} bytes exceed the kernel's ${MOUNT_DATA_LIMIT}-byte limit (too many layers)`);
    }
    return { type: "overlay", source: "overlay", options: all, cwd: this.root };
  }

  /** The short lowerdir names (relative to the root) of committed `parent` and its ancestors, nearest first. */
  async #lowerDirs(parent: string | undefined): Promise<string[]> {
    const out: string[] = [];
    for (let name = parent; name !== undefined; ) {
      const found = await this.#find(name);
      if (!found || found.info.kind !== "committed") throw errorOf("NotFound", `snapshot parent "${name}" not found`);
      out.push(await this.#shortLink(found.dir));
      name = found.info.parent;
    }
    return out;
  }

  async #create(key: string, kind: "active" | "view", parent: string | undefined): Promise<void> {
    if (key === "") throw errorOf("InvalidArgument", "prepare snapshot: empty key");
    if (parent !== undefined) {
      const p = await this.#find(parent);
      if (!p || p.info.kind !== "committed") throw errorOf("NotFound", `prepare snapshot "${key}": parent "${parent}" is not a committed snapshot`);
    }
    if (await this.#find(key)) throw errorOf("AlreadyExists", `prepare snapshot "${key}": already exists`);
    const tmp = join(this.root, "tmp", tmpName("new"));
    try {
      await mkdir(join(tmp, "fs"), { recursive: true, mode: 0o755 });
      if (kind === "active") await mkdir(join(tmp, "work"), { mode: 0o700 });
      const info: SnapshotInfo = { name: key, kind, ...(parent !== undefined ? { parent } : {}), created: new Date().toISOString() };
      await writeFileAtomic(join(tmp, "info.json"), `${JSON.stringify(info)}\n`);
      try {
        await rename(tmp, this.#path("active", key));
      } catch (e) {
        if (isErrno(e, "ENOTEMPTY") || isErrno(e, "EEXIST")) throw errorOf("AlreadyExists", `prepare snapshot "${key}": already exists`);
        throw e;
      }
      await fsyncDir(join(this.root, "active"));
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  #path(group: "active" | "committed", name: string): string {
    return join(this.root, group, createHash("sha256").update(name).digest("hex"));
  }

  async #find(name: string): Promise<Found | undefined> {
    for (const group of ["active", "committed"] as const) {
      const dir = this.#path(group, name);
      const info = await readInfo(dir);
      if (info) return { dir, info };
    }
    return undefined;
  }
}

/**
 * Completes commits that a crash interrupted between rewriting info.json and the rename: such a directory
 * is moved into committed/ (or dropped when that name was committed meanwhile).
 */
async function finishCommits(root: string): Promise<void> {
  let moved = false;
  for (const hex of await readdir(join(root, "active"))) {
    const dir = join(root, "active", hex);
    const info = await readInfo(dir);
    if (info?.kind !== "committed") continue;
    const committer = await readFile(join(dir, COMMITTING), "utf8").catch(() => "");
    if (committer && ownerAlive(committer)) continue;
    const dest = join(root, "committed", createHash("sha256").update(info.name).digest("hex"));
    if (await readInfo(dest)) await rename(dir, join(root, "tmp", tmpName("rm")));
    else await rename(dir, dest);
    moved = true;
  }
  if (!moved) return;
  await fsyncDir(join(root, "active"));
  await fsyncDir(join(root, "committed"));
}

const COMMITTING = "committing";

/** A name in tmp/ that says which process made it: "<what>-<pid>.<start time>-<random>". */
export function tmpName(what: "new" | "rm"): string {
  return `${what}-${ownerId().replace(" ", ".")}-${randomBytes(6).toString("hex")}`;
}

/** False when the process that made tmp/ entry `name` is gone (or the name says nobody). */
export function tmpOwnerAlive(name: string): boolean {
  const m = /^(?:new|rm)-(\d+)\.(\d+)-/.exec(name);
  return m !== null && ownerAlive(`${m[1]} ${m[2]}`);
}

/** 12 random characters from [A-Z2-7]: 60 bits, unique among a device's layers. */
function randomShortId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return [...randomBytes(12)].map((b) => alphabet[b & 31]).join("");
}

async function readInfo(dir: string): Promise<SnapshotInfo | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "info.json"), "utf8")) as SnapshotInfo;
  } catch (e) {
    if (isErrno(e, "ENOENT") || isErrno(e, "ENOTDIR")) return undefined;
    throw errorOf("DataLoss", `snapshot ${dir}: unreadable info.json (${e instanceof Error ? e.message : String(e)})`);
  }
}
