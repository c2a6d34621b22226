/**
 * Writes a layer (a stream of tar entries) into a directory in overlayfs format, like containerd's
 * pkg/archive Apply with the overlay whiteout converter:
 * - `.wh.<name>` becomes a 0:0 character device `<name>`; `.wh..wh..opq` sets trusted.overlay.opaque=y
 *   on its directory.
 * - Names are cleaned relative to the root ("../x" and "/x" land at "<root>/x"), and symlinks met while
 *   resolving a parent directory are followed as if the root were "/", so nothing is written outside it.
 * - A later entry replaces an earlier one as GNU tar does (a directory on a directory merges).
 * - Ownership, permission bits (incl. setuid/setgid/sticky), xattrs and mtimes are restored; directory
 *   mtimes are set after all entries.
 * Filesystem calls are synchronous on purpose: each takes microseconds, while a thread-pool round trip per
 * call left extraction idle half the time (7x slower on a 54k-file tree). The event loop still turns
 * between input chunks, and decompression runs off the main thread meanwhile.
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { lchown } from "node:fs/promises";
import { resolve } from "node:path";
import process from "node:process";
import { TsctrError, errorOf, isErrno, type ErrorKind } from "../errdefs/mod.ts";
import { makeDevice, makeFifo, setXattr } from "../platform/special_files.ts";
import { currentUmask } from "../platform/umask.ts";
import { oneLine, quote, type TarEntry } from "./tar_reader.ts";

export interface ApplyOptions {
  /** Names the layer in errors (its digest). */
  layer?: string;
}

export interface ApplyStats {
  entries: number;
  /** Bytes of file data written. */
  bytes: number;
  whiteouts: number;
  /** trusted.overlay.* xattrs found in the layer and not applied (they would steer overlayfs). */
  droppedXattrs: number;
}

const WHITEOUT_PREFIX = ".wh.";
const SETGID = 0o2000;
const SPECIAL_BITS = 0o7000;
const OPAQUE = ".wh..wh..opq";
const MAX_SYMLINK_HOPS = 40;
/** Linux limits: PATH_MAX (4096, with the NUL) and NAME_MAX; checked first so the error is clear. */
const MAX_NAME_BYTES = 4095;
const MAX_COMPONENT_BYTES = 255;
/** Linux dev_t as mknod(2) takes it: 12-bit major, 20-bit minor. */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;
/** The largest uid/gid; (uid_t)-1 means "unchanged" to chown(2). */
const MAX_ID = 0xfffffffe;
/** The latest time Go's time.UnixNano can express (2262), containerd's bound; later or negative → the epoch. */
const MAX_TIME = 9_223_372_036;

/**
 * Applies `entries` to `dir` (an active snapshot's upper directory) and resolves when every entry is on
 * disk with its metadata. Throws with the layer and entry named; the directory may then hold a partial
 * layer, which the caller discards.
 */
export async function applyLayer(entries: AsyncIterable<TarEntry>, dir: string, opts: ApplyOptions = {}): Promise<ApplyStats> {
  const applier = new Applier(resolve(dir), opts.layer ?? dir);
  for await (const entry of entries) {
    try {
      await applier.apply(entry);
    } catch (e) {
      throw applier.wrap(e, entry.path);
    }
  }
  await applier.finish();
  return applier.stats;
}

/**
 * The components of a tar name relative to the root: empty and "." components dropped, ".." removing the
 * previous component but never climbing above the root (so "../../etc/x" and "/etc/x" both give etc/x).
 */
export function cleanComponents(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return out;
}

class Applier {
  readonly #root: string;
  readonly #layer: string;
  /** Resolved real paths of directories, by cleaned name; cleared whenever a directory or symlink is removed. */
  readonly #dirs = new Map<string, string>();
  /** Directory mtimes to set once every entry is written, by real path. */
  readonly #dirTimes = new Map<string, number>();
  /** Real paths of directories given the setgid bit (their new entries take the directory's group). */
  readonly #setgidDirs = new Set<string>();
  /** The owner and group a file this process creates gets (-1 where the runtime cannot tell: always chown). */
  readonly #uid = process.geteuid?.() ?? -1;
  readonly #gid = process.getegid?.() ?? -1;
  /** Permission bits open(2) cannot give a new file (-1, all of them, where the umask is unknown). */
  readonly #masked = currentUmask() ?? -1;
  readonly stats: ApplyStats = { entries: 0, bytes: 0, whiteouts: 0, droppedXattrs: 0 };

