/**
 * `images import`: an OCI layout or Docker archive (optionally gzip-compressed) from a file or stdin becomes
 * images in the store, in this order:
 * 1. every entry streams into the content store (blobs are verified against their names as they stream) or
 *    the staging area, since archives put index.json / manifest.json anywhere, often last;
 * 2. the index or manifest.json names images; each chosen platform's manifest, config and layers must be
 *    there (a multi-platform archive may lack some platforms: they are reported, or fail --all-platforms);
 * 3. the chosen platform's layers are unpacked into snapshots (so `run` works at once);
 * 4. the names are written last, in one metadata transaction.
 * Any failure removes the blobs and snapshots this import added: the store is as before. The import runs
 * under a lease (coordination.ts), so a concurrent prune or GC leaves its blobs and snapshots alone.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import process from "node:process";
import { Readable } from "node:stream";
import type { Context } from "./context.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { sniffCompression } from "../archive/decompress.ts";
import type { ContentStore } from "../content/mod.ts";
import type { Digest } from "../digest/mod.ts";
import { errorOf, isKind } from "../errdefs/mod.ts";
import { chainIds } from "../images/chainid.ts";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "../images/parse.ts";
import { formatPlatform, hostPlatform, isImageEntry, normalizePlatform, selectManifest } from "../images/platform.ts";
import { MediaTypes, type Descriptor, type Manifest, type Platform } from "../images/types.ts";
import { isRoot } from "../platform/runtime.ts";
import { parseReference } from "../registry/reference.ts";
import type { Snapshotter } from "../snapshots/types.ts";
import { DOCKER_MANIFEST_FILE, INDEX_FILE, imagesOfIndex, parseDockerManifestJson, type ArchivedImage } from "../transfer/layout.ts";
import { readImageArchive } from "../transfer/archive_reader.ts";
import { ImportStage } from "../transfer/stage.ts";
import { cleanArchivePath } from "../transfer/paths.ts";
import { unpackLayers } from "../unpack/unpacker.ts";
import { diskFullError } from "../platform/disk_full.ts";
import { withLease, type Lease } from "./coordination.ts";

export interface ImportOptions {
  /** The platform to check and unpack (default: this host's). */
  platform?: Platform;
  /** Every platform of a multi-platform image must be in the archive. */
  allPlatforms?: boolean;
  /** Names images whose archive name is only a tag (`N:tag`), or that have no name (`N`). */
  baseName?: string;
  /** Also name every image by digest (`<base-name or "import">@sha256:…`). */
  digests?: boolean;
}

export interface ImportedImage {
  names: string[];
  target: Descriptor;
  /** The platform unpacked, if any matched. */
  unpacked?: string;
  /** Platforms of a multi-platform image that the archive does not hold. */
  missing: string[];
}

const MAX_MANIFEST = 4 << 20;

