/** Listing and removing images by name in the context's namespace. */
import type { Context } from "./context.ts";
import { imagePlatforms, imageSize } from "../images/image.ts";
import { formatPlatform } from "../images/platform.ts";
import { parseReference } from "../registry/reference.ts";
import { errorOf, isKind } from "../errdefs/mod.ts";
import type { ImageRecord } from "../metadata/mod.ts";

export interface ImageSummary {
  name: string;
  mediaType: string;
  digest: string;
  size: number;
  platforms: string[];
}

/** Every image in the namespace, with its size and platforms as far as the content store holds them. */
export async function listImages(ctx: Context): Promise<ImageSummary[]> {
  const md = await ctx.metadata();
  const content = await ctx.content();
  const out: ImageSummary[] = [];
  for (const img of md.listImages(ctx.namespace)) {
    const target = { ...img.target };
    const platforms = await imagePlatforms(content, target).catch(() => []);
    const size = await imageSize(content, target).catch(() => 0);
    out.push({ name: img.name, mediaType: target.mediaType, digest: target.digest, size, platforms: platforms.map(formatPlatform) });
  }
  return out;
}

/** Finds an image by the name the user typed, normalised like pull does (busybox → docker.io/library/busybox:latest). */
export async function getImage(ctx: Context, name: string): Promise<ImageRecord> {
  const md = await ctx.metadata();
  const exact = md.getImage(ctx.namespace, name);
  if (exact) return exact;
  let normalised: string | undefined;
  try {
    normalised = parseReference(name).toString();
  } catch (e) {
    if (!isKind(e, "InvalidArgument")) throw e;
  }
  const found = normalised ? md.getImage(ctx.namespace, normalised) : undefined;
  if (!found) throw errorOf("NotFound", `image "${name}": not found in namespace ${ctx.namespace} (pull it first: tsctr pull ${name})`);
  return found;
}

/**
 * Removes image names, then collects what no image, container or lease uses any more (what only these
 * images held). The names go first, in their own transactions: a crash after that leaves only
 * unreferenced garbage, which the next GC or `check --repair` removes.
 */
export async function removeImages(ctx: Context, names: string[]): Promise<string[]> {
  const md = await ctx.metadata();
  const removed: string[] = [];
  for (const n of names) {
    const img = await getImage(ctx, n);
    md.transaction(() => md.deleteImage(ctx.namespace, img.name));
    removed.push(img.name);
  }
  const { collectGarbage } = await import("./gc.ts");
  await collectGarbage(ctx);
  return removed;
}

/**
 * Gives the image `src` the new name `dst` (normalised like pull: busybox → docker.io/library/busybox:latest),
 * pointing at the same target. An existing `dst` is replaced only with `force`, else AlreadyExists.
 */
export async function tagImage(ctx: Context, src: string, dst: string, opts: { force?: boolean } = {}): Promise<string> {
  const img = await getImage(ctx, src);
  const name = parseReference(dst).toString();
  const md = await ctx.metadata();
  md.transaction(() => {
    if (!opts.force && md.getImage(ctx.namespace, name)) {
      throw errorOf("AlreadyExists", `image "${name}": already exists in namespace ${ctx.namespace} (use --force to replace it)`);
    }
    md.putImage(ctx.namespace, name, img.target);
  });
  return name;
}