  constructor(root: string, layer: string) {
    this.#root = root;
    this.#layer = layer;
  }

  async apply(e: TarEntry): Promise<void> {
    this.stats.entries++;
    const parts = cleanComponents(e.path);
    checkName(parts, "name");
    const base = parts.pop();
    if (base === undefined) {
      // The root itself: a directory's attributes belong to the snapshot, as in containerd. Anything else
      // cannot be written there, and dropping it silently would hide a broken layer.
      if (e.type === "dir") return;
      throw errorOf("InvalidArgument", `a ${e.type} entry cannot replace the layer root`);
    }
    if (e.uid > MAX_ID || e.gid > MAX_ID) throw errorOf("InvalidArgument", `owner ${e.uid}:${e.gid} is out of range`);
    if (e.type === "symlink" && byteLengthOver(e.linkname, MAX_NAME_BYTES)) {
      throw errorOf("InvalidArgument", `link target of ${byteLength(e.linkname)} bytes is longer than the ${MAX_NAME_BYTES}-byte limit`);
    }
    if ((e.type === "char" || e.type === "block") && (e.devmajor > MAX_MAJOR || e.devminor > MAX_MINOR)) {
      throw errorOf("InvalidArgument", `device number ${e.devmajor}:${e.devminor} is out of range`);
    }

    if (base.startsWith(WHITEOUT_PREFIX)) return this.#whiteout(parts, base);

    const parent = await this.#dir(parts, true);
    const path = `${parent}/${base}`;

    // Resolve a hardlink's target before anything at `path` is removed.
    const linkTarget = e.type === "hardlink" ? await this.#linkTarget(e.linkname) : undefined;
    if (linkTarget === path) return; // a link to itself: nothing to do

    // Files (with O_EXCL), directories and symlinks, nearly every entry, are created at once and look only
    // when something is in their way (EEXIST, see #create): one lstat fewer each. The rarer types look first.
    if (e.type === "file") return this.#writeFile(path, parent, e);
    let modeSet = false;
    if (e.type === "dir") {
      // A directory made in a setgid directory inherits the setgid bit, which chmod takes away if need be.
      const exact = this.#opensExact(e.mode) && !this.#setgidDirs.has(parent);
      // An existing directory is merged with: it keeps its inode and gets this entry's mode below.
      const made = this.#create(path, () => (mkdirSync(path, exact ? e.mode : 0o700), true), true) === true;
      modeSet = made && exact;
      this.#dirs.set([...parts, base].join("/"), path);
    } else if (e.type === "symlink") {
      this.#create(path, () => symlinkSync(e.linkname, path));
    } else {
      const existing = lstatOrUndefined(path);
      if (existing) this.#remove(path, existing);
      switch (e.type) {
        case "hardlink":
          // The target inode already carries the owner, mode and times.
          linkSync(linkTarget!, path);
          return;
        case "char":
        case "block":
          await makeDevice(path, e.type, e.mode, e.devmajor, e.devminor);
          break;
        case "fifo":
          await makeFifo(path, e.mode);
          break;
      }
    }
    // Only symlinks need the no-follow chown (and Deno has no lchownSync); nothing else here is a link.
    if (this.#needsChown(e, parent)) {
      if (e.type === "symlink") await lchown(path, e.uid, e.gid);
      else chownSync(path, e.uid, e.gid);
    }
    // chown clears setuid/setgid, so permission bits come after it; symlinks have no mode of their own.
    if (e.type !== "symlink" && !modeSet) chmodSync(path, e.mode);
    if (e.type === "dir") {
      if (e.mode & SETGID) this.#setgidDirs.add(path);
      else this.#setgidDirs.delete(path);
    }
    await this.#xattrs(path, e);
    if (e.type === "dir") this.#dirTimes.set(path, boundTime(e.mtime));
    else lutimesSync(path, boundTime(e.mtime), boundTime(e.mtime));
  }

