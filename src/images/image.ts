/** Reading an image (index → manifest → config) out of the content store, for one platform. */
import type { ContentStore } from "../content/mod.ts";
import { errorOf } from "../errdefs/mod.ts";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "./parse.ts";
import { selectManifest } from "./platform.ts";
import type { Descriptor, ImageConfig, Manifest, Platform } from "./types.ts";

const MAX_MANIFEST = 4 << 20;

export interface ResolvedImage {
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/**
 * Follows `target` (a manifest or an index) to the manifest for `platform` and reads its config, all from
 * the content store. Throws NotFound when a piece is missing and names the missing platform.
 */
export async function readImage(content: ContentStore, target: Descriptor, platform: Platform, name: string): Promise<ResolvedImage> {
  let desc = target;
  let bytes = await content.readBytes(desc.digest, MAX_MANIFEST);
  if (detectManifestKind(desc.mediaType, bytes) === "index") {
    desc = selectManifest(parseIndex(bytes), platform, name);
    bytes = await content.readBytes(desc.digest, MAX_MANIFEST).catch((e) => {
      throw errorOf("NotFound", `image ${name}: the manifest for ${desc.digest} is not in the content store; pull it again`, e);
    });
  }
  const manifest = parseManifest(bytes);
  const config = parseImageConfig(await content.readBytes(manifest.config.digest, MAX_MANIFEST));
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw errorOf("DataLoss", `image ${name}: config lists ${config.rootfs.diff_ids.length} diff IDs for ${manifest.layers.length} layers`);
  }
  return { manifestDescriptor: desc, manifest, config };
}

/** The platforms an image target offers (the index entries, or the single manifest's config platform). */
export async function imagePlatforms(content: ContentStore, target: Descriptor): Promise<Platform[]> {
  const bytes = await content.readBytes(target.digest, MAX_MANIFEST);
  if (detectManifestKind(target.mediaType, bytes) === "index") {
    return parseIndex(bytes).manifests.flatMap((m) => (m.platform && m.platform.os !== "unknown" ? [m.platform] : []));
  }
  const manifest = parseManifest(bytes);
  const config = parseImageConfig(await content.readBytes(manifest.config.digest, MAX_MANIFEST));
  return [{ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }];
}

/** Bytes of the image's content present in the store: index, manifests, configs and layers. */
export async function imageSize(content: ContentStore, target: Descriptor): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const add = async (d: Descriptor) => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    if (await content.info(d.digest)) total += d.size;
  };
  await add(target);
  const bytes = await content.readBytes(target.digest, MAX_MANIFEST);
  const manifests = detectManifestKind(target.mediaType, bytes) === "index" ? parseIndex(bytes).manifests : [target];
  for (const m of manifests) {
    await add(m);
    const mb = await content.readBytes(m.digest, MAX_MANIFEST).catch(() => undefined);
    if (!mb) continue;
    const manifest = parseManifest(mb);
    await add(manifest.config);
    for (const l of manifest.layers) await add(l);
  }
  return total;
}
