/**
 * Parsing manifests, indexes and image configs from bytes, with validation. Every function either returns
 * a well-formed object or throws one clear error:
 * - malformed JSON or structure → InvalidArgument ("invalid manifest: layers[1].size must be …")
 * - a media type tsctr does not know → NotImplemented naming the type
 * - an image config that disagrees with its manifest → DataLoss
 */
import { errorOf } from "../errdefs/mod.ts";
import { isDigest } from "../digest/mod.ts";
import type { Digest } from "../digest/mod.ts";
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from "./types.ts";
import { MediaTypes } from "./types.ts";

export type ManifestKind = "manifest" | "index";

const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
const CONFIG_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociConfig, MediaTypes.dockerConfig]);
const LAYER_TYPES: ReadonlySet<string> = new Set([
  MediaTypes.ociLayer,
  MediaTypes.ociLayerGzip,
  MediaTypes.ociLayerZstd,
  MediaTypes.ociLayerNondistGzip,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  MediaTypes.dockerLayerGzip,
  MediaTypes.dockerForeignLayerGzip,
  "application/vnd.docker.image.rootfs.diff.tar",
]);
/** Content-Type values registries send when they do not know better; the body decides then. */
const GENERIC_TYPES: ReadonlySet<string> = new Set(["", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"]);

type Json = Record<string, unknown>;

/** True for the OCI and Docker manifest media types. */
export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

/** True for the OCI index and Docker manifest list media types. */
export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/** True for the layer media types tsctr understands (tar, gzip, zstd; OCI and Docker). */
export function isLayerType(mediaType: string): boolean {
  return LAYER_TYPES.has(mediaType);
}

function fail(what: string, detail: string): never {
  throw errorOf("InvalidArgument", `invalid ${what}: ${detail}`);
}

function parseObject(bytes: Uint8Array, what: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    fail(what, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(what, "not a JSON object");
  return v as Json;
}

function optString(o: Json, key: string, what: string, at: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(what, `${at}${key} must be a string`);
  return v;
}

function reqString(o: Json, key: string, what: string, at: string): string {
  const v = optString(o, key, what, at);
  if (v === undefined) fail(what, `${at}${key} is missing`);
  return v;
}

function optStringArray(o: Json, key: string, what: string, at: string, nullable = false): string[] | null | undefined {
  const v = o[key];
  if (v === undefined || (nullable && v === null)) return v as null | undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(what, `${at}${key} must be an array of strings`);
  return v as string[];
}

function optStringMap(o: Json, key: string, what: string, at: string): Record<string, string> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string")) {
    fail(what, `${at}${key} must be a map of strings`);
  }
  return v as Record<string, string>;
}

function reqDigest(o: Json, key: string, what: string, at: string): Digest {
  const v = reqString(o, key, what, at);
  if (!isDigest(v)) fail(what, `${at}${key} "${v.slice(0, 80)}" is not a sha256 digest`);
  return v;
}

function checkSchemaVersion(o: Json, what: string): void {
  if (o.schemaVersion === 1) throw errorOf("NotImplemented", `unsupported ${what}: Docker schema 1 manifests are not supported`);
  if (o.schemaVersion !== 2) fail(what, `schemaVersion must be 2, got ${JSON.stringify(o.schemaVersion)}`);
}

function parsePlatformField(v: unknown, what: string, at: string): Platform | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(what, `${at}platform must be an object`);
  const o = v as Json;
  const p: Platform = { os: reqString(o, "os", what, `${at}platform.`), architecture: reqString(o, "architecture", what, `${at}platform.`) };
  const variant = optString(o, "variant", what, `${at}platform.`);
  if (variant !== undefined) p.variant = variant;
  const osVersion = optString(o, "os.version", what, `${at}platform.`);
  if (osVersion !== undefined) p["os.version"] = osVersion;
  const features = optStringArray(o, "os.features", what, `${at}platform.`);
  if (features) p["os.features"] = features;
  return p;
}