/** Imports the archive at `file` ("-": stdin); returns the images named. All or nothing. */
export async function importImages(ctx: Context, file: string, opts: ImportOptions = {}): Promise<ImportedImage[]> {
  if (!isRoot()) throw errorOf("PermissionDenied", "import: tsctr must run as root to unpack images (file owners, device nodes)");
  const what = `import ${file === "-" ? "stdin" : file}`;
  if (file !== "-") {
    const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
      throw errorOf(e.code === "ENOENT" ? "NotFound" : "InvalidArgument", `${what}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
    });
    if (st.isDirectory()) throw errorOf("InvalidArgument", `${what}: is a directory, not an archive`);
  }
  const input = file === "-" ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    return await withLease(ctx, (lease) => importWith(ctx, input, what, lease, opts));
  } catch (e) {
    // What the archive would take: its blobs, and about as much again unpacked.
    const size = file === "-" ? undefined : await stat(file).then((st) => st.size * 2, () => undefined);
    throw await diskFullError(e, what, ctx.root, size);
  } finally {
    input.destroy();
  }
}

/** The import under `lease`: every blob it reads or writes and every snapshot it makes is leased first. */
async function importWith(ctx: Context, input: Readable, what: string, lease: Lease, opts: ImportOptions): Promise<ImportedImage[]> {
  const content = await ctx.content();
  const snapshotter = await openSnapshotter(ctx);
  const tmp = join(ctx.root, "tmp", `import-${process.pid}-${randomBytes(6).toString("hex")}`);
  const stage = await ImportStage.create(content, tmp, what, (digest) => lease.add("content", digest));
  const madeSnapshots: Digest[] = [];
  try {
    await readImageArchive(Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>, what, stage);
    const archived = await archivedImages(stage, content, what, opts);
    const want = opts.platform ?? hostPlatform();
    const results: ImportedImage[] = [];
    const chains: Digest[][] = [];
    for (const img of archived) {
      const plan = await planImage(stage, content, img.target, want, opts.allPlatforms ?? false, `${what}: image ${img.names.join(", ")}`);
      let unpacked: string | undefined;
      if (plan.manifest) {
        const done = await unpackManifest(content, snapshotter, plan.manifest, img.names[0] ?? img.target.digest, madeSnapshots, lease);
        chains.push(done.chain);
        unpacked = done.platform;
      }
      results.push({ names: img.names, target: img.target, unpacked, missing: plan.missing });
    }
    const md = await ctx.metadata();
    md.transaction(() => {
      for (const chain of chains) chain.forEach((c, i) => md.putSnapshot({ namespace: ctx.namespace, key: c, parent: i > 0 ? chain[i - 1] : undefined, kind: "committed" }));
      for (const r of results) for (const n of r.names) md.putImage(ctx.namespace, n, { mediaType: r.target.mediaType, digest: r.target.digest, size: r.target.size });
    });
    return results;
  } catch (e) {
    await removeSnapshots(snapshotter, madeSnapshots);
    await stage.rollback();
    throw e;
  } finally {
    await stage.close();
  }
}

/**
 * Unpacks the manifest's layers into committed snapshots (reusing those that exist) and returns their chain
 * IDs and the image's platform; `made` collects the snapshots that did not exist before, for a rollback.
 */
async function unpackManifest(content: ContentStore, snapshotter: Snapshotter, manifest: Manifest, imageRef: string, made: Digest[], lease: Lease): Promise<{ chain: Digest[]; platform: string }> {
  const config = parseImageConfig(await content.readBytes(manifest.config.digest, MAX_MANIFEST), { layers: manifest.layers.length });
  const chain = await chainIds(config.rootfs.diff_ids);
  for (const c of chain) {
    await lease.add("snapshot", c);
    if (!(await snapshotter.stat(c)) && !made.includes(c)) made.push(c);
  }
  await unpackLayers({ content, snapshotter, layers: manifest.layers, diffIds: config.rootfs.diff_ids, imageRef });
  return { chain, platform: formatPlatform(normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant })) };
}

/** Removes the snapshots this import committed, topmost first (children before parents). */
async function removeSnapshots(snapshotter: Snapshotter, made: Digest[]): Promise<void> {
  for (const c of [...made].reverse()) await snapshotter.remove(c).catch(() => {});
}

interface NamedImage {
  names: string[];
  target: Descriptor;
}

/** The images the archive names: from index.json when there is one, else from Docker's manifest.json. */
async function archivedImages(stage: ImportStage, content: ContentStore, what: string, opts: ImportOptions): Promise<NamedImage[]> {
  const indexBytes = stage.metadata(INDEX_FILE);
  let images: ArchivedImage[];
  if (indexBytes) {
    images = imagesOfIndex(parseIndex(indexBytes), opts.baseName);
  } else {
    const manifestJson = stage.metadata(DOCKER_MANIFEST_FILE);
    if (!manifestJson) throw errorOf("InvalidArgument", `${what}: not an image archive (neither index.json nor manifest.json)`);
    images = await dockerImages(stage, content, what, manifestJson);
  }
  if (images.length === 0) throw errorOf("InvalidArgument", `${what}: the archive names no image`);
  return images.map((img) => {
    const names: string[] = [];
    const add = (n: string) => {
      const full = parseReference(n).toString();
      if (!names.includes(full)) names.push(full);
    };
    if (img.name !== undefined) add(img.name);
    else if (opts.baseName !== undefined) add(opts.baseName);
    if (opts.digests) add(`${opts.baseName ?? "import"}@${img.target.digest}`);
    if (names.length === 0) {
      throw errorOf("InvalidArgument", `${what}: image ${img.target.digest} has no name in the archive: give one with --base-name NAME, or use --digests`);
    }
    return { names, target: img.target };
  });
}

/**
 * Docker archive images: manifest.json's Config and Layers (paths in the archive: `blobs/sha256/…`,
 * `<id>/layer.tar`, `<hex>.tar`; layers gzip-compressed or plain) become a Docker schema 2 manifest.
 */
async function dockerImages(stage: ImportStage, content: ContentStore, what: string, manifestJson: Uint8Array): Promise<ArchivedImage[]> {
  const out: ArchivedImage[] = [];
  for (const [i, entry] of parseDockerManifestJson(manifestJson, what).entries()) {
    const at = `manifest.json[${i}]`;
    const config = await stage.store(cleanArchivePath(entry.Config, `${what}: ${at}.Config`), `${at}.Config`);
    const layers: Descriptor[] = [];
    for (const [j, l] of entry.Layers.entries()) {
      const blob = await stage.store(cleanArchivePath(l, `${what}: ${at}.Layers[${j}]`), `${at}.Layers[${j}]`);
      layers.push({ mediaType: layerMediaType(sniffCompression(blob.head)), digest: blob.digest, size: blob.size });
    }
    const parsed = parseImageConfig(await content.readBytes(config.digest, MAX_MANIFEST), { layers: layers.length });
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: { mediaType: MediaTypes.dockerConfig, digest: config.digest, size: config.size },
      layers,
    };
    const stored = await stage.storeBytes(new TextEncoder().encode(JSON.stringify(manifest)));
    const target: Descriptor = { mediaType: MediaTypes.dockerManifest, ...stored, platform: { os: parsed.os, architecture: parsed.architecture } };
    if (entry.RepoTags.length === 0) out.push({ target });
    for (const name of entry.RepoTags) out.push({ name, target });
  }
  return mergeByTarget(out);
}

function layerMediaType(c: "gzip" | "zstd" | "none"): string {
  if (c === "gzip") return MediaTypes.dockerLayerGzip;
  if (c === "zstd") return MediaTypes.ociLayerZstd;
  return "application/vnd.docker.image.rootfs.diff.tar";
}

/** One ArchivedImage per name; unnamed duplicates of a named target are dropped. */
function mergeByTarget(images: ArchivedImage[]): ArchivedImage[] {
  const named = new Set(images.filter((i) => i.name !== undefined).map((i) => i.target.digest));
  return images.filter((i) => i.name !== undefined || !named.has(i.target.digest));
}

interface ImagePlan {
  /** The manifest to unpack (the wanted platform's), if the archive holds one. */
  manifest?: Manifest;
  /** Platforms of the index that the archive lacks. */
  missing: string[];
}

/** Checks that the image's content is in the store and picks the manifest to unpack. */
async function planImage(stage: ImportStage, content: ContentStore, target: Descriptor, want: Platform, all: boolean, what: string): Promise<ImagePlan> {
  await stage.require(target.digest, target.size, "named by the index");
  const bytes = await content.readBytes(target.digest, MAX_MANIFEST);
  if (detectManifestKind(target.mediaType, bytes) === "manifest") {
    return { manifest: await completeManifest(stage, content, target), missing: [] };
  }
  const present: Descriptor[] = [];
  const missing: string[] = [];
  for (const d of parseIndex(bytes).manifests) {
    if (!isImageEntry(d)) continue;
    // A platform whose manifest is absent was left out (ctr export --platform, docker save of a partly
    // pulled image); a manifest whose config or layers are absent is a damaged archive.
    if (await content.info(d.digest)) {
      await completeManifest(stage, content, d);
      present.push(d);
    } else {
      missing.push(formatPlatform(normalizePlatform(d.platform)));
    }
  }
  if (all && missing.length > 0) {
    throw errorOf("FailedPrecondition", `${what}: the archive lacks platforms ${missing.join(", ")} (import without --all-platforms to take the platforms it holds)`);
  }
  let chosen: Descriptor | undefined;
  try {
    chosen = selectManifest({ schemaVersion: 2, manifests: present }, want, "the archive");
  } catch (e) {
    if (!isKind(e, "NotFound")) throw e;
    if (!all) {
      const held = present.map((d) => formatPlatform(normalizePlatform(d.platform!))).join(", ") || "none";
      throw errorOf("NotFound", `${what}: the archive holds no ${formatPlatform(normalizePlatform(want))} image (it holds ${held}; choose one with --platform)`);
    }
  }
  return { manifest: chosen ? parseManifest(await content.readBytes(chosen.digest, MAX_MANIFEST)) : undefined, missing };
}

/** The manifest `d` names, after checking its config and layers are in the store with the right sizes. */
async function completeManifest(stage: ImportStage, content: ContentStore, d: Descriptor): Promise<Manifest> {
  const id = d.platform ? formatPlatform(normalizePlatform(d.platform)) : d.digest;
  await stage.require(d.digest, d.size, `manifest of ${id}`);
  const manifest = parseManifest(await content.readBytes(d.digest, MAX_MANIFEST));
  await stage.require(manifest.config.digest, manifest.config.size, `config of ${id}`);
  for (const [i, l] of manifest.layers.entries()) await stage.require(l.digest, l.size, `layer ${i} of ${id}`);
  return manifest;
}