  /** Sets the deferred directory mtimes (creating entries inside a directory changes its mtime). */
  async finish(): Promise<void> {
    for (const [path, mtime] of this.#dirTimes) {
      try {
        lutimesSync(path, mtime, mtime);
      } catch (e) {
        if (!isErrno(e, "ENOENT")) throw this.wrap(e, path.slice(this.#root.length + 1));
      }
    }
  }

  /** An error naming the layer and the entry, keeping the kind of typed errors and mapping errno codes. */
  wrap(err: unknown, entry: string): TsctrError {
    const where = `apply layer ${this.#layer}: entry ${quote(entry)}`;
    if (err instanceof TsctrError) return errorOf(err.kind, `${where}: ${err.message}`, err);
    const code = (err as { code?: string }).code;
    const kinds: Record<string, ErrorKind> = {
      ENOSPC: "ResourceExhausted",
      EDQUOT: "ResourceExhausted",
      EPERM: "PermissionDenied",
      EACCES: "PermissionDenied",
      EROFS: "FailedPrecondition",
      ENAMETOOLONG: "InvalidArgument",
      ERR_INVALID_ARG_VALUE: "InvalidArgument",
    };
    // System errors quote whole (staging) paths: cut and escaped to keep the message one short line.
    const detail = oneLine(err instanceof Error ? err.message : String(err));
    return errorOf((code && kinds[code]) || "Internal", `${where}: ${detail}`, err);
  }

  async #whiteout(parts: string[], base: string): Promise<void> {
    this.stats.whiteouts++;
    const parent = await this.#dir(parts, true);
    if (base === OPAQUE) {
      await setXattr(parent, "trusted.overlay.opaque", new TextEncoder().encode("y"));
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === "" || name === "." || name === "..") throw errorOf("InvalidArgument", `invalid whiteout name ${quote(base)}`);
    const path = `${parent}/${name}`;
    const existing = lstatOrUndefined(path);
    if (existing) this.#remove(path, existing);
    await makeDevice(path, "char", 0, 0, 0);
  }

  /**
   * Runs `make`, a call that creates `path` and fails with EEXIST when something is there; that is removed
   * and `make` runs again (so nothing is ever written through it), except a directory when `keepDirectory`,
   * which stays: then the result is undefined.
   */
  #create<T>(path: string, make: () => T, keepDirectory = false): T | undefined {
    try {
      return make();
    } catch (err) {
      const existing = isErrno(err, "EEXIST") ? lstatOrUndefined(path) : undefined;
      if (!existing) throw err;
      if (keepDirectory && existing.isDirectory()) return undefined;
      this.#remove(path, existing);
      return make();
    }
  }

  /**
   * Whether open(2) or mkdir(2) gives `mode` exactly: no setuid, setgid or sticky bit (set after a chown,
   * which clears them) and no bit the umask takes away.
   */
  #opensExact(mode: number): boolean {
    return (mode & SPECIAL_BITS) === 0 && (mode & this.#masked) === 0;
  }

