/**
 * How tsctr processes sharing one store coordinate: per-resource lock files under <root>/locks (one per blob
 * digest and per snapshot name; "gc" for the collector) and leases in the metadata store.
 *
 * - A pull takes a lease, then for each blob or layer: lock it, add it to the lease, look whether it exists,
 *   make it if not, unlock. A second pull of the same image waits on the lock and then finds the blob or
 *   layer made (one download per blob).
 * - GC marks what images, containers and live leases reach, then removes each unmarked thing only after
 *   taking its lock without waiting and checking again that no live lease holds it.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { acquireLock, withLock, type LockOptions, type Release } from "../platform/lock.ts";
import { addLeaseResource, createLease, deleteLease, renewLease, type LeaseResourceKind } from "../metadata/leases.ts";
import type { ContentStore } from "../content/mod.ts";
import type { Descriptor } from "../images/types.ts";

/** The lock file for a resource: "blob" by digest, "snapshot" by name, "gc" for the collector. */
export function lockPath(ctx: Context, kind: "blob" | "snapshot" | "gc", name = ""): string {
  const suffix = kind === "gc" ? "" : `-${createHash("sha256").update(name).digest("hex").slice(0, 32)}`;
  return join(ctx.root, "locks", `${kind}${suffix}`);
}

/** Locks a resource, waiting while another process holds it (or, with timeoutMs: 0, failing at once). */
export function lockResource(ctx: Context, kind: "blob" | "snapshot" | "gc", name: string, opts: LockOptions = {}): Promise<Release> {
  return acquireLock(lockPath(ctx, kind, name), { what: `${kind} ${name}`, ...opts });
}

/** A live lease on behalf of one operation. */
export interface Lease {
  readonly id: string;
  /** Protects a blob or snapshot from GC until the lease ends. */
  add(kind: LeaseResourceKind, ref: string): Promise<void>;
}

/** How long a lease lives without renewal; it is renewed every third of that while the operation runs. */
export const LEASE_TTL_MS = 5 * 60_000;

/** Runs `fn` under a fresh lease that is renewed while it runs and deleted when it ends. */
export async function withLease<T>(ctx: Context, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const md = await ctx.metadata();
  const rec = createLease(md, ctx.namespace, LEASE_TTL_MS);
  const timer = setInterval(() => {
    try {
      renewLease(md, rec.id, LEASE_TTL_MS);
    } catch {
      // a busy database: the next renewal tries again, long before expiry
    }
  }, LEASE_TTL_MS / 3);
  timer.unref?.();
  const lease: Lease = { id: rec.id, add: async (kind, ref) => addLeaseResource(md, rec.id, kind, ref) };
  try {
    return await fn(lease);
  } finally {
    clearInterval(timer);
    deleteLease(md, rec.id);
  }
}

/**
 * Stores a small blob (manifest, config) under its lock and the lease: when another process is writing the
 * same blob this one waits and then finds it stored.
 */
export async function storeBytes(ctx: Context, content: ContentStore, lease: Lease, bytes: Uint8Array, desc: Descriptor): Promise<void> {
  await withLock(lockPath(ctx, "blob", desc.digest), async () => {
    await lease.add("content", desc.digest);
    await content.writeBytes(bytes, { digest: desc.digest, size: desc.size });
  });
}

/** The blobs and snapshots an operation made: those that did not exist when it leased them. */
export interface Made {
  content: Set<string>;
  snapshots: Set<string>;
}

/**
 * Wraps `lease` so that each resource it adds is also recorded in `made` when `exists` says it is not there
 * yet. Callers add under the resource's lock, before making it, so what is recorded is this operation's own.
 */
export function trackingLease(lease: Lease, exists: (kind: LeaseResourceKind, ref: string) => Promise<boolean>, made: Made): Lease {
  return {
    id: lease.id,
    async add(kind, ref) {
      if (!(await exists(kind, ref))) (kind === "content" ? made.content : made.snapshots).add(ref);
      await lease.add(kind, ref);
    },
  };
}