/** Validates one descriptor object; `at` is its path in the document ("layers[2].") for error messages. */
function parseDescriptor(v: unknown, what: string, at: string): Descriptor {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(what, `${at.slice(0, -1)} must be an object`);
  const o = v as Json;
  const size = o.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) fail(what, `${at}size must be an integer ≥ 0`);
  const d: Descriptor = { mediaType: reqString(o, "mediaType", what, at), digest: reqDigest(o, "digest", what, at), size };
  const platform = parsePlatformField(o.platform, what, at);
  if (platform) d.platform = platform;
  const annotations = optStringMap(o, "annotations", what, at);
  if (annotations) d.annotations = annotations;
  const urls = optStringArray(o, "urls", what, at);
  if (urls) d.urls = urls;
  return d;
}

/**
 * Tells whether a document is a manifest or an index. `mediaType` is the Content-Type the registry sent
 * (or a descriptor's mediaType); when it is missing or generic the document's own mediaType field decides,
 * and when that is missing too, its shape does ("manifests" → index, "config" + "layers" → manifest).
 * Throws NotImplemented for unknown media types and schema 1, InvalidArgument when the header and the body
 * disagree or the bytes are not a JSON object.
 */
export function detectManifestKind(mediaType: string | undefined, bytes: Uint8Array): ManifestKind {
  const header = (mediaType ?? "").split(";")[0]!.trim().toLowerCase();
  const o = parseObject(bytes, "manifest");
  const inner = typeof o.mediaType === "string" ? o.mediaType : undefined;
  const kindOf = (t: string): ManifestKind | undefined => (MANIFEST_TYPES.has(t) ? "manifest" : INDEX_TYPES.has(t) ? "index" : undefined);
  if (!GENERIC_TYPES.has(header)) {
    const k = kindOf(header);
    if (!k) {
      if (header.startsWith("application/vnd.docker.distribution.manifest.v1")) {
        throw errorOf("NotImplemented", `unsupported manifest: Docker schema 1 manifests are not supported`);
      }
      throw errorOf("NotImplemented", `unsupported manifest media type "${header}"`);
    }
    if (inner !== undefined && kindOf(inner) !== k) fail("manifest", `served as ${header} but its mediaType field says ${inner}`);
    return k;
  }
  if (inner !== undefined) {
    const k = kindOf(inner);
    if (!k) throw errorOf("NotImplemented", `unsupported manifest media type "${inner}"`);
    return k;
  }
  if (o.schemaVersion === 1) throw errorOf("NotImplemented", `unsupported manifest: Docker schema 1 manifests are not supported`);
  if (Array.isArray(o.manifests)) return "index";
  if (o.config !== undefined && Array.isArray(o.layers)) return "manifest";
  fail("manifest", "neither a manifest (config, layers) nor an index (manifests)");
}

/**
 * Parses and validates an image manifest (OCI or Docker schema 2): schemaVersion 2, a known mediaType
 * if present, a config descriptor of a known config type, and layers of known layer types.
 */
export function parseManifest(bytes: Uint8Array): Manifest {
  const what = "manifest";
  const o = parseObject(bytes, what);
  checkSchemaVersion(o, what);
  const mediaType = optString(o, "mediaType", what, "");
  if (mediaType !== undefined && !MANIFEST_TYPES.has(mediaType)) {
    if (INDEX_TYPES.has(mediaType)) fail(what, `expected an image manifest, got an index (${mediaType})`);
    throw errorOf("NotImplemented", `unsupported manifest media type "${mediaType}"`);
  }
  const config = parseDescriptor(o.config, what, "config.");
  if (!CONFIG_TYPES.has(config.mediaType)) throw errorOf("NotImplemented", `unsupported image config media type "${config.mediaType}"`);
  if (!Array.isArray(o.layers)) fail(what, "layers must be an array");
  const layers = o.layers.map((l, i) => parseDescriptor(l, what, `layers[${i}].`));
  for (const l of layers) {
    if (!LAYER_TYPES.has(l.mediaType)) throw errorOf("NotImplemented", `unsupported layer media type "${l.mediaType}"`);
  }
  const m: Manifest = { schemaVersion: 2, config, layers };
  if (mediaType !== undefined) m.mediaType = mediaType;
  const annotations = optStringMap(o, "annotations", what, "");
  if (annotations) m.annotations = annotations;
  return m;
}

/**
 * Parses and validates an image index or Docker manifest list: schemaVersion 2, a known mediaType if
 * present, and well-formed descriptors (entries of other media types are kept; platform selection skips
 * them).
 */
