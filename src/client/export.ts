/**
 * `images export`: images from the store become one archive, streamed blob by blob from the content store:
 * - "oci" (default): an OCI image layout (oci-layout, blobs/sha256/…, index.json with the names in
 *   `io.containerd.image.name` and `org.opencontainers.image.ref.name`) that also carries Docker's
 *   manifest.json, so `ctr images import`, `skopeo … oci-archive:` and `docker load` all read it;
 * - "docker": a Docker archive (blobs, manifest.json, repositories).
 * One platform per image by default (the index entry for it is exported as the image), or every platform
 * with `allPlatforms`. Everything is checked before the first byte is written; a file is written beside
 * its destination and renamed into place only when complete.
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { pipeline } from "node:stream/promises";
import type { Writable } from "node:stream";
import type { Context } from "./context.ts";
import { getImage } from "./images.ts";
import type { ContentStore } from "../content/mod.ts";
import { errorOf } from "../errdefs/mod.ts";
import { detectManifestKind, parseIndex, parseManifest } from "../images/parse.ts";
import { formatPlatform, hostPlatform, isImageEntry, normalizePlatform, selectManifest } from "../images/platform.ts";
import type { Descriptor, Platform } from "../images/types.ts";
import { parseReference } from "../registry/reference.ts";
import { ArchiveWriter } from "../transfer/archive_writer.ts";
import {
  DOCKER_MANIFEST_FILE,
  INDEX_FILE,
  OCI_LAYOUT_BYTES,
  OCI_LAYOUT_FILE,
  REPOSITORIES_FILE,
  buildDockerManifestJson,
  buildIndexJson,
  buildRepositories,
  type DockerArchiveEntry,
} from "../transfer/layout.ts";
import { blobPath } from "../transfer/paths.ts";

export type ArchiveFormat = "oci" | "docker";

export interface ExportOptions {
  /** The platform to export of multi-platform images (default: this host's). */
  platform?: Platform;
  /** Export every platform of multi-platform images (all must be in the store). */
  allPlatforms?: boolean;
  format?: ArchiveFormat;
}

/** What one image contributes to the archive. */
interface ImagePlan {
  name: string;
  /** The descriptor index.json names: the image's index (all platforms) or one platform's manifest. */
  top: Descriptor;
  /** Every blob, in writing order: index, manifests, configs, layers. */
  blobs: Descriptor[];
  /** One Docker manifest.json entry per platform manifest. */
  docker: DockerArchiveEntry[];
}

const MAX_MANIFEST = 4 << 20;

