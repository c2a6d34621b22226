/**
 * Unpacks an image's layers into snapshots keyed by chain ID, like containerd's pkg/rootfs/apply.go:
 * for each layer, a committed snapshot of its chain ID is reused; otherwise the blob is streamed from the
 * content store, decompressed, hashed and applied into a fresh active snapshot, its diffID checked
 * against the image config, and only then committed. A failed layer leaves no snapshot behind.
 */
import { randomBytes } from "node:crypto";
import { applyLayer } from "../archive/apply.ts";
import { decompress } from "../archive/decompress.ts";
import { readTar } from "../archive/tar_reader.ts";
import type { ContentStore } from "../content/types.ts";
import { createHasher, type Digest } from "../digest/mod.ts";
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
 * Makes sure a committed snapshot exists for every layer prefix and returns the top chain ID. Each layer
 * is committed only after it was applied completely and its diffID matched; DataLoss names a layer whose
 * uncompressed digest differs from the config's.
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
      const bytes = await unpackLayer(opts, layer, diffIds[index]!, chainId, parent);
      opts.onLayer?.({ digest: layer.digest, index, chainId, status: "done", bytes });
    }
    parent = chainId;
  }
  return { chainId: chain.at(-1)! };
}

/** Applies one layer into a new snapshot and commits it as `chainId`; removes the snapshot on any failure. */
async function unpackLayer(opts: UnpackOptions, layer: Descriptor, diffId: Digest, chainId: Digest, parent: Digest | undefined): Promise<number> {
  const { snapshotter } = opts;
  const what = `layer ${layer.digest}`;
  const key = `extract-${randomBytes(8).toString("hex")} ${chainId}`;
  await snapshotter.prepare(key, parent);
  try {
    const dir = await snapshotter.upperDir(key);
    const blob = await opts.content.readStream(layer.digest);
    const tar = await decompress(blob, { mediaType: layer.mediaType, what });
    const hasher = await createHasher();
    const hashed = tar.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          hasher.update(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
    const stats = await applyLayer(readTar(hashed, { what }), dir, { layer: layer.digest });
    const got = hasher.digest();
    if (got !== diffId) {
      throw errorOf("DataLoss", `unpack ${opts.imageRef} ${what}: uncompressed digest ${got} does not match diffID ${diffId} from the image config`);
    }
    try {
      await snapshotter.commit(chainId, key);
    } catch (e) {
      // Another unpack committed the same layer meanwhile: theirs is as good as ours.
      if (!isKind(e, "AlreadyExists")) throw e;
      await snapshotter.remove(key);
    }
    return stats.bytes;
  } catch (e) {
    await snapshotter.remove(key).catch(() => {});
    throw e;
  }
}
