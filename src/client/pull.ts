/**
 * `pull`: resolve the reference and the platform's manifest and config, stream the layers into the content
 * store and snapshots (layers.ts), then write the image name, last and in one metadata transaction: a pull
 * that dies halfway leaves the store as before (plus verified blobs and committed layers that a later pull
 * reuses), never an image that points at missing content.
 */
import type { Context } from "./context.ts";
import { emitEvent } from "./events.ts";
import { errorOf, isDiskFull } from "../errdefs/mod.ts";
import type { Digest } from "../digest/mod.ts";
import { diskFullError } from "../platform/disk_full.ts";
import { collectGarbage } from "./gc.ts";
import { deleteLease } from "../metadata/leases.ts";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "../images/parse.ts";
import { formatPlatform, selectManifest } from "../images/platform.ts";
import type { Descriptor, ImageConfig, Manifest, Platform } from "../images/types.ts";
import type { ContentStore } from "../content/mod.ts";
import { parseReference, type Reference, type RegistryClient, type Resolved, type RetryPolicy } from "../registry/mod.ts";
import { openRegistry } from "./registry.ts";
import { chainIds } from "../images/chainid.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { pullLayers } from "./layers.ts";
import type { LayerLimits } from "../unpack/extract.ts";
import { isRoot } from "../platform/runtime.ts";
import { lockResource, storeBytes, trackingLease, withLease, type Lease, type Made } from "./coordination.ts";
import type { LayerGuard } from "./layers.ts";
import { clearImageMark } from "../metadata/image_marks.ts";
import { readStoreConfig } from "./store_config.ts";

export type PullEvent =
  | { type: "resolved"; ref: string; digest: string; platform: string }
  | { type: "blob"; digest: string; mediaType: string; status: "waiting" | "downloading" | "exists" | "done"; offset: number; size: number }
  | { type: "unpack"; digest: string; status: "extracting" | "exists" | "done" }
  | { type: "resume"; digest: string; offset: number; size: number }
  | { type: "retry"; digest: string; reason: string; delayMs: number; offset: number; size: number }
  | { type: "done"; ref: string; digest: string; elapsedMs: number };

export interface PullOptions {
  platform: Platform;
  plainHttp?: boolean;
  /** Verify no TLS certificate of the registry or its mirrors. */
  skipVerify?: boolean;
  /** "user:password" for the image's registry, instead of config.json's. */
  user?: string;
  concurrency?: number;
  /** Keep no compressed copy of the layers (small SD cards); export and push then need a re-pull. */
  discardBlobs?: boolean;
  /** Decompression-bomb ceilings per layer (defaults: 64 GiB, 1100:1). */
  limits?: Partial<LayerLimits>;
  /** Extraction worker threads besides this one (default: the store config's unpackWorkers, else 0: every layer in this thread, the least memory; each worker ~25 MB). */
  workers?: number;
  /** How broken downloads are retried and resumed (defaults: registry/retry.ts DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
  onEvent?: (e: PullEvent) => void;
}

export interface PullResult {
  name: string;
  target: Descriptor;
  manifest: Descriptor;
  chainId?: string;
}

const MAX_SMALL_BLOB = 4 << 20;

/** Pulls `refString` for one platform; returns the stored image. Safe to repeat and to interrupt. */
export async function pull(ctx: Context, refString: string, opts: PullOptions): Promise<PullResult> {
  if (!isRoot()) throw errorOf("PermissionDenied", `pull ${refString}: tsctr must run as root to unpack images (file owners, device nodes)`);
  const started = Date.now();
  const ref = parseReference(refString);
  const registry = await openRegistry(ctx, { plainHttp: opts.plainHttp, skipVerify: opts.skipVerify, user: opts.user, userRegistry: ref.domain });
  const made: Made = { content: new Set(), snapshots: new Set() };
  const need = { bytes: 0 };
  let leaseId: string | undefined;
  // The manifest request goes out while the stores and the lease are opened (it needs neither).
  const resolving = registry.resolve(ref);
  resolving.catch(() => {}); // awaited in pullWith; a failure before that is the one reported
  try {
    const content = await ctx.content();
    const snapshotter = await openSnapshotter(ctx);
    const exists = async (kind: string, name: string) => (kind === "content" ? (await content.info(name as Digest)) !== undefined : (await snapshotter.stat(name)) !== undefined);
    const result = await withLease(ctx, (lease) => {
      leaseId = lease.id;
      return pullWith(ctx, registry, ref, resolving, opts, started, trackingLease(lease, exists, made), need);
    });
    await emitEvent(ctx, "pull", result.name);
    return result;
  } catch (e) {
    // A full disk: what this pull stored only takes the room the user needs; the store goes back to before.
    if (isDiskFull(e)) await undoMade(ctx, leaseId, made);
    throw await diskFullError(e, `pull ${refString}`, ctx.root, need.bytes);
  } finally {
    await resolving.catch(() => {});
    await registry.close();
  }
}

async function pullWith(ctx: Context, registry: RegistryClient, ref: Reference, resolving: Promise<Resolved>, opts: PullOptions, started: number, lease: Lease, need: { bytes: number }): Promise<PullResult> {
  const emit = opts.onEvent ?? (() => {});
  const name = ref.toString();
  const content = await ctx.content();

  // The index, manifest and config (verified in memory by the registry client) are stored while the next
  // document and then the layers are fetched: each store takes a lock, a lease entry and two fsyncs, and
  // the layers need only the bytes. Every store has succeeded before the image is named (after pullLayers).
  const stores = new SmallBlobStores(ctx, content, lease);
  try {
    const top = await resolving;
    const target = top.descriptor;
    stores.add(top.bytes, target);

    let manifestDesc = target;
    let manifestBytes = top.bytes;
    if (detectManifestKind(target.mediaType, top.bytes) === "index") {
      manifestDesc = selectManifest(parseIndex(top.bytes), opts.platform, name);
      manifestBytes = await registry.fetchManifest(ref, manifestDesc);
      stores.add(manifestBytes, manifestDesc);
    }
    emit({ type: "resolved", ref: name, digest: target.digest, platform: formatPlatform(opts.platform) });

    const manifest = parseManifest(manifestBytes);
    if (manifest.config.size > MAX_SMALL_BLOB) throw errorOf("ResourceExhausted", `pull ${name}: image config of ${manifest.config.size} bytes is too large`);
    const configBytes = await registry.fetchManifest(ref, manifest.config);
    stores.add(configBytes, manifest.config);
    const config = parseImageConfig(configBytes);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw errorOf("DataLoss", `pull ${name}: config lists ${config.rootfs.diff_ids.length} diff IDs for ${manifest.layers.length} layers`);
    }
    return await pullImage(ctx, registry, ref, opts, started, stores, need, { target, manifestDesc, manifest, config });
  } finally {
    await stores.settled();
  }
}

