/**
 * `pull`: registry → (content store and snapshots, streamed per layer: see layers.ts) → image record. The image name is written last, in one
 * metadata transaction, so a pull that dies halfway leaves the store as before (plus verified blobs and
 * committed layers that a later pull reuses), never an image that points at missing content.
 */
import type { Context } from "./context.ts";
import type { ContentStore } from "../content/mod.ts";
import { errorOf } from "../errdefs/mod.ts";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "../images/parse.ts";
import { formatPlatform, selectManifest } from "../images/platform.ts";
import type { Descriptor, Platform } from "../images/types.ts";
import { RegistryClient, parseReference, type Reference } from "../registry/mod.ts";
import { chainIds } from "../images/chainid.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { pullLayers } from "./layers.ts";
import type { LayerLimits } from "../unpack/extract.ts";
import { isRoot } from "../platform/runtime.ts";

export type PullEvent =
  | { type: "resolved"; ref: string; digest: string; platform: string }
  | { type: "blob"; digest: string; mediaType: string; status: "waiting" | "downloading" | "exists" | "done"; offset: number; size: number }
  | { type: "unpack"; digest: string; status: "extracting" | "exists" | "done" }
  | { type: "done"; ref: string; digest: string; elapsedMs: number };

export interface PullOptions {
  platform: Platform;
  plainHttp?: boolean;
  /** Also unpack into snapshots (default true, like `ctr pull`). */
  unpack?: boolean;
  concurrency?: number;
  /** Keep no compressed copy of the layers (small SD cards); export and push then need a re-pull. */
  discardBlobs?: boolean;
  /** Decompression-bomb ceilings per layer (defaults: 64 GiB, 1100:1). */
  limits?: Partial<LayerLimits>;
  /** Extraction worker threads (default: one per core; 0: extract in this thread, with less memory). */
  workers?: number;
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
  const registry = new RegistryClient({ plainHttp: opts.plainHttp });
  try {
    return await pullWith(ctx, registry, ref, opts, started);
  } finally {
    await registry.close();
  }
}

async function pullWith(ctx: Context, registry: RegistryClient, ref: Reference, opts: PullOptions, started: number): Promise<PullResult> {
  const emit = opts.onEvent ?? (() => {});
  const name = ref.toString();
  const content = await ctx.content();

  const top = await registry.resolve(ref);
  const target = top.descriptor;
  await content.writeBytes(top.bytes, target);

  let manifestDesc = target;
  let manifestBytes = top.bytes;
  if (detectManifestKind(target.mediaType, top.bytes) === "index") {
    manifestDesc = selectManifest(parseIndex(top.bytes), opts.platform, name);
    manifestBytes = await registry.fetchManifest(ref, manifestDesc);
    await content.writeBytes(manifestBytes, manifestDesc);
  }
  emit({ type: "resolved", ref: name, digest: target.digest, platform: formatPlatform(opts.platform) });

  const manifest = parseManifest(manifestBytes);
  if (manifest.config.size > MAX_SMALL_BLOB) throw errorOf("ResourceExhausted", `pull ${name}: image config of ${manifest.config.size} bytes is too large`);
  const configBytes = await registry.fetchManifest(ref, manifest.config);
  await content.writeBytes(configBytes, manifest.config);
  const config = parseImageConfig(configBytes);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw errorOf("DataLoss", `pull ${name}: config lists ${config.rootfs.diff_ids.length} diff IDs for ${manifest.layers.length} layers`);
  }

  let chainId: string | undefined;
  if (opts.unpack === false) {
    await fetchLayers(registry, ref, content, manifest.layers, opts.concurrency ?? 3, emit);
  } else {
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
      workers: opts.workers,
      emit,
    });
    chainId = chain.at(-1);
    const md = await ctx.metadata();
    md.transaction(() => {
      chain.forEach((c, i) => md.putSnapshot({ namespace: ctx.namespace, key: c, parent: i > 0 ? chain[i - 1] : undefined, kind: "committed" }));
    });
  }

  const md = await ctx.metadata();
  md.transaction(() => md.putImage(ctx.namespace, name, { mediaType: target.mediaType, digest: target.digest, size: target.size }));
  emit({ type: "done", ref: name, digest: target.digest, elapsedMs: Date.now() - started });
  return { name, target, manifest: manifestDesc, chainId };
}

/** Downloads the layers not yet in the content store, `limit` at a time, each verified before it is visible. */
async function fetchLayers(
  registry: RegistryClient,
  ref: Reference,
  content: ContentStore,
  layers: Descriptor[],
  limit: number,
  emit: (e: PullEvent) => void,
): Promise<void> {
  const queue = [...new Map(layers.map((l) => [l.digest, l])).values()];
  for (const l of queue) emit({ type: "blob", digest: l.digest, mediaType: l.mediaType, status: "waiting", offset: 0, size: l.size });
  // On the first failure the other workers stop taking layers and abort their transfers, and the error is
  // thrown only once every worker has settled, so no ingest is left half-written behind a failed pull.
  const abort = new AbortController();
  const worker = async () => {
    for (let l = queue.shift(); l && !abort.signal.aborted; l = queue.shift()) {
      await fetchBlob(registry, ref, content, l, emit, abort.signal).catch((e) => {
        abort.abort(e);
        throw e;
      });
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, limit) }, worker));
  if (abort.signal.aborted) throw abort.signal.reason;
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

async function fetchBlob(
  registry: RegistryClient,
  ref: Reference,
  content: ContentStore,
  desc: Descriptor,
  emit: (e: PullEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const base = { type: "blob", digest: desc.digest, mediaType: desc.mediaType, size: desc.size } as const;
  if (await content.info(desc.digest)) {
    emit({ ...base, status: "exists", offset: desc.size });
    return;
  }
  const writer = await content.writer(`pull-${desc.digest}`, { digest: desc.digest, size: desc.size });
  try {
    const reader = (await registry.fetchBlob(ref, desc)).getReader();
    const stop = () => void reader.cancel(signal.reason).catch(() => {});
    signal.addEventListener("abort", stop, { once: true });
    try {
      let lastEmit = 0;
      for (let r = await reader.read(); !r.done && !signal.aborted; r = await reader.read()) {
        await writer.write(r.value);
        const t = Date.now();
        if (t - lastEmit > 100) {
          lastEmit = t;
          emit({ ...base, status: "downloading", offset: writer.offset });
        }
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
    if (signal.aborted) throw signal.reason;
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  emit({ ...base, status: "done", offset: desc.size });
}
