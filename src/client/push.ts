/**
 * `push`: walk a stored image (index → manifests → config and layers), check that every blob is in the
 * content store, make each blob present in the target repository (skipped, mounted or uploaded), then PUT
 * the manifests and, last, the index, so the registry never holds a tag that points at missing content.
 */
import type { Context } from "./context.ts";
import { getImage } from "./images.ts";
import type { ContentStore } from "../content/mod.ts";
import { errorOf } from "../errdefs/mod.ts";
import { detectManifestKind, parseIndex, parseManifest } from "../images/parse.ts";
import { formatPlatform, hostPlatform, normalizePlatform, selectManifest } from "../images/platform.ts";
import type { Descriptor, Manifest, Platform } from "../images/types.ts";
import { parseReference, pushBlob, putManifest, RegistryClient, type Reference } from "../registry/mod.ts";

const MAX_MANIFEST = 4 << 20;

export type PushEvent =
  | { type: "blob"; digest: string; mediaType: string; status: "exists" | "mounted" | "uploading" | "done"; offset: number; size: number; from?: string }
  | { type: "manifest"; digest: string; mediaType: string; reference: string }
  | { type: "note"; message: string }
  | { type: "done"; ref: string; digest: string; elapsedMs: number };

export interface PushOptions {
  /** Push only this platform's manifest of an index. */
  platform?: Platform;
  /** Push every manifest of an index; fails when any of them is incomplete locally. */
  allPlatforms?: boolean;
  plainHttp?: boolean;
  /** Blobs above this size go in chunks of this size (default 16 MiB). */
  chunkSize?: number;
  /** Blobs sent at once (default 3). */
  concurrency?: number;
  onEvent?: (e: PushEvent) => void;
}

export interface PushResult {
  name: string;
  /** What the pushed tag (or digest) now points at: the index, or a single manifest. */
  target: Descriptor;
}

/** A manifest read from the store with its bytes, and what blocks pushing it (missing pieces). */
interface LocalManifest {
  desc: Descriptor;
  bytes?: Uint8Array;
  manifest?: Manifest;
  missing: string[];
}

/** The one place push builds its registry client (to become the shared factory of global options). */
function registryFor(opts: PushOptions): RegistryClient {
  return new RegistryClient({ plainHttp: opts.plainHttp });
}

/**
 * Pushes the stored image `localName` (default: `refString`) as `refString`. Blobs missing locally (pulled
 * with --discard-blobs) fail with FailedPrecondition before anything is sent. Safe to repeat: what the
 * registry holds is skipped.
 */
export async function push(ctx: Context, refString: string, localName: string | undefined, opts: PushOptions = {}): Promise<PushResult> {
  const started = Date.now();
  const emit = opts.onEvent ?? (() => {});
  const ref = parseReference(refString);
  const image = await getImage(ctx, localName ?? refString);
  const content = await ctx.content();
  const plan = await planPush(content, image.target, image.name, opts, emit);
  const top = plan.index ?? plan.manifests[0]!.desc;
  if (ref.digest && ref.digest !== top.digest) {
    throw errorOf("InvalidArgument", `push ${ref}: the image to push has digest ${top.digest}, not the one in the reference`);
  }
  const tag = ref.digest ?? ref.tag ?? "latest";
  const sources = await mountSources(ctx, content, ref);
  const registry = registryFor(opts);
  try {
    const blobs = uniqueBlobs(plan.manifests);
    await forEachLimited(blobs, opts.concurrency ?? 3, async (desc) => {
      const outcome = await pushBlob(registry, ref, desc, {
        open: () => content.readStream(desc.digest),
        from: sources.get(desc.digest),
        chunkSize: opts.chunkSize,
        onProgress: (offset) => emit({ type: "blob", digest: desc.digest, mediaType: desc.mediaType, status: "uploading", offset, size: desc.size }),
      });
      const status = outcome.status === "uploaded" ? "done" : outcome.status;
      emit({ type: "blob", digest: desc.digest, mediaType: desc.mediaType, status, offset: desc.size, size: desc.size, ...(outcome.status === "mounted" ? { from: outcome.from } : {}) });
    });
    for (const m of plan.manifests) {
      const reference = plan.index ? m.desc.digest : tag;
      await putManifest(registry, ref, reference, m.desc, m.bytes!);
      emit({ type: "manifest", digest: m.desc.digest, mediaType: m.desc.mediaType, reference });
    }
    if (plan.index) {
      await putManifest(registry, ref, tag, plan.index, plan.indexBytes!);
      emit({ type: "manifest", digest: plan.index.digest, mediaType: plan.index.mediaType, reference: tag });
    }
  } finally {
    await registry.close();
  }
  emit({ type: "done", ref: ref.toString(), digest: top.digest, elapsedMs: Date.now() - started });
  return { name: ref.toString(), target: top };
}

/**
 * What to push of `target`: one manifest, or an index with all its manifests. For an index: --platform
 * picks one manifest; --all-platforms needs every one complete; by default the whole index when it is
 * complete locally, else the host platform's manifest alone (as pulled).
 */