export function parseIndex(bytes: Uint8Array): Index {
  const what = "index";
  const o = parseObject(bytes, what);
  checkSchemaVersion(o, what);
  const mediaType = optString(o, "mediaType", what, "");
  if (mediaType !== undefined && !INDEX_TYPES.has(mediaType)) {
    if (MANIFEST_TYPES.has(mediaType)) fail(what, `expected an index, got an image manifest (${mediaType})`);
    throw errorOf("NotImplemented", `unsupported index media type "${mediaType}"`);
  }
  if (!Array.isArray(o.manifests)) fail(what, "manifests must be an array");
  const manifests = o.manifests.map((d, i) => parseDescriptor(d, what, `manifests[${i}].`));
  const idx: Index = { schemaVersion: 2, manifests };
  if (mediaType !== undefined) idx.mediaType = mediaType;
  const annotations = optStringMap(o, "annotations", what, "");
  if (annotations) idx.annotations = annotations;
  return idx;
}

/**
 * Parses and validates an image config: os and architecture strings, rootfs.type "layers" with sha256
 * diff_ids, and well-typed User/Env/Entrypoint/Cmd/WorkingDir. When `opts.layers` is given, the number of
 * diff_ids must equal it (the manifest's layer count), else DataLoss.
 */
export function parseImageConfig(bytes: Uint8Array, opts: { layers?: number } = {}): ImageConfig {
  const what = "image config";
  const o = parseObject(bytes, what);
  const architecture = reqString(o, "architecture", what, "");
  const os = reqString(o, "os", what, "");
  const rootfs = o.rootfs;
  if (typeof rootfs !== "object" || rootfs === null || Array.isArray(rootfs)) fail(what, "rootfs is missing");
  const r = rootfs as Json;
  if (r.type !== "layers") fail(what, `rootfs.type must be "layers", got ${JSON.stringify(r.type)}`);
  if (!Array.isArray(r.diff_ids)) fail(what, "rootfs.diff_ids must be an array");
  const diffIds = r.diff_ids.map((d, i) => {
    if (typeof d !== "string" || !isDigest(d)) fail(what, `rootfs.diff_ids[${i}] is not a sha256 digest`);
    return d;
  });
  if (opts.layers !== undefined && diffIds.length !== opts.layers) {
    throw errorOf("DataLoss", `image config does not match its manifest: ${diffIds.length} diff_ids for ${opts.layers} layers`);
  }
  const cfg: ImageConfig = { architecture, os, rootfs: { type: "layers", diff_ids: diffIds } };
  const variant = optString(o, "variant", what, "");
  if (variant !== undefined) cfg.variant = variant;
  const created = optString(o, "created", what, "");
  if (created !== undefined) cfg.created = created;
  if (Array.isArray(o.history)) cfg.history = o.history;
  if (o.config !== undefined && o.config !== null) {
    if (typeof o.config !== "object" || Array.isArray(o.config)) fail(what, "config must be an object");
    cfg.config = parseRunConfig(o.config as Json, what);
  }
  return cfg;
}

function parseRunConfig(c: Json, what: string): NonNullable<ImageConfig["config"]> {
  const at = "config.";
  const out: NonNullable<ImageConfig["config"]> = {};
  const user = optString(c, "User", what, at);
  if (user !== undefined) out.User = user;
  const env = optStringArray(c, "Env", what, at, true);
  if (env) out.Env = env;
  const entrypoint = optStringArray(c, "Entrypoint", what, at, true);
  if (entrypoint !== undefined) out.Entrypoint = entrypoint;
  const cmd = optStringArray(c, "Cmd", what, at, true);
  if (cmd !== undefined) out.Cmd = cmd;
  const wd = optString(c, "WorkingDir", what, at);
  if (wd !== undefined) out.WorkingDir = wd;
  const labels = optStringMap(c, "Labels", what, at);
  if (labels) out.Labels = labels;
  const stop = optString(c, "StopSignal", what, at);
  if (stop !== undefined) out.StopSignal = stop;
  for (const key of ["ExposedPorts", "Volumes"] as const) {
    const v = c[key];
    if (v !== undefined && v !== null) {
      if (typeof v !== "object" || Array.isArray(v)) fail(what, `${at}${key} must be an object`);
      out[key] = v as Record<string, object>;
    }
  }
  return out;
}
