/**
 * Snapshotters turn layers into filesystems, like containerd's:
 * - `prepare(key, parent)` makes an active (writable) snapshot on top of committed `parent` and returns the
 *   mounts that show it; `commit(name, key)` freezes an active snapshot as committed `name` (for layers the
 *   name is the chain ID) atomically; `view` is a read-only active snapshot; `remove` deletes one.
 * - A snapshotter never mounts: it returns Mount records; `src/mount` performs them.
 */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
  /** The directory that relative paths in `options` are resolved from (keeps overlay options short). */
  cwd?: string;
}

export type SnapshotKind = "active" | "view" | "committed";

export interface SnapshotInfo {
  /** key for active/view snapshots, name (chain ID) for committed ones */
  name: string;
  kind: SnapshotKind;
  parent?: string;
  created: string;
}

export interface Snapshotter {
  stat(name: string): Promise<SnapshotInfo | undefined>;
  prepare(key: string, parent?: string): Promise<Mount[]>;
  view(key: string, parent?: string): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  /**
   * Freezes active `key` as committed `name`. `parent` (a committed snapshot) replaces the parent given at
   * prepare: layers are extracted in parallel into parentless snapshots and chained at commit, in order.
   * `flushed`: the caller flushed `key` after its last write, so its data is on disk and is not synced again.
   */
  commit(name: string, key: string, opts?: { parent?: string; flushed?: boolean }): Promise<void>;
  /**
   * Writes active `key`'s data to disk now, ahead of its commit (which then has nothing left to flush: see
   * `flushed`), so that layers extracted early are flushed while later ones still extract. Committing does
   * not need it.
   */
  flush(key: string): Promise<void>;
  remove(name: string): Promise<void>;
  list(): Promise<SnapshotInfo[]>;
  /** The directory holding an active snapshot's files (where a layer is extracted). */
  upperDir(key: string): Promise<string>;
}
