/**
 * The metadata files of image archives:
 * - OCI image layout (image-spec image-layout.md): `oci-layout`, `index.json` whose entries name images with
 *   `org.opencontainers.image.ref.name` (containerd and Docker add `io.containerd.image.name`), `blobs/`.
 * - Docker's archive (`docker save`, skopeo `docker-archive:`): `manifest.json`, a list of
 *   `{Config, RepoTags, Layers}` with paths inside the archive, and the legacy `repositories` file.
 * An archive may carry both (ctr export, Docker 25+, tsctr export), so Docker and containerd both load it.
 */
import { errorOf } from "../errdefs/mod.ts";
import { MediaTypes, type Descriptor, type Index } from "../images/types.ts";
import { printable } from "./paths.ts";

export const OCI_LAYOUT_FILE = "oci-layout";
export const INDEX_FILE = "index.json";
export const DOCKER_MANIFEST_FILE = "manifest.json";
export const REPOSITORIES_FILE = "repositories";

/** The annotation carrying a full image name (containerd, Docker). */
export const IMAGE_NAME_ANNOTATION = "io.containerd.image.name";
/** The OCI annotation naming an image in a layout (a tag, or a full reference). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** The content of `oci-layout`. */
export const OCI_LAYOUT_BYTES = new TextEncoder().encode(JSON.stringify({ imageLayoutVersion: "1.0.0" }));

/** One image of Docker's manifest.json. */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** An image named in an archive: the name to give it (if any) and its top descriptor. */
export interface ArchivedImage {
  name?: string;
  target: Descriptor;
}

/** The `org.opencontainers.image.ref.name` value for `name`: its tag (as containerd and Docker write). */
export function refNameOf(name: string): string {
  const at = name.indexOf("@");
  const base = at < 0 ? name : name.slice(0, at);
  const colon = base.lastIndexOf(":");
  return colon > base.lastIndexOf("/") ? base.slice(colon + 1) : name;
}

/** index.json for `images`, each entry annotated with its full name and tag. */
export function buildIndexJson(images: Array<{ name: string; target: Descriptor }>): Uint8Array {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: images.map(({ name, target }) => ({
      mediaType: target.mediaType,
      digest: target.digest,
      size: target.size,
      annotations: { [IMAGE_NAME_ANNOTATION]: name, [REF_NAME_ANNOTATION]: refNameOf(name) },
    })),
  };
  return new TextEncoder().encode(JSON.stringify(index));
}

/**
 * The images index.json names: the full name from `io.containerd.image.name`, else the ref name (a tag is
 * joined to `baseName`, as `ctr import --base-name` does; a tag without a base name leaves the image
 * unnamed).
 */
export function imagesOfIndex(index: Index, baseName: string | undefined): ArchivedImage[] {
  return index.manifests.map((d) => {
    const target: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    if (d.platform) target.platform = d.platform;
    const full = d.annotations?.[IMAGE_NAME_ANNOTATION];
    const ref = d.annotations?.[REF_NAME_ANNOTATION];
    let name = full;
    if (baseName !== undefined && ref !== undefined && !ref.includes("/") && !ref.includes(":")) name = `${baseName}:${ref}`;
    else if (name === undefined && ref !== undefined && (ref.includes("/") || ref.includes(":"))) name = ref;
    return name === undefined ? { target } : { name, target };
  });
}

/** Parses Docker's manifest.json; InvalidArgument for anything but a list of {Config, RepoTags?, Layers}. */
export function parseDockerManifestJson(bytes: Uint8Array, what: string): DockerArchiveEntry[] {
  const bad = (detail: string) => errorOf("InvalidArgument", `${what}: invalid manifest.json: ${detail}`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(`not valid JSON (${printable((e as Error).message)})`);
  }
  if (!Array.isArray(v)) throw bad("not a JSON array");
  return v.map((raw, i) => {
    if (typeof raw !== "object" || raw === null) throw bad(`entry ${i} is not an object`);
    const o = raw as Record<string, unknown>;
    if (typeof o.Config !== "string") throw bad(`entry ${i}: Config must be a string`);
    const strings = (x: unknown, key: string): string[] => {
      if (x === undefined || x === null) return [];
      if (!Array.isArray(x) || x.some((s) => typeof s !== "string")) throw bad(`entry ${i}: ${key} must be an array of strings`);
      return x as string[];
    };
    return { Config: o.Config, RepoTags: strings(o.RepoTags, "RepoTags"), Layers: strings(o.Layers, "Layers") };
  });
}

/** manifest.json bytes for `entries`. */
export function buildDockerManifestJson(entries: DockerArchiveEntry[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(entries));
}

/** The legacy `repositories` file: repository → tag → the image's id (its config hex here). */
export function buildRepositories(tags: Array<{ repo: string; tag: string; id: string }>): Uint8Array {
  const out: Record<string, Record<string, string>> = {};
  for (const { repo, tag, id } of tags) (out[repo] ??= {})[tag] = id;
  return new TextEncoder().encode(JSON.stringify(out));
}
