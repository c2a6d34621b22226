/**
 * The metadata store: images, containers and snapshot references per namespace, in SQLite (node:sqlite,
 * built into Node 24 and Deno 2). Every change is one transaction: after a crash the store holds the state
 * before or after it, never between (WAL, synchronous=NORMAL).
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { errorOf } from "../errdefs/mod.ts";
import { getSyncLevel } from "../platform/durable.ts";
import type { ContainerRecord, ImageRecord, SnapshotRecord } from "./types.ts";

type Row = Record<string, unknown>;
export interface Statement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): Row | undefined;
  all(...params: unknown[]): Row[];
}
interface Database {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  namespace TEXT NOT NULL, name TEXT NOT NULL,
  media_type TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS containers (
  namespace TEXT NOT NULL, id TEXT NOT NULL, image TEXT NOT NULL,
  snapshotter TEXT NOT NULL, snapshot_key TEXT NOT NULL, runtime TEXT NOT NULL,
  labels TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (namespace, id));
CREATE TABLE IF NOT EXISTS snapshots (
  namespace TEXT NOT NULL, key TEXT NOT NULL, parent TEXT, kind TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (namespace, key));
`;

const BUSY_TIMEOUT_MS = 10_000;
const SQLITE_BUSY = 5;

/** Opens (creating if needed) the metadata database at `path`. */
export async function openMetadata(path: string): Promise<MetadataStore> {
  await mkdir(dirname(path), { recursive: true });
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path) as unknown as Database;
  // WAL with synchronous=NORMAL: every transaction is atomic and the database never corrupts; after a power cut
  // the last transactions before it may be undone (the store is then as it was before them), and a commit
  // costs no fsync (FULL measured 10+ ms per `run` on this disk).
  // --sync none: no fsync at all, from the creation of the database (journal mode switch included) on.
  // The busy timeout comes first: with another tsctr writing, even the journal-mode statement waits for its lock.
  db.exec(`PRAGMA busy_timeout=${BUSY_TIMEOUT_MS};`);
  const flushNothing = getSyncLevel() === "none";
  if (flushNothing) db.exec("PRAGMA synchronous=OFF;");
  await enterWalMode(db, path);
  db.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  if (flushNothing) db.exec("PRAGMA synchronous=OFF;");
  db.exec(SCHEMA);
  return new MetadataStore(db);
}

/**
 * Puts a database into WAL mode once for all its users. Switching a new database to WAL takes an exclusive
 * lock without SQLite's busy handler: a second tsctr opening the same new store at that moment gets
 * "database is locked" at once. So the mode is read first (a shared lock, which waits), and a busy switch is
 * retried until the other opener has made it, or until the busy timeout.
 */
