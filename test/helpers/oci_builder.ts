/**
 * Builds OCI images in test code and pushes them to a test registry (see registry.ts). Nothing is fetched
 * from the internet: busybox comes from Debian's busybox-static package.
 *
 *   const layer = await layerFromFiles([
 *     { type: "dir", path: "/etc", mode: 0o755 },
 *     { type: "file", path: "/etc/motd", content: "hi\n", mode: 0o644, uid: 0, gid: 0 },
 *     { type: "symlink", path: "/etc/link", target: "motd" },
 *     { type: "hardlink", path: "/etc/motd2", target: "/etc/motd" },
 *     { type: "whiteout", path: "/old/file" },      // tar entry old/.wh.file
 *     { type: "opaque", path: "/var/cache" },       // tar entry var/cache/.wh..wh..opq
 *   ]);
 *   const img = await pushImage(reg.host, "demo", "1", { layers: [base, layer], config: { config: { Cmd: ["sh"] } } });
 *   const amd = await pushBusyboxImage(reg.host, "busybox", null, "amd64");  // by digest only
 *   await pushIndex(reg.host, "busybox", "latest", [amd, arm]);
 *
 * Layers are deterministic (fixed mtimes, gzip mtime 0), so the same entries give the same digests.
 */
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "fflate";
import { digestOf } from "../../src/digest/mod.ts";
import type { Digest } from "../../src/digest/mod.ts";
import { MediaTypes } from "../../src/images/types.ts";
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from "../../src/images/types.ts";

/** Where built layers and downloaded packages are cached between test runs. */
export const CACHE_DIR = join(tmpdir(), "tsctr-test-cache");
/** Every entry's mtime unless it sets one: 2020-01-01T00:00:00Z. */
export const DEFAULT_MTIME = new Date("2020-01-01T00:00:00Z");

interface Owner {
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** Extended attributes, written as PAX SCHILY.xattr.<name> records. */
  xattrs?: Record<string, string>;
}

/** One entry of a layer. Paths may start with "/"; they are stored relative ("etc/passwd"). */
export type LayerEntry =
  | ({ type: "file"; path: string; content?: string | Uint8Array } & Owner)
  | ({ type: "dir"; path: string } & Owner)
  | ({ type: "symlink"; path: string; target: string } & Owner)
  | ({ type: "hardlink"; path: string; target: string } & Owner)
  | ({ type: "fifo"; path: string } & Owner)
  | ({ type: "chardev" | "blockdev"; path: string; major: number; minor: number } & Owner)
  /** Deletes `path` of lower layers: the tar gets dirname/.wh.basename. */
  | { type: "whiteout"; path: string }
  /** Hides everything lower layers have under directory `path`: the tar gets path/.wh..wh..opq. */
  | { type: "opaque"; path: string };

export interface Layer {
  /** The blob as pushed (gzip-compressed tar unless built with compression "none"). */
  blob: Uint8Array;
  digest: Digest;
  size: number;
  mediaType: string;
  /** The uncompressed tar and its digest (the diffID). */
  tar: Uint8Array;
  diffId: Digest;
}

export interface PushedImage {
  /** The manifest's digest, size and media type, with the platform (ready for an index). */
  descriptor: Descriptor & { platform: Platform };
  digest: Digest;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/** Basic credentials, or a ready Authorization value (e.g. "Bearer <token>" with push scope). */
export type RegistryAuth = { username: string; password: string } | { authorization: string };

// tar-stream ships no type declarations; this is the part of its API the builder uses.
interface TarHeader {
  name: string;
  type: "file" | "directory" | "symlink" | "link" | "fifo" | "character-device" | "block-device";
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}
interface TarPack extends AsyncIterable<Uint8Array> {
  entry(header: TarHeader, content?: Uint8Array): void;
  finalize(): void;
}
const tarStream = createRequire(import.meta.url)("tar-stream") as { pack(): TarPack };

function rel(path: string): string {
  const p = path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (p === "") throw new Error(`layer entry path "${path}" names the root`);
  return p;
}

function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf("/");
  return i < 0 ? ["", p] : [p.slice(0, i + 1), p.slice(i + 1)];
}