  /**
   * Whether a new entry needs chown: not when it has the owner a new file gets anyway (tsctr's own user and
   * group, in a directory without the setgid bit), which is every root-owned entry of most layers.
   */
  #needsChown(e: TarEntry, parent: string): boolean {
    return e.uid !== this.#uid || e.gid !== this.#gid || this.#setgidDirs.has(parent);
  }

  async #writeFile(path: string, parent: string, e: TarEntry): Promise<void> {
    // O_EXCL|O_NOFOLLOW: never write through anything at `path`; what is there is removed first (an earlier
    // entry of the same name, or a directory a later file replaces, as GNU tar does).
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    // Most files (0644, 0755 under umask 022) get their mode from open(2) and need no fchmod; setuid, setgid
    // and sticky bits, and bits the umask takes away, are set afterwards (after fchown, which clears setuid).
    const exact = this.#opensExact(e.mode);
    const createMode = exact ? e.mode : 0o600;
    const fd = this.#create(path, () => openSync(path, flags, createMode))!;
    try {
      for await (const chunk of e.body) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        this.stats.bytes += chunk.length;
      }
      if (this.#needsChown(e, parent)) fchownSync(fd, e.uid, e.gid);
      if (!exact) fchmodSync(fd, e.mode);
      if (e.xattrs.size > 0) await this.#xattrs(path, e);
      futimesSync(fd, boundTime(e.mtime), boundTime(e.mtime));
    } finally {
      closeSync(fd);
    }
  }

  async #xattrs(path: string, e: TarEntry): Promise<void> {
    for (const [name, value] of e.xattrs) {
      if (name.startsWith("trusted.overlay.")) {
        this.stats.droppedXattrs++;
        continue;
      }
      await setXattr(path, name, value);
    }
  }

  /** The real path of a hardlink's target, which must already be in this layer and not be a directory. */
  async #linkTarget(linkname: string): Promise<string> {
    const parts = cleanComponents(linkname);
    checkName(parts, "hardlink target");
    const base = parts.pop();
    if (base === undefined) throw errorOf("InvalidArgument", `hardlink to the layer root`);
    let parent: string;
    try {
      parent = await this.#dir(parts, false);
    } catch (e) {
      if (e instanceof TsctrError && e.kind === "NotFound") throw errorOf("InvalidArgument", `hardlink target ${quote(linkname)} is not in the layer`);
      throw e;
    }
    const target = `${parent}/${base}`;
    const st = lstatOrUndefined(target);
    if (!st) throw errorOf("InvalidArgument", `hardlink target ${quote(linkname)} is not in the layer`);
    if (st.isDirectory()) throw errorOf("InvalidArgument", `hardlink target ${quote(linkname)} is a directory`);
    return target;
  }

  #remove(path: string, st: Stats): void {
    if (st.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      for (const p of this.#dirTimes.keys()) if (p === path || p.startsWith(`${path}/`)) this.#dirTimes.delete(p);
      this.#dirs.clear();
    } else {
      unlinkSync(path);
      if (st.isSymbolicLink()) this.#dirs.clear();
    }
  }

  /**
   * The real path of directory `parts` inside the root, following symlinks as if the root were "/" and
   * never leaving it. Missing components are created (0755, root-owned) when `create`, else NotFound.
   */
  async #dir(parts: string[], create: boolean): Promise<string> {
    if (parts.length === 0) return this.#root;
    const key = parts.join("/");
    const hit = this.#dirs.get(key);
    if (hit !== undefined) return hit;

    let real: string[] = [];
    const todo = parts.slice().reverse(); // a stack: next component last
    let hops = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        real.pop();
        continue;
      }
      const p = `${this.#root}/${real.length ? `${real.join("/")}/` : ""}${c}`;
      const st = lstatOrUndefined(p);
      if (!st) {
        if (!create) throw errorOf("NotFound", `directory ${quote(key)} is not in the layer`);
        mkdirSync(p, 0o755);
        chmodSync(p, 0o755);
        real.push(c);
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw errorOf("InvalidArgument", `too many levels of symbolic links resolving ${quote(key)}`);
        const target = readlinkSync(p);
        if (target.startsWith("/")) real = [];
        for (const t of target.split("/").reverse()) todo.push(t);
      } else if (st.isDirectory()) {
        real.push(c);
      } else {
        throw errorOf("InvalidArgument", `parent ${quote([...real, c].join("/"))} is not a directory`);
      }
    }
    const path = real.length ? `${this.#root}/${real.join("/")}` : this.#root;
    this.#dirs.set(key, path);
    return path;
  }
}

const utf8 = new TextEncoder();

function byteLength(s: string): number {
  return utf8.encode(s).length;
}

/** Whether `s` is longer than `limit` UTF-8 bytes (a UTF-16 unit is at least one byte, at most three). */
function byteLengthOver(s: string, limit: number): boolean {
  return s.length > limit || (s.length * 3 > limit && byteLength(s) > limit);
}

/** Refuses a cleaned name that Linux cannot hold, before any system call says ENAMETOOLONG about a long path. */
function checkName(parts: string[], what: string): void {
  for (const c of parts) {
    if (byteLengthOver(c, MAX_COMPONENT_BYTES)) {
      throw errorOf("InvalidArgument", `${what} component of ${byteLength(c)} bytes is longer than the ${MAX_COMPONENT_BYTES}-byte limit`);
    }
  }
  const name = parts.join("/");
  if (byteLengthOver(name, MAX_NAME_BYTES)) throw errorOf("InvalidArgument", `${what} of ${byteLength(name)} bytes is longer than the ${MAX_NAME_BYTES}-byte limit`);
}

/** A tar mtime as containerd applies it: times before the epoch or past 2262 become the epoch. */
function boundTime(t: number): number {
  return t >= 0 && t <= MAX_TIME ? t : 0;
}

function lstatOrUndefined(path: string): Stats | undefined {
  return lstatSync(path, { throwIfNoEntry: false });
}
