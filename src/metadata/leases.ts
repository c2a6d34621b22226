/**
 * Leases protect in-flight work from garbage collection, like containerd's leases: a pull or an import
 * takes a lease, adds every blob and snapshot it is about to use, renews the lease while it works, and
 * deletes it at the end. GC keeps whatever a live lease holds. A lease is dead when it has expired or when
 * the process that owns it has gone (a killed pull), so nothing stays pinned after a crash.
 */
import { randomBytes } from "node:crypto";
import { ownerAlive, ownerId } from "../platform/lock.ts";
import type { MetadataStore } from "./db.ts";

/** What a lease can hold: a blob by digest, or a snapshot by name (chain ID or key). */
export type LeaseResourceKind = "content" | "snapshot";

export interface LeaseRecord {
  id: string;
  namespace: string;
  /** "<pid> <start time>" of the process that took it. */
  owner: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  createdAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY, namespace TEXT NOT NULL, owner TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease_resources (
  lease_id TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (lease_id, kind, ref));
`;

const ready = new WeakSet<MetadataStore>();

function schema(md: MetadataStore): MetadataStore {
  if (!ready.has(md)) {
    md.execSql(SCHEMA);
    ready.add(md);
  }
  return md;
}

/** Creates a lease owned by this process that expires `ttlMs` from now. */
export function createLease(md: MetadataStore, namespace: string, ttlMs: number): LeaseRecord {
  const rec: LeaseRecord = { id: randomBytes(12).toString("hex"), namespace, owner: ownerId(), expiresAt: Date.now() + ttlMs, createdAt: new Date().toISOString() };
  schema(md).transaction(() =>
    md.statement("INSERT INTO leases (id, namespace, owner, expires_at, created_at) VALUES (?, ?, ?, ?, ?)").run(rec.id, rec.namespace, rec.owner, rec.expiresAt, rec.createdAt),
  );
  return rec;
}

/** Adds a resource to lease `id` (idempotent); it is protected from GC from this commit on. */
export function addLeaseResource(md: MetadataStore, id: string, kind: LeaseResourceKind, ref: string): void {
  schema(md).transaction(() => md.statement("INSERT OR IGNORE INTO lease_resources (lease_id, kind, ref) VALUES (?, ?, ?)").run(id, kind, ref));
}

/** Moves lease `id`'s expiry to `ttlMs` from now. */
export function renewLease(md: MetadataStore, id: string, ttlMs: number): void {
  schema(md).transaction(() => md.statement("UPDATE leases SET expires_at = ? WHERE id = ?").run(Date.now() + ttlMs, id));
}

/** Deletes lease `id` and its resources (no error when absent). */
export function deleteLease(md: MetadataStore, id: string): void {
  schema(md).transaction(() => {
    md.statement("DELETE FROM lease_resources WHERE lease_id = ?").run(id);
    md.statement("DELETE FROM leases WHERE id = ?").run(id);
  });
}

/** Every lease, live or dead. */
export function listLeases(md: MetadataStore): LeaseRecord[] {
  return schema(md)
    .statement("SELECT * FROM leases ORDER BY created_at")
    .all()
    .map((r) => ({ id: String(r.id), namespace: String(r.namespace), owner: String(r.owner), expiresAt: Number(r.expires_at), createdAt: String(r.created_at) }));
}

/** True when a lease has not expired and its owner process still runs. */
export function leaseLive(l: LeaseRecord, now = Date.now()): boolean {
  return l.expiresAt > now && ownerAlive(l.owner);
}

/** The resources held by live leases, as "kind:ref" strings. */
export function liveLeaseResources(md: MetadataStore): Set<string> {
  const live = new Set(listLeases(md).filter((l) => leaseLive(l)).map((l) => l.id));
  const out = new Set<string>();
  for (const r of schema(md).statement("SELECT * FROM lease_resources").all()) {
    if (live.has(String(r.lease_id))) out.add(`${String(r.kind)}:${String(r.ref)}`);
  }
  return out;
}

/** True when a live lease holds the resource. */
export function isLeased(md: MetadataStore, kind: LeaseResourceKind, ref: string): boolean {
  const ids = schema(md).statement("SELECT lease_id FROM lease_resources WHERE kind = ? AND ref = ?").all(kind, ref).map((r) => String(r.lease_id));
  if (ids.length === 0) return false;
  const leases = listLeases(md).filter((l) => ids.includes(l.id));
  return leases.some((l) => leaseLive(l));
}

/** Deletes dead leases (expired, or their owner gone); returns how many. */
export function deleteDeadLeases(md: MetadataStore): number {
  const dead = listLeases(md).filter((l) => !leaseLive(l));
  for (const l of dead) deleteLease(md, l.id);
  return dead.length;
}