function headerOf(e: LayerEntry): { header: TarHeader; content?: Uint8Array } {
  if (e.type === "whiteout") {
    const [dir, base] = splitPath(rel(e.path));
    return { header: { name: `${dir}.wh.${base}`, type: "file", mode: 0o644, uid: 0, gid: 0, mtime: DEFAULT_MTIME }, content: new Uint8Array(0) };
  }
  if (e.type === "opaque") {
    return { header: { name: `${rel(e.path)}/.wh..wh..opq`, type: "file", mode: 0o644, uid: 0, gid: 0, mtime: DEFAULT_MTIME }, content: new Uint8Array(0) };
  }
  const defaults: Record<string, number> = { file: 0o644, dir: 0o755, symlink: 0o777, hardlink: 0o644, fifo: 0o644, chardev: 0o666, blockdev: 0o660 };
  const types = { file: "file", dir: "directory", symlink: "symlink", hardlink: "link", fifo: "fifo", chardev: "character-device", blockdev: "block-device" } as const;
  // A high bit keeps mode 0 from being replaced by tar-stream's default; only the low 12 bits are written.
  const header: TarHeader = {
    name: rel(e.path),
    type: types[e.type],
    mode: (e.mode ?? defaults[e.type]!) | 0o100000,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtime: e.mtime ?? DEFAULT_MTIME,
  };
  if (e.xattrs) header.pax = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
  if (e.type === "symlink") header.linkname = e.target;
  if (e.type === "hardlink") header.linkname = rel(e.target);
  if (e.type === "chardev" || e.type === "blockdev") {
    header.devmajor = e.major;
    header.devminor = e.minor;
  }
  if (e.type === "file") {
    const c = e.content ?? new Uint8Array(0);
    return { header, content: typeof c === "string" ? new TextEncoder().encode(c) : c };
  }
  return { header };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Builds an uncompressed tar of `entries`, in the order given. */
export async function tarFromEntries(entries: readonly LayerEntry[]): Promise<Uint8Array> {
  const pack = tarStream.pack();
  for (const e of entries) {
    const { header, content } = headerOf(e);
    pack.entry(header, content);
  }
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const c of pack) chunks.push(c);
  return concat(chunks);
}

/**
 * Builds a layer from `entries`: a tar (in entry order) gzip-compressed with mtime 0 (or left
 * uncompressed with `compression: "none"`), with its blob digest and diffID.
 */
export async function layerFromFiles(entries: readonly LayerEntry[], opts: { compression?: "gzip" | "none" } = {}): Promise<Layer> {
  const tar = await tarFromEntries(entries);
  return layerFromTar(tar, opts);
}

/** Wraps an existing uncompressed tar as a layer (gzip unless compression is "none"). */
export async function layerFromTar(tar: Uint8Array, opts: { compression?: "gzip" | "none" } = {}): Promise<Layer> {
  const gzip = opts.compression !== "none";
  const blob = gzip ? gzipSync(tar, { level: 6, mtime: 0 }) : tar;
  return {
    blob,
    digest: await digestOf(blob),
    size: blob.byteLength,
    mediaType: gzip ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer,
    tar,
    diffId: await digestOf(tar),
  };
}