/** Writes `refs` as one archive to `file` ("-": stdout); returns the names exported. */
export async function exportImages(ctx: Context, file: string, refs: string[], opts: ExportOptions = {}): Promise<string[]> {
  const content = await ctx.content();
  const plans: ImagePlan[] = [];
  for (const ref of refs) {
    const record = await getImage(ctx, ref);
    plans.push(await planImage(content, record.name, { ...record.target }, opts));
  }
  if (file === "-") {
    await writeArchive(content, plans, opts.format ?? "oci", process.stdout);
    return plans.map((p) => p.name);
  }
  const tmp = `${file}.tsctr-${randomBytes(6).toString("hex")}`;
  try {
    await writeArchive(content, plans, opts.format ?? "oci", createWriteStream(tmp, { flags: "wx" }));
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return plans.map((p) => p.name);
}

async function planImage(content: ContentStore, name: string, target: Descriptor, opts: ExportOptions): Promise<ImagePlan> {
  const what = `export ${name}`;
  const bytes = await readBlob(content, target, what, "image");
  const plan: ImagePlan = { name, top: target, blobs: [], docker: [] };
  let manifests: Descriptor[];
  if (detectManifestKind(target.mediaType, bytes) === "index") {
    const index = parseIndex(bytes);
    if (opts.allPlatforms) {
      plan.blobs.push(target);
      manifests = index.manifests.filter(isImageEntry);
      for (const m of manifests) {
        if (!(await content.info(m.digest))) {
          throw errorOf("FailedPrecondition", `${what}: platform ${formatPlatform(normalizePlatform(m.platform!))} is not in the store (a pull fetches one platform; pull it with --platform, or export without --all-platforms)`);
        }
      }
    } else {
      const chosen = selectManifest(index, opts.platform ?? hostPlatform(), name);
      plan.top = { mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.size };
      manifests = [chosen];
    }
  } else {
    manifests = [target];
  }
  const tagged = hasTag(name);
  for (const [i, m] of manifests.entries()) {
    const manifest = parseManifest(await readBlob(content, m, what, "manifest"));
    plan.blobs.push(m, manifest.config);
    await readBlob(content, manifest.config, what, "config");
    for (const l of manifest.layers) {
      const info = await content.info(l.digest);
      if (!info) throw errorOf("FailedPrecondition", `${what}: layer ${l.digest} is not in the content store (pulled with --discard-blobs?): pull the image again to export it`);
      if (info.size !== l.size) throw errorOf("DataLoss", `${what}: layer ${l.digest} is ${info.size} bytes in the store, the manifest says ${l.size}`);
      plan.blobs.push(l);
    }
    // Docker loads every entry; only the first carries the tag, so the name ends on one platform.
    plan.docker.push({ Config: blobPath(manifest.config.digest), RepoTags: i === 0 && tagged ? [name] : [], Layers: manifest.layers.map((l) => blobPath(l.digest)) });
  }
  return plan;
}

async function readBlob(content: ContentStore, d: Descriptor, what: string, kind: string): Promise<Uint8Array> {
  if (!(await content.info(d.digest))) throw errorOf("NotFound", `${what}: the ${kind} ${d.digest} is not in the content store: pull the image again`);
  return content.readBytes(d.digest, MAX_MANIFEST);
}

function hasTag(name: string): boolean {
  try {
    const r = parseReference(name);
    return r.tag !== undefined && r.digest === undefined;
  } catch {
    return false;
  }
}

/** Streams the archive for `plans` into `out`; each blob once, metadata files last. */
async function writeArchive(content: ContentStore, plans: ImagePlan[], format: ArchiveFormat, out: Writable): Promise<void> {
  const w = new ArchiveWriter();
  const piped = pipeline(w.output, out, { end: out !== process.stdout });
  const written = async () => {
    if (format === "oci") await w.addBytes(OCI_LAYOUT_FILE, OCI_LAYOUT_BYTES);
    await w.addDir("blobs");
    await w.addDir("blobs/sha256");
    const seen = new Set<string>();
    for (const p of plans) {
      for (const b of p.blobs) {
        if (seen.has(b.digest)) continue;
        seen.add(b.digest);
        await w.addStream(blobPath(b.digest), b.size, await content.readStream(b.digest));
      }
    }
    if (format === "oci") await w.addBytes(INDEX_FILE, buildIndexJson(plans.map((p) => ({ name: p.name, target: p.top }))));
    await w.addBytes(DOCKER_MANIFEST_FILE, buildDockerManifestJson(plans.flatMap((p) => p.docker)));
    if (format === "docker") await w.addBytes(REPOSITORIES_FILE, buildRepositories(plans.flatMap((p) => repositoryTag(p))));
    w.finish();
  };
  try {
    await Promise.all([written(), piped]);
  } catch (e) {
    w.abort(e instanceof Error ? e : new Error(String(e)));
    await piped.catch(() => {});
    throw e;
  }
}

function repositoryTag(p: ImagePlan): Array<{ repo: string; tag: string; id: string }> {
  const first = p.docker[0];
  if (!first || first.RepoTags.length === 0) return [];
  const r = parseReference(p.name);
  return [{ repo: r.name, tag: r.tag ?? "latest", id: first.Config.slice("blobs/sha256/".length) }];
}