async function enterWalMode(db: Database, path: string): Promise<void> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    try {
      if (db.prepare("PRAGMA journal_mode").get()?.journal_mode === "wal") return;
      db.exec("PRAGMA journal_mode=WAL;");
      return;
    } catch (e) {
      if (!isBusy(e)) throw e;
      if (Date.now() > deadline) throw errorOf("Unavailable", `open metadata ${path}: another process kept it locked for ${BUSY_TIMEOUT_MS / 1000} s`, e);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** SQLITE_BUSY: Node gives the code, Deno only SQLite's message. */
function isBusy(e: unknown): boolean {
  const { errcode, message } = e as { errcode?: unknown; message?: unknown };
  return errcode === SQLITE_BUSY || (typeof message === "string" && /database is locked/.test(message));
}

const now = () => new Date().toISOString();

/** Typed access to the metadata tables; all writes are single transactions. */
export class MetadataStore {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  /** Runs `fn` in one immediate transaction; it commits only if `fn` returns. */
  transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const r = fn();
      this.#db.exec("COMMIT");
      return r;
    } catch (e) {
      // SQLite has rolled back already after some errors (SQLITE_FULL: the disk is full); the first error is the one to report.
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // no transaction is active any more
      }
      throw e;
    }
  }

  close(): void {
    this.#db.close();
  }

  /** Creates or updates an image name to point at `target`. */
  putImage(namespace: string, name: string, target: ImageRecord["target"]): ImageRecord {
    const t = now();
    this.#db
      .prepare(
        `INSERT INTO images (namespace, name, media_type, digest, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (namespace, name) DO UPDATE SET media_type=excluded.media_type, digest=excluded.digest, size=excluded.size, updated_at=excluded.updated_at`,
      )
      .run(namespace, name, target.mediaType, target.digest, target.size, t, t);
    return this.getImage(namespace, name)!;
  }

  getImage(namespace: string, name: string): ImageRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM images WHERE namespace = ? AND name = ?").get(namespace, name);
    return r ? toImage(r) : undefined;
  }

  listImages(namespace: string): ImageRecord[] {
    return this.#db.prepare("SELECT * FROM images WHERE namespace = ? ORDER BY name").all(namespace).map(toImage);
  }

  /** Deletes an image name; NotFound when it does not exist. */
  deleteImage(namespace: string, name: string): void {
    const r = this.#db.prepare("DELETE FROM images WHERE namespace = ? AND name = ?").run(namespace, name);
    if (Number(r.changes) === 0) throw errorOf("NotFound", `image "${name}": not found in namespace ${namespace}`);
  }

  /** Records a new container; AlreadyExists when the ID is taken in this namespace. */
  createContainer(rec: Omit<ContainerRecord, "createdAt">): ContainerRecord {
    if (this.getContainer(rec.namespace, rec.id)) {
      throw errorOf("AlreadyExists", `container "${rec.id}": already exists in namespace ${rec.namespace}`);
    }
    const t = now();
    this.#db
      .prepare("INSERT INTO containers (namespace, id, image, snapshotter, snapshot_key, runtime, labels, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .run(rec.namespace, rec.id, rec.image, rec.snapshotter, rec.snapshotKey, rec.runtime, JSON.stringify(rec.labels), t);
    return { ...rec, createdAt: t };
  }

  getContainer(namespace: string, id: string): ContainerRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM containers WHERE namespace = ? AND id = ?").get(namespace, id);
    return r ? toContainer(r) : undefined;
  }

  listContainers(namespace: string): ContainerRecord[] {
    return this.#db.prepare("SELECT * FROM containers WHERE namespace = ? ORDER BY id").all(namespace).map(toContainer);
  }

  deleteContainer(namespace: string, id: string): void {
    this.#db.prepare("DELETE FROM containers WHERE namespace = ? AND id = ?").run(namespace, id);
  }

  /** Records that `namespace` uses snapshot `key` (a chain ID or a container's active key). */
  putSnapshot(rec: Omit<SnapshotRecord, "createdAt">): void {
    this.#db
      .prepare("INSERT OR IGNORE INTO snapshots (namespace, key, parent, kind, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(rec.namespace, rec.key, rec.parent ?? null, rec.kind, now());
  }

  listSnapshots(namespace?: string): SnapshotRecord[] {
    const rows = namespace === undefined
      ? this.#db.prepare("SELECT * FROM snapshots ORDER BY namespace, key").all()
      : this.#db.prepare("SELECT * FROM snapshots WHERE namespace = ? ORDER BY key").all(namespace);
    return rows.map((r) => ({
      namespace: String(r.namespace),
      key: String(r.key),
      parent: r.parent === null ? undefined : String(r.parent),
      kind: String(r.kind) as SnapshotRecord["kind"],
      createdAt: String(r.created_at),
    }));
  }

  deleteSnapshot(namespace: string, key: string): void {
    this.#db.prepare("DELETE FROM snapshots WHERE namespace = ? AND key = ?").run(namespace, key);
  }

  /** A prepared statement, for the tables that other metadata modules keep (leases, namespaces). */
  statement(sql: string): Statement {
    return this.#db.prepare(sql);
  }

  /** Runs SQL without results (the schema of other metadata modules). */
  execSql(sql: string): void {
    this.#db.exec(sql);
  }

  /** Every image target digest in every namespace (what keeps content alive). */
  allImageTargets(): string[] {
    return this.#db.prepare("SELECT DISTINCT digest FROM images").all().map((r) => String(r.digest));
  }
}

function toImage(r: Row): ImageRecord {
  return {
    namespace: String(r.namespace),
    name: String(r.name),
    target: { mediaType: String(r.media_type), digest: String(r.digest) as ImageRecord["target"]["digest"], size: Number(r.size) },
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}

function toContainer(r: Row): ContainerRecord {
  return {
    namespace: String(r.namespace),
    id: String(r.id),
    image: String(r.image),
    snapshotter: String(r.snapshotter),
    snapshotKey: String(r.snapshot_key),
    runtime: String(r.runtime),
    labels: JSON.parse(String(r.labels)) as Record<string, string>,
    createdAt: String(r.created_at),
  };
}