async function planPush(
  content: ContentStore,
  target: Descriptor,
  name: string,
  opts: PushOptions,
  emit: (e: PushEvent) => void,
): Promise<{ index?: Descriptor; indexBytes?: Uint8Array; manifests: LocalManifest[] }> {
  const bytes = await content.readBytes(target.digest, MAX_MANIFEST);
  if (detectManifestKind(target.mediaType, bytes) === "manifest") {
    if (opts.allPlatforms) throw errorOf("InvalidArgument", `push ${name}: --all-platforms needs an index, and this image is a single manifest`);
    return { manifests: [requireComplete(await readLocal(content, target), name)] };
  }
  const index = parseIndex(bytes);
  if (opts.platform) {
    return { manifests: [requireComplete(await readLocal(content, selectManifest(index, opts.platform, name)), name)] };
  }
  const all = await Promise.all(index.manifests.map((d) => readLocal(content, d)));
  const incomplete = all.filter((m) => m.missing.length > 0);
  if (incomplete.length === 0) return { index: target, indexBytes: bytes, manifests: all };
  if (opts.allPlatforms) {
    const what = incomplete.map((m) => `${platformOf(m.desc)} (${m.missing[0]}${m.missing.length > 1 ? ` and ${m.missing.length - 1} more` : ""})`);
    throw errorOf("FailedPrecondition", `push ${name} --all-platforms: not in the content store: ${what.join("; ")}; pull each platform first (tsctr pull --platform P)`);
  }
  const host = hostPlatform();
  const chosen = requireComplete(await readLocal(content, selectManifest(index, host, name)), name);
  emit({ type: "note", message: `pushing ${platformOf(chosen.desc)} only: ${incomplete.length} of ${all.length} platforms of ${name} are not stored locally (--all-platforms needs them all)` });
  return { manifests: [chosen] };
}

/** Reads a manifest and lists which of its pieces (manifest, config, layers) the store lacks. */
async function readLocal(content: ContentStore, desc: Descriptor): Promise<LocalManifest> {
  if (!(await content.info(desc.digest))) return { desc, missing: [`manifest ${desc.digest}`] };
  const bytes = await content.readBytes(desc.digest, MAX_MANIFEST);
  const manifest = parseManifest(bytes);
  const missing: string[] = [];
  if (!(await content.info(manifest.config.digest))) missing.push(`config ${manifest.config.digest}`);
  for (const l of manifest.layers) if (!(await content.info(l.digest))) missing.push(`layer ${l.digest}`);
  return { desc, bytes, manifest, missing };
}

function requireComplete(m: LocalManifest, name: string): LocalManifest {
  if (m.missing.length === 0) return m;
  throw errorOf(
    "FailedPrecondition",
    `push ${name}: ${m.missing[0]} (${platformOf(m.desc)}) is not in the content store (pulled with --discard-blobs?); pull the image again without --discard-blobs to push it`,
  );
}

function platformOf(d: Descriptor): string {
  return d.platform ? formatPlatform(normalizePlatform(d.platform)) : "the image";
}

/** Configs and layers of all manifests, each digest once. */
function uniqueBlobs(manifests: LocalManifest[]): Descriptor[] {
  const seen = new Map<string, Descriptor>();
  for (const m of manifests) for (const d of [m.manifest!.config, ...m.manifest!.layers]) if (!seen.has(d.digest)) seen.set(d.digest, d);
  return [...seen.values()];
}

/**
 * For each blob, the other repositories of the same registry it can be mounted from: those of the image
 * names in this namespace (pulled or pushed there) whose stored content includes it.
 */
async function mountSources(ctx: Context, content: ContentStore, ref: Reference): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const md = await ctx.metadata();
  for (const img of md.listImages(ctx.namespace)) {
    let other: Reference;
    try {
      other = parseReference(img.name);
    } catch {
      continue;
    }
    if (other.apiHost !== ref.apiHost || other.path === ref.path) continue;
    for (const digest of await storedBlobs(content, img.target)) {
      const list = out.get(digest) ?? [];
      if (!list.includes(other.path)) list.push(other.path);
      out.set(digest, list);
    }
  }
  return out;
}

/** Digests of the configs and layers reachable from `target` through what the store holds. */
async function storedBlobs(content: ContentStore, target: Descriptor): Promise<string[]> {
  const bytes = await content.readBytes(target.digest, MAX_MANIFEST).catch(() => undefined);
  if (!bytes) return [];
  const manifests = detectManifestKind(target.mediaType, bytes) === "index" ? parseIndex(bytes).manifests : [target];
  const out: string[] = [];
  for (const d of manifests) {
    const mb = d === target ? bytes : await content.readBytes(d.digest, MAX_MANIFEST).catch(() => undefined);
    if (!mb) continue;
    const m = parseManifest(mb);
    out.push(m.config.digest, ...m.layers.map((l) => l.digest));
  }
  return out;
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure rejects after the rest settle. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      await fn(item).catch((e) => (failure ??= e));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure;
}