function authHeaders(auth?: RegistryAuth): Record<string, string> {
  if (!auth) return {};
  if ("authorization" in auth) return { authorization: auth.authorization };
  return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}` };
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) return;
  const body = await res.text().catch(() => "");
  throw new Error(`${what}: registry answered ${res.status} ${body.slice(0, 300)}`);
}

/**
 * Uploads `blob` to repository `repo` of the plain-HTTP registry `host` (monolithic: POST an upload, then
 * PUT ?digest=), unless the registry already has it. Returns its digest and size.
 */
export async function pushBlob(host: string, repo: string, blob: Uint8Array, auth?: RegistryAuth): Promise<{ digest: Digest; size: number }> {
  const digest = await digestOf(blob);
  const base = `http://${host}/v2/${repo}`;
  const head = await fetch(`${base}/blobs/${digest}`, { method: "HEAD", headers: authHeaders(auth) });
  if (head.status === 200) return { digest, size: blob.byteLength };
  const post = await fetch(`${base}/blobs/uploads/`, { method: "POST", headers: authHeaders(auth) });
  await expectStatus(post, [202], `start upload of ${digest} to ${repo}`);
  await post.arrayBuffer();
  const location = new URL(post.headers.get("location") ?? "", `http://${host}/`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { ...authHeaders(auth), "content-type": "application/octet-stream", "content-length": String(blob.byteLength) },
    body: blob as Uint8Array<ArrayBuffer>,
  });
  await expectStatus(put, [201], `upload ${digest} to ${repo}`);
  await put.arrayBuffer();
  return { digest, size: blob.byteLength };
}

/**
 * PUTs raw manifest bytes as `mediaType` under `reference` (a tag or a digest) in `repo`. For tests that
 * need a hand-written or broken manifest. Returns the bytes' digest.
 */
export async function pushManifestBytes(host: string, repo: string, reference: string, bytes: Uint8Array, mediaType: string, auth?: RegistryAuth): Promise<Digest> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, {
    method: "PUT",
    headers: { ...authHeaders(auth), "content-type": mediaType },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  await expectStatus(res, [201], `push manifest ${repo}:${reference}`);
  await res.arrayBuffer();
  return digestOf(bytes);
}

export interface PushImageOptions {
  layers: readonly Layer[];
  /** Merged over the generated config; `rootfs` is always computed from the layers. */
  config?: Partial<ImageConfig>;
  /** Defaults to linux/amd64; written to the config and to the returned descriptor. */
  platform?: Platform;
  /** Use Docker schema 2 media types instead of OCI ones. */
  docker?: boolean;
  auth?: RegistryAuth;
}

/**
 * Pushes the layers, an image config and a manifest to `host`/`repo`, tagged `tag` (or by digest only when
 * `tag` is null). Returns the manifest, its descriptor with the platform, and the config.
 */
