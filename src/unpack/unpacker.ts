/**
 * Unpacks layers into snapshots keyed by chain ID, like containerd's pkg/rootfs/apply.go, in two steps
 * so that layers can be extracted in parallel and chained in order:
 * - `extractLayer` streams a compressed layer through decompress → diffID hash → tar → files into a fresh
 *   parentless active snapshot (in this thread or on an extraction worker) and checks the diffID; on any
 *   failure the snapshot is removed.
 * - `commitLayer` freezes it as its chain ID on top of its (committed) parent.
 * A layer becomes visible only when complete and verified.
 */
import { randomBytes } from "node:crypto";
import type { ApplyStats } from "../archive/apply.ts";
import type { ContentStore } from "../content/types.ts";
import type { Digest } from "../digest/mod.ts";
import { extractInto, type LayerLimits } from "./extract.ts";
import type { ExtractWorkers } from "./workers.ts";
import { errorOf, isKind } from "../errdefs/mod.ts";
import { chainIds } from "../images/chainid.ts";
import type { Descriptor } from "../images/types.ts";
import type { Snapshotter } from "../snapshots/types.ts";

export interface UnpackEvent {
  /** The layer blob's digest. */
  digest: Digest;
  index: number;
  chainId: Digest;
  /** "exists": already unpacked; "extracting": started; "done": committed. */
  status: "exists" | "extracting" | "done";
  /** Uncompressed bytes of file data written (with "done"). */
  bytes?: number;
}

export interface ExtractedLayer {
  /** The active snapshot holding the layer; commit or remove it. */
  key: string;
  stats: ApplyStats;
}

/**
 * Extracts the compressed layer `source` into a new parentless active snapshot and verifies its diffID.
 * `source` must deliver the layer's bytes in full; verifying the compressed digest is the caller's part.
 */
export async function extractLayer(
  snapshotter: Snapshotter,
  source: ReadableStream<Uint8Array>,
  layer: Descriptor,
  diffId: Digest,
  imageRef: string,
  opts: { workers?: ExtractWorkers; limits?: Partial<LayerLimits>; ownsInput?: boolean } = {},
): Promise<ExtractedLayer> {
  const what = `layer ${layer.digest}`;
  const key = `extract-${randomBytes(8).toString("hex")} ${diffId}`;
  await snapshotter.prepare(key);
  try {
    const target = { dir: await snapshotter.upperDir(key), digest: layer.digest, mediaType: layer.mediaType, limits: opts.limits, ownsInput: opts.ownsInput };
    const { diffId: got, stats } = opts.workers ? await opts.workers.run(source, target) : await extractInto(source, target);
    if (got !== diffId) {
      throw errorOf("DataLoss", `unpack ${imageRef} ${what}: uncompressed digest ${got} does not match diffID ${diffId} from the image config`);
    }
    return { key, stats };
  } catch (e) {
    await snapshotter.remove(key).catch(() => {});
    throw e;
  }
}

/**
 * Commits extracted snapshot `key` as `chainId` on `parent`; if another unpack won the race, drops ours.
 * `flushed`: the caller flushed `key` after it was extracted (Snapshotter.commit).
 */
export async function commitLayer(snapshotter: Snapshotter, key: string, chainId: Digest, parent: Digest | undefined, flushed = false): Promise<void> {
  try {
    await snapshotter.commit(chainId, key, { ...(parent === undefined ? {} : { parent }), flushed });
  } catch (e) {
    await snapshotter.remove(key).catch(() => {});
    if (!isKind(e, "AlreadyExists")) throw e;
  }
}

export interface UnpackOptions {
  content: ContentStore;
  snapshotter: Snapshotter;
  layers: Descriptor[];
  /** The image config's rootfs.diff_ids, one per layer. */
  diffIds: Digest[];
  /** Names the image in errors. */
  imageRef: string;
  onLayer?: (event: UnpackEvent) => void;
}

/**
 * Unpacks layers whose blobs are in the content store, one after another, and returns the top chain ID.
 * Layers already committed are reused.
 */
export async function unpackLayers(opts: UnpackOptions): Promise<{ chainId: Digest }> {
  const { layers, diffIds, snapshotter } = opts;
  if (layers.length !== diffIds.length) {
    throw errorOf("InvalidArgument", `unpack ${opts.imageRef}: the manifest has ${layers.length} layers but the config has ${diffIds.length} diffIDs`);
  }
  if (layers.length === 0) throw errorOf("InvalidArgument", `unpack ${opts.imageRef}: the image has no layers`);
  const chain = await chainIds(diffIds);
  let parent: Digest | undefined;
  for (const [index, layer] of layers.entries()) {
    const chainId = chain[index]!;
    if (await snapshotter.stat(chainId)) {
      opts.onLayer?.({ digest: layer.digest, index, chainId, status: "exists" });
    } else {
      opts.onLayer?.({ digest: layer.digest, index, chainId, status: "extracting" });
      const source = await opts.content.readStream(layer.digest);
      const { key, stats } = await extractLayer(snapshotter, source, layer, diffIds[index]!, opts.imageRef);
      await commitLayer(snapshotter, key, chainId, parent);
      opts.onLayer?.({ digest: layer.digest, index, chainId, status: "done", bytes: stats.bytes });
    }
    parent = chainId;
  }
  return { chainId: chain.at(-1)! };
}