/** What the image's documents said: the descriptor pulled, the platform's manifest, and its config. */
interface ImageDocuments {
  target: Descriptor;
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/** Pulls the layers of a resolved image, then names it once its documents are stored too. */
async function pullImage(ctx: Context, registry: RegistryClient, ref: Reference, opts: PullOptions, started: number, stores: SmallBlobStores, need: { bytes: number }, docs: ImageDocuments): Promise<PullResult> {
  const { target, manifestDesc, manifest, config } = docs;
  const name = ref.toString();
  const emit = opts.onEvent ?? (() => {});
  const content = await ctx.content();
  const lease = stores.lease;
  // What the pull writes at least: the compressed layers (unless discarded) and as much again unpacked.
  need.bytes = manifest.layers.reduce((n, l) => n + l.size, 0) * (opts.discardBlobs ? 1 : 2);
  const snapshotter = await openSnapshotter(ctx);
  const chain = await chainIds(config.rootfs.diff_ids);
  await pullLayers({
    registry,
    ref,
    content,
    snapshotter,
    layers: manifest.layers,
    diffIds: config.rootfs.diff_ids,
    chain,
    discardBlobs: opts.discardBlobs ?? false,
    concurrency: opts.concurrency ?? 3,
    limits: opts.limits,
    workers: opts.workers ?? (await readStoreConfig(ctx.root)).unpackWorkers,
    retry: opts.retry,
    emit,
    guard: layerGuard(ctx, lease),
  });
  await stores.done();
  const chainId = chain.at(-1);
  const md = await ctx.metadata();
  md.transaction(() => {
    chain.forEach((c, i) => md.putSnapshot({ namespace: ctx.namespace, key: c, parent: i > 0 ? chain[i - 1] : undefined, kind: "committed" }));
    md.putImage(ctx.namespace, name, { mediaType: target.mediaType, digest: target.digest, size: target.size });
    clearImageMark(md, ctx.namespace, name);
  });
  emit({ type: "done", ref: name, digest: target.digest, elapsedMs: Date.now() - started });
  return { name, target, manifest: manifestDesc, chainId };
}

/**
 * The small blobs of a pull (index, manifest, config), each stored under its lock and the lease while the
 * pull goes on; `done` reports the first failure, `settled` waits for every store whatever happened.
 */
class SmallBlobStores {
  readonly #pending: Promise<void>[] = [];
  readonly #ctx: Context;
  readonly #content: ContentStore;
  readonly lease: Lease;

  constructor(ctx: Context, content: ContentStore, lease: Lease) {
    this.#ctx = ctx;
    this.#content = content;
    this.lease = lease;
  }

  /** Starts storing `bytes` (already verified against `desc`). */
  add(bytes: Uint8Array, desc: Descriptor): void {
    const storing = storeBytes(this.#ctx, this.#content, this.lease, bytes, desc);
    storing.catch(() => {}); // reported by done(); unobserved only when the pull failed first
    this.#pending.push(storing);
  }

  /** Resolves when every store has succeeded; rejects with the first one's error. */
  async done(): Promise<void> {
    await Promise.all(this.#pending);
  }

  /** Resolves when no store is running any more. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#pending);
  }
}

/**
 * Removes what a failed pull made (blobs and layers nothing else uses or leases). Its lease goes first:
 * withLease deletes it, but on a disk still full that delete may have failed.
 */
async function undoMade(ctx: Context, leaseId: string | undefined, made: Made): Promise<void> {
  try {
    if (leaseId !== undefined) deleteLease(await ctx.metadata(), leaseId);
    await collectGarbage(ctx, { only: made });
  } catch {
    // what stays is unreferenced: the next GC removes it
  }
}

/** Layer locks and leases for this pull (see coordination.ts). */
function layerGuard(ctx: Context, lease: Lease): LayerGuard {
  return {
    async lockLayer(chainId) {
      const release = await lockResource(ctx, "snapshot", chainId);
      await lease.add("snapshot", chainId).catch(async (e) => {
        await release();
        throw e;
      });
      return release;
    },
    async withBlob(digest, fn) {
      const release = await lockResource(ctx, "blob", digest);
      try {
        await lease.add("content", digest);
        return await fn();
      } finally {
        await release();
      }
    },
  };
}