export async function pushImage(host: string, repo: string, tag: string | null, opts: PushImageOptions): Promise<PushedImage> {
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const config: ImageConfig = {
    created: DEFAULT_MTIME.toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...opts.config,
    rootfs: { type: "layers", diff_ids: opts.layers.map((l) => l.diffId) },
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configMediaType = opts.docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
  const configDesc = { mediaType: configMediaType, ...(await pushBlob(host, repo, configBytes, opts.auth)) };
  const layers: Descriptor[] = [];
  for (const l of opts.layers) {
    await pushBlob(host, repo, l.blob, opts.auth);
    const mediaType = opts.docker ? (l.mediaType === MediaTypes.ociLayerGzip ? MediaTypes.dockerLayerGzip : "application/vnd.docker.image.rootfs.diff.tar") : l.mediaType;
    layers.push({ mediaType, digest: l.digest, size: l.size });
  }
  const mediaType = opts.docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest: Manifest = { schemaVersion: 2, mediaType, config: configDesc, layers };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const digest = await digestOf(manifestBytes);
  await pushManifestBytes(host, repo, tag ?? digest, manifestBytes, mediaType, opts.auth);
  return {
    descriptor: { mediaType, digest, size: manifestBytes.byteLength, platform },
    digest,
    manifest,
    manifestBytes,
    config,
    configDescriptor: configDesc,
  };
}

/**
 * Pushes an index (or a Docker manifest list with `docker: true`) of already pushed manifests, tagged
 * `tag`. Entries are PushedImages or raw descriptors (to add attestations, unknown/unknown entries…).
 */
export async function pushIndex(
  host: string,
  repo: string,
  tag: string,
  manifests: readonly (PushedImage | Descriptor)[],
  opts: { docker?: boolean; auth?: RegistryAuth } = {},
): Promise<{ digest: Digest; index: Index; bytes: Uint8Array }> {
  const mediaType = opts.docker ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const index: Index = { schemaVersion: 2, mediaType, manifests: manifests.map((m) => ("descriptor" in m ? m.descriptor : m)) };
  const bytes = new TextEncoder().encode(JSON.stringify(index));
  const digest = await pushManifestBytes(host, repo, tag, bytes, mediaType, opts.auth);
  return { digest, index, bytes };
}

// ---- busybox from Debian's busybox-static ----

export type BusyboxArch = "amd64" | "arm64";

/** Applets linked next to /bin/busybox (all present in Debian's busybox-static). */
export const BUSYBOX_APPLETS = [
  "sh", "ash", "echo", "true", "false", "ls", "cat", "id", "sleep", "env", "pwd", "mkdir", "rmdir", "rm", "touch", "test", "[",
  "printf", "whoami", "uname", "hostname", "ps", "kill", "grep", "sed", "head", "tail", "wc", "cp", "mv", "ln", "chmod", "chown",
  "stat", "readlink", "find", "mount", "umount", "date", "sync", "tee", "yes", "seq", "dd", "df", "du", "basename", "dirname",
  "expr", "sort", "uniq", "tr", "cut", "xargs", "which", "nproc", "md5sum", "sha256sum", "vi", "wget", "top", "free", "uptime",
];

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BUILDER_VERSION = "busybox-layer-v1";

function run(cmd: string, args: string[], cwd?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * The path of a static busybox binary for `arch`: /bin/busybox for amd64 (apt-get install busybox-static),
 * for arm64 the binary of busybox-static:arm64, downloaded once with apt-get download and unpacked with
 * dpkg -x into CACHE_DIR (runs apt-get update once if the download fails).
 */
export async function busyboxBinary(arch: BusyboxArch): Promise<string> {
  if (arch === "amd64") {
    if (!(await exists("/bin/busybox"))) throw new Error("/bin/busybox is missing: apt-get install -y busybox-static");
    return "/bin/busybox";
  }
  const target = join(CACHE_DIR, `busybox-static-${arch}`, "busybox");
  if (await exists(target)) return target;
  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(join(CACHE_DIR, "download-"));
  try {
    let r = await run("apt-get", ["download", `busybox-static:${arch}`], work);
    if (r.code !== 0) {
      await run("apt-get", ["update"]);
      r = await run("apt-get", ["download", `busybox-static:${arch}`], work);
      if (r.code !== 0) throw new Error(`apt-get download busybox-static:${arch} failed: ${r.out.trim().split("\n").pop()}`);
    }
    const deb = (await readdir(work)).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download busybox-static:${arch} left no .deb`);
    const x = await run("dpkg", ["-x", deb, "root"], work);
    if (x.code !== 0) throw new Error(`dpkg -x ${deb} failed: ${x.out.trim()}`);
    const found = ["root/bin/busybox", "root/usr/bin/busybox"].map((p) => join(work, p));
    const bin = (await Promise.all(found.map(exists))).findIndex(Boolean);
    if (bin < 0) throw new Error(`${deb} has no bin/busybox`);
    await mkdir(join(CACHE_DIR, `busybox-static-${arch}`), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    await copyFile(found[bin]!, tmp);
    await rename(tmp, target);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The entries of a minimal busybox root filesystem around the given binary bytes. */
export function busyboxEntries(busybox: Uint8Array): LayerEntry[] {
  return [
    { type: "dir", path: "/bin", mode: 0o755 },
    { type: "file", path: "/bin/busybox", content: busybox, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): LayerEntry => ({ type: "symlink", path: `/bin/${a}`, target: "busybox" })),
    { type: "dir", path: "/dev", mode: 0o755 },
    { type: "dir", path: "/etc", mode: 0o755 },
    { type: "file", path: "/etc/passwd", mode: 0o644, content: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" },
    { type: "file", path: "/etc/group", mode: 0o644, content: "root:x:0:\nnobody:x:65534:\n" },
    { type: "dir", path: "/proc", mode: 0o555 },
    { type: "dir", path: "/root", mode: 0o700 },
    { type: "dir", path: "/sys", mode: 0o555 },
    { type: "dir", path: "/tmp", mode: 0o1777 },
    { type: "dir", path: "/var", mode: 0o755 },
  ];
}

/**
 * A gzip layer with /bin/busybox for `arch`, symlinks for BUSYBOX_APPLETS, /etc/passwd (root, nobody),
 * /etc/group, /tmp (1777) and empty /dev, /proc, /sys, /root, /var. Cached on disk under CACHE_DIR, keyed
 * by the binary's digest.
 */
export async function busyboxRootfsLayer(arch: BusyboxArch): Promise<Layer> {
  const binary = await readFile(await busyboxBinary(arch));
  const key = (await digestOf(`${BUILDER_VERSION} ${await digestOf(binary)}`)).slice(7, 23);
  const base = join(CACHE_DIR, `busybox-${arch}-${key}`);
  try {
    const [tar, blob] = await Promise.all([readFile(`${base}.tar`), readFile(`${base}.tar.gz`)]);
    const meta = JSON.parse(await readFile(`${base}.json`, "utf8")) as { digest: Digest; diffId: Digest };
    return { blob, tar, digest: meta.digest, diffId: meta.diffId, size: blob.byteLength, mediaType: MediaTypes.ociLayerGzip };
  } catch {
    // not cached yet (or a partial cache): build it
  }
  const layer = await layerFromFiles(busyboxEntries(binary));
  await mkdir(CACHE_DIR, { recursive: true });
  const tmp = `.${process.pid}.tmp`;
  await writeFile(`${base}.tar${tmp}`, layer.tar);
  await writeFile(`${base}.tar.gz${tmp}`, layer.blob);
  await writeFile(`${base}.json${tmp}`, JSON.stringify({ digest: layer.digest, diffId: layer.diffId }));
  await rename(`${base}.tar${tmp}`, `${base}.tar`);
  await rename(`${base}.tar.gz${tmp}`, `${base}.tar.gz`);
  await rename(`${base}.json${tmp}`, `${base}.json`);
  return layer;
}

/** The platform of a busybox image for `arch` (arm64 carries variant v8, as Docker Hub's do). */
export function busyboxPlatform(arch: BusyboxArch): Platform {
  return arch === "arm64" ? { os: "linux", architecture: "arm64", variant: "v8" } : { os: "linux", architecture: "amd64" };
}

/**
 * Pushes a one-layer busybox image for `arch` (Cmd ["sh"], a standard PATH) as `repo:tag`, or by digest
 * only when `tag` is null. `extraLayers` go on top of the busybox layer.
 */
export async function pushBusyboxImage(
  host: string,
  repo: string,
  tag: string | null,
  arch: BusyboxArch,
  opts: { extraLayers?: readonly Layer[]; config?: Partial<ImageConfig>; auth?: RegistryAuth } = {},
): Promise<PushedImage> {
  const layers = [await busyboxRootfsLayer(arch), ...(opts.extraLayers ?? [])];
  return pushImage(host, repo, tag, {
    layers,
    platform: busyboxPlatform(arch),
    config: { config: { Env: [PATH_ENV], Cmd: ["sh"] }, ...opts.config },
    auth: opts.auth,
  });
}

/** Pushes busybox for amd64 and arm64 by digest and a multi-arch OCI index of both as `repo:tag`. */
export async function pushBusyboxIndex(host: string, repo: string, tag: string, opts: { auth?: RegistryAuth } = {}): Promise<{ digest: Digest; index: Index; images: Record<BusyboxArch, PushedImage> }> {
  const amd64 = await pushBusyboxImage(host, repo, null, "amd64", opts);
  const arm64 = await pushBusyboxImage(host, repo, null, "arm64", opts);
  const { digest, index } = await pushIndex(host, repo, tag, [amd64, arm64], opts);
  return { digest, index, images: { amd64, arm64 } };
}
