/**
 * The mark phase shared by GC, `check` and `df`: what the store's roots reach. Roots are images (of every
 * namespace: content and snapshots are shared, like containerd's), containers and live leases.
 *   image → target (index → manifests) → config and layer blobs; config → diffIDs → chain IDs (snapshots)
 *   container → its snapshot;  snapshot → its parent, transitively
 * Walking an image also tells whether it is whole: at least one of its platforms has its manifest, config
 * and every layer snapshot (an index need not hold every platform; a pull writes the name only after that).
 */
import type { ContentStore } from "../content/mod.ts";
import type { Digest } from "../digest/mod.ts";
import { chainIds } from "../images/chainid.ts";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "../images/parse.ts";
import type { Descriptor } from "../images/types.ts";
import type { MetadataStore } from "../metadata/mod.ts";
import { leaseLive, listLeases, liveLeaseResources } from "../metadata/leases.ts";
import type { SnapshotInfo } from "../snapshots/types.ts";

const MAX_MANIFEST = 4 << 20;

export interface ImageState {
  namespace: string;
  name: string;
  target: Descriptor;
  /** Why no platform of the image is whole; empty when it is. */
  problem?: string;
}

export interface Marks {
  /** Referenced blobs, with the size their descriptors give. */
  content: Map<string, number>;
  /** Referenced snapshot names, parents included. */
  snapshots: Set<string>;
  /** Chain IDs that each namespace's images use. */
  chainsByNamespace: Map<string, Set<string>>;
  images: ImageState[];
  /** True while any live lease exists (staging snapshots of in-flight pulls are kept then). */
  liveLeases: boolean;
}

/**
 * Marks everything reachable from images, containers and live leases. `snapshots` are the whole snapshots
 * by name (what the walk may count as present).
 */
export async function markReferences(md: MetadataStore, content: ContentStore, snapshots: Map<string, SnapshotInfo>): Promise<Marks> {
  const marks: Marks = { content: new Map(), snapshots: new Set(), chainsByNamespace: new Map(), images: [], liveLeases: false };
  for (const r of md.statement("SELECT namespace, name, media_type, digest, size FROM images ORDER BY namespace, name").all()) {
    const namespace = String(r.namespace);
    const target: Descriptor = { mediaType: String(r.media_type), digest: String(r.digest) as Digest, size: Number(r.size) };
    const chains = marks.chainsByNamespace.get(namespace) ?? new Set<string>();
    marks.chainsByNamespace.set(namespace, chains);
    const problem = await walkImage(content, target, snapshots, marks, chains);
    marks.images.push({ namespace, name: String(r.name), target, ...(problem ? { problem } : {}) });
  }
  for (const r of md.statement("SELECT snapshot_key FROM containers").all()) marks.snapshots.add(String(r.snapshot_key));
  // A container's record (with its snapshot's parent) is written before its snapshot is prepared.
  for (const r of md.statement("SELECT parent FROM snapshots WHERE kind != 'committed' AND parent IS NOT NULL").all()) marks.snapshots.add(String(r.parent));
  for (const res of liveLeaseResources(md)) {
    const [kind, ...rest] = res.split(":");
    const ref = rest.join(":");
    if (kind === "content") marks.content.set(ref, marks.content.get(ref) ?? -1);
    else marks.snapshots.add(ref);
  }
  marks.liveLeases = listLeases(md).some((l) => leaseLive(l));
  for (const name of [...marks.snapshots]) {
    for (let p = snapshots.get(name)?.parent; p !== undefined && !marks.snapshots.has(p); p = snapshots.get(p)?.parent) marks.snapshots.add(p);
  }
  return marks;
}

/** Marks one image's blobs and chain IDs; returns why it is not whole, or undefined. */
async function walkImage(content: ContentStore, target: Descriptor, snapshots: Map<string, SnapshotInfo>, marks: Marks, chains: Set<string>): Promise<string | undefined> {
  const mark = (d: Descriptor) => marks.content.set(d.digest, d.size);
  mark(target);
  const bytes = await readSmall(content, target);
  if (typeof bytes === "string") return `its ${target.mediaType.includes("index") || target.mediaType.includes("list") ? "index" : "manifest"} ${target.digest} ${bytes}`;
  let manifests: Descriptor[];
  try {
    manifests = detectManifestKind(target.mediaType, bytes) === "index" ? parseIndex(bytes).manifests : [target];
  } catch (e) {
    return `its target ${target.digest} is unreadable (${message(e)})`;
  }
  let firstProblem: string | undefined;
  let whole = 0;
  for (const m of manifests) {
    mark(m);
    const mb = m === target ? bytes : await readSmall(content, m);
    if (typeof mb === "string") {
      // An index's other platforms are normally absent: only the platforms pulled are here.
      if (m === target) firstProblem ??= `its manifest ${m.digest} ${mb}`;
      continue;
    }
    const problem = await walkManifest(content, m, mb, snapshots, marks, chains).catch((e) => `its manifest ${m.digest} is unreadable (${message(e)})`);
    if (problem === undefined) whole++;
    else firstProblem ??= problem;
  }
  if (whole > 0) return undefined;
  return firstProblem ?? "none of its platforms is in the store";
}

async function walkManifest(content: ContentStore, desc: Descriptor, bytes: Uint8Array, snapshots: Map<string, SnapshotInfo>, marks: Marks, chains: Set<string>): Promise<string | undefined> {
  if (detectManifestKind(desc.mediaType, bytes) === "index") return "a nested index (not followed)";
  const manifest = parseManifest(bytes);
  marks.content.set(manifest.config.digest, manifest.config.size);
  for (const l of manifest.layers) marks.content.set(l.digest, l.size);
  const cb = await readSmall(content, manifest.config);
  if (typeof cb === "string") return `its config ${manifest.config.digest} ${cb}`;
  const config = parseImageConfig(cb);
  const chain = await chainIds(config.rootfs.diff_ids);
  for (const c of chain) {
    marks.snapshots.add(c);
    chains.add(c);
  }
  const missing = chain.find((c) => snapshots.get(c)?.kind !== "committed");
  return missing === undefined ? undefined : `its layer snapshot ${missing} is missing`;
}

/** A small blob's bytes, or why it cannot be read ("is missing", "has N bytes, expected M"). */
async function readSmall(content: ContentStore, d: Descriptor): Promise<Uint8Array | string> {
  const info = await content.info(d.digest);
  if (!info) return "is missing";
  if (info.size !== d.size) return `has ${info.size} bytes, expected ${d.size}`;
  try {
    return await content.readBytes(d.digest, MAX_MANIFEST);
  } catch (e) {
    return `is unreadable (${message(e)})`;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
