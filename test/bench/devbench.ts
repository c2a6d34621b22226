/**
 * The benchmark's fixture images, built here and never fetched from the internet (Debian packages aside):
 *
 * - "devbench": a realistic multi-layer image from ~50 Debian packages (libc, coreutils, perl, python,
 *   git, vim, gcc…): three package layers of ~130–200 MB each uncompressed, >10k files in all, plus a small
 *   top layer with a few files and a whiteout. The .debs come from `apt-get download`, each layer tree from
 *   `dpkg -x`, packed with GNU tar (POSIX/PAX format, like Go's archive/tar) and compressed with pigz.
 * - "busybox": the test helpers' one-layer busybox image (oci_builder.ts).
 * - "big": the 1 GB image of the memory target, four layers of one 256 MiB file of random bytes each.
 *
 * Everything is cached under os.tmpdir()/tsctr-bench-cache: the .debs, the compressed layers with their
 * digests, and a copy of the registry's storage holding devbench (its blob files hard-linked), so a second
 * run neither rebuilds nor re-pushes.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, link, lstat, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Digest } from "../../src/digest/mod.ts";
import { MediaTypes } from "../../src/images/types.ts";
import type { ImageConfig, Manifest } from "../../src/images/types.ts";
import { pushBlob, pushBusyboxImage, pushManifestBytes } from "../helpers/oci_builder.ts";
import type { TestRegistry } from "../helpers/registry.ts";
import { execFile } from "../../src/platform/exec.ts";
import { lastLines } from "./measure.ts";

export const BENCH_CACHE = join(tmpdir(), "tsctr-bench-cache");
/** Bump when the layer recipe changes: it keys the cached layers and registry storage. */
const RECIPE_VERSION = "devbench-v1";
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const FIXED_MTIME = 1577836800; // 2020-01-01T00:00:00Z

/** The package layers, bottom to top, like a Dockerfile's apt-get installs. */
export const DEVBENCH_LAYERS: readonly { name: string; packages: readonly string[] }[] = [
  {
    name: "base",
    packages: [
      "libc6", "libc-bin", "libgcc-s1", "libstdc++6", "zlib1g", "bash", "coreutils", "util-linux", "libsystemd0",
      "dpkg", "apt", "libapt-pkg6.0", "perl-base", "libssl3", "openssl", "ca-certificates", "tzdata", "locales",
      "libsqlite3-0", "libicu72", "libexpat1", "busybox-static",
    ],
  },
  {
    name: "runtimes",
    packages: [
      "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "perl-modules-5.36", "libperl5.36",
      "git", "git-man", "libcurl3-gnutls", "vim", "vim-common", "vim-runtime",
    ],
  },
  {
    name: "toolchain",
    packages: [
      "gcc-12", "cpp-12", "libgcc-12-dev", "libstdc++-12-dev", "libasan8", "binutils-x86-64-linux-gnu", "libbinutils",
      "libctf0", "libgprofng0", "libc6-dev", "linux-libc-dev", "libisl23", "libmpc3", "libmpfr6",
    ],
  },
];

export interface BuiltLayer {
  name: string;
  file: string;
  digest: Digest;
  diffId: Digest;
  /** Compressed size (the blob). */
  size: number;
  /** Uncompressed tar size. */
  tarSize: number;
  /** Tar entries (files, dirs, links…) and bytes of regular file data. */
  entries: number;
  fileBytes: number;
}

export interface FixtureImage {
  ref: string;
  digest: Digest;
  layers: number;
  compressedBytes: number;
  tarBytes?: number;
  entries?: number;
  fileBytes?: number;
}

type Log = (msg: string) => void;

function recipeDir(): string {
  const key = createHash("sha256").update(JSON.stringify([RECIPE_VERSION, DEVBENCH_LAYERS])).digest("hex").slice(0, 12);
  return join(BENCH_CACHE, `devbench-${key}`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function must(what: string, file: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Promise<{ code: number; out: string }>((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out = (out + b.toString()).slice(-16384)));
    child.stderr.on("data", (b: Buffer) => (out = (out + b.toString()).slice(-16384)));
    child.once("error", (e) => reject(new Error(`${what}: cannot run ${file}: ${e.message}`)));
    child.once("close", (code) => resolve({ code: code ?? 1, out }));
  });
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${lastLines(r.out)}`);
  return r.out;
}

/** Downloads the .debs that are not cached yet (apt-get update once if a download fails). */
async function ensureDebs(log: Log): Promise<Map<string, string>> {
  const dir = join(BENCH_CACHE, "debs");
  await mkdir(dir, { recursive: true });
  const wanted = DEVBENCH_LAYERS.flatMap((l) => l.packages);
  const find = async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith(".deb"));
    const found = new Map<string, string>();
    for (const p of wanted) {
      const f = files.find((x) => x.startsWith(`${p}_`));
      if (f) found.set(p, join(dir, f));
    }
    return found;
  };
  let found = await find();
  const missing = wanted.filter((p) => !found.has(p));
  if (missing.length > 0) {
    log(`downloading ${missing.length} Debian packages with apt-get download`);
    try {
      await must("apt-get download", "apt-get", ["download", "-q", ...missing], dir);
    } catch {
      await must("apt-get update", "apt-get", ["update", "-q"]);
      await must(`apt-get download ${missing.join(" ")}`, "apt-get", ["download", "-q", ...missing], dir);
    }
    found = await find();
    const still = wanted.filter((p) => !found.has(p));
    if (still.length > 0) throw new Error(`apt-get download left no .deb for: ${still.join(", ")}`);
  }
  return found;
}

/** Counts the entries under `dir` and the bytes of its regular files (hard links counted once). */
async function treeStats(dir: string): Promise<{ entries: number; fileBytes: number }> {
  let entries = 0;
  let fileBytes = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      entries++;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const s = await lstat(p);
        const id = `${s.dev}:${s.ino}`;
        if (s.nlink > 1 && seen.has(id)) continue;
        seen.add(id);
        fileBytes += s.size;
      }
    }
  };
  await walk(dir);
  return { entries, fileBytes };
}

function hashing(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/**
 * Packs the contents of `tree` (its top-level entries, sorted, names without "./") into a gzip tar at
 * `out`, hashing the tar (diffID) and the compressed stream (digest) as they pass; nothing is held in
 * memory. POSIX format without atime/ctime records, so PAX headers appear only where needed.
 */
async function packTree(tree: string, out: string, extraTarArgs: string[] = [], level = 6): Promise<{ digest: Digest; diffId: Digest; size: number; tarSize: number }> {
  const top = (await readdir(tree)).sort();
  const tarArgs = [
    "--create", "--file=-", `--directory=${tree}`, "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "--sort=name", "--numeric-owner",
    ...extraTarArgs, "--", ...top,
  ];
  const gz = { cmd: (await exists("/usr/bin/pigz")) ? "pigz" : "gzip", args: [`-${level}`, "-n", "-c"] };
  const tar = spawn("tar", tarArgs, { stdio: ["ignore", "pipe", "pipe"] });
  const zip = spawn(gz.cmd, gz.args, { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  tar.stderr.on("data", (b: Buffer) => (err += b.toString()));
  zip.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const done = (c: ReturnType<typeof spawn>, name: string) =>
    new Promise<void>((resolve, reject) => {
      c.once("error", (e) => reject(new Error(`${name}: ${e.message}`)));
      c.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}: ${lastLines(err)}`))));
    });
  const tarHash = createHash("sha256");
  const gzHash = createHash("sha256");
  const tarBytes = { n: 0 };
  const gzBytes = { n: 0 };
  const tmp = `${out}.${process.pid}.tmp`;
  await Promise.all([
    pipeline(tar.stdout, hashing(tarHash, tarBytes), zip.stdin),
    pipeline(zip.stdout, hashing(gzHash, gzBytes), createWriteStream(tmp)),
    done(tar, "tar"),
    done(zip, gz.cmd),
  ]);
  await rename(tmp, out);
  return { digest: `sha256:${gzHash.digest("hex")}` as Digest, diffId: `sha256:${tarHash.digest("hex")}` as Digest, size: gzBytes.n, tarSize: tarBytes.n };
}

/** The small top layer: a version file, users, a profile, and a whiteout deleting /usr/share/doc. */
async function writeTopTree(tree: string): Promise<void> {
  const files: [string, string, number][] = [
    ["etc/devbench-version", "1\n", 0o644],
    ["etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndev:x:1000:1000:dev:/home/dev:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644],
    ["etc/group", "root:x:0:\ndev:x:1000:\nnogroup:x:65534:\n", 0o644],
    ["root/.profile", "export LANG=C.UTF-8\n", 0o644],
    ["usr/share/.wh.doc", "", 0o644],
  ];
  for (const [path, content, mode] of files) {
    await mkdir(join(tree, path, ".."), { recursive: true });
    await writeFile(join(tree, path), content, { mode });
  }
  await mkdir(join(tree, "home", "dev"), { recursive: true });
}

/** The layers a cache's `layers.json` lists, if every layer file is there with its size; else undefined. */
async function cachedLayers(metaFile: string): Promise<BuiltLayer[] | undefined> {
  try {
    const meta = JSON.parse(await readFile(metaFile, "utf8")) as BuiltLayer[];
    if ((await Promise.all(meta.map((l) => stat(l.file).then((s) => s.size === l.size, () => false)))).every(Boolean)) return meta;
  } catch {
    // not built yet
  }
  return undefined;
}

/** Records built layers in the cache (replaced atomically). */
async function saveLayers(metaFile: string, layers: BuiltLayer[]): Promise<void> {
  await writeFile(`${metaFile}.tmp`, JSON.stringify(layers, null, 2));
  await rename(`${metaFile}.tmp`, metaFile);
}

/** Builds (or finds in the cache) the compressed layers of devbench, bottom to top. */
export async function devbenchLayers(log: Log): Promise<BuiltLayer[]> {
  const dir = recipeDir();
  const metaFile = join(dir, "layers.json");
  const cached = await cachedLayers(metaFile);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  const debs = await ensureDebs(log);
  const layers: BuiltLayer[] = [];
  const recipes = [...DEVBENCH_LAYERS.map((l) => ({ name: l.name, packages: l.packages as readonly string[] })), { name: "top", packages: [] as readonly string[] }];
  for (const { name, packages } of recipes) {
    const tree = join(dir, `tree-${name}`);
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree, { recursive: true });
    log(`building devbench layer "${name}"${packages.length ? ` from ${packages.length} packages` : ""}`);
    for (const p of packages) await must(`dpkg -x ${basename(debs.get(p)!)}`, "dpkg", ["-x", debs.get(p)!, tree]);
    const extra: string[] = [];
    if (name === "top") {
      await writeTopTree(tree);
      extra.push(`--mtime=@${FIXED_MTIME}`, "--owner=0", "--group=0");
    }
    await utimes(tree, FIXED_MTIME, FIXED_MTIME);
    const stats = await treeStats(tree);
    const file = join(dir, `layer-${name}.tar.gz`);
    const packed = await packTree(tree, file, extra);
    await rm(tree, { recursive: true, force: true });
    layers.push({ name, file, ...packed, ...stats });
    log(`  ${name}: ${mb(packed.size)} compressed, ${mb(packed.tarSize)} tar, ${stats.entries} entries`);
  }
  await saveLayers(metaFile, layers);
  return layers;
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The config and manifest of devbench for these layers (deterministic bytes). */
function devbenchManifest(layers: readonly BuiltLayer[]): { configBytes: Uint8Array; configDigest: Digest; manifestBytes: Uint8Array; manifestDigest: Digest } {
  const config: ImageConfig = {
    created: new Date(FIXED_MTIME * 1000).toISOString(),
    architecture: "amd64",
    os: "linux",
    config: { Env: [PATH_ENV, "LANG=C.UTF-8"], Cmd: ["/bin/bash"], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDigest = `sha256:${createHash("sha256").update(configBytes).digest("hex")}` as Digest;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.byteLength },
    layers: layers.map((l) => ({ mediaType: MediaTypes.ociLayerGzip, digest: l.digest, size: l.size })),
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const manifestDigest = `sha256:${createHash("sha256").update(manifestBytes).digest("hex")}` as Digest;
  return { configBytes, configDigest, manifestBytes, manifestDigest };
}

/** The digest the registry has for repo:tag, or undefined. */
async function manifestDigestOf(host: string, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: `${MediaTypes.ociManifest}, ${MediaTypes.ociIndex}` },
  });
  return res.status === 200 ? (res.headers.get("docker-content-digest") ?? undefined) : undefined;
}

/** Uploads a blob from a file, streamed (monolithic PUT), unless the registry has it already. */
async function pushBlobFile(host: string, repo: string, file: string, digest: Digest, size: number): Promise<void> {
  const base = `http://${host}/v2/${repo}`;
  const head = await fetch(`${base}/blobs/${digest}`, { method: "HEAD" });
  if (head.status === 200) return;
  const post = await fetch(`${base}/blobs/uploads/`, { method: "POST" });
  await post.arrayBuffer();
  if (post.status !== 202) throw new Error(`start upload of ${digest} to ${repo}: registry answered ${post.status}`);
  const location = new URL(post.headers.get("location") ?? "", `http://${host}/`);
  location.searchParams.set("digest", digest);
  await new Promise<void>((resolve, reject) => {
    const req = request(location, { method: "PUT", headers: { "content-type": "application/octet-stream", "content-length": String(size) } }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`upload ${digest} to ${repo}: registry answered ${res.statusCode} ${body.slice(0, 200)}`))));
    });
    req.once("error", reject);
    pipeline(createReadStream(file), req).catch(reject);
  });
}

/**
 * Copies a registry storage tree: directories are made, blob files ("…/blobs/…/data", never rewritten
 * by the registry) are hard-linked, small files are copied. Upload scratch directories are skipped.
 */
async function mirrorStorage(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const e of await readdir(src, { withFileTypes: true })) {
    if (e.name === "_uploads") continue;
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) await mirrorStorage(s, d);
    else if (e.name === "data" && s.includes("/blobs/")) await link(s, d).catch(() => copyFile(s, d));
    else await copyFile(s, d);
  }
}

/** What a served image built from `layers` is, for the report. */
function fixtureImage(ref: string, digest: Digest, layers: readonly BuiltLayer[]): FixtureImage {
  const sum = (f: (l: BuiltLayer) => number) => layers.reduce((n, l) => n + f(l), 0);
  return { ref, digest, layers: layers.length, compressedBytes: sum((l) => l.size), tarBytes: sum((l) => l.tarSize), entries: sum((l) => l.entries), fileBytes: sum((l) => l.fileBytes) };
}

/**
 * Makes `reg` serve devbench as `devbench:1`: from the cached storage copy when it holds the expected
 * manifest, otherwise by building (or reusing) the layers and pushing them, then caching the storage.
 */
export async function serveDevbench(reg: TestRegistry, log: Log): Promise<FixtureImage> {
  const layers = await devbenchLayers(log);
  const m = devbenchManifest(layers);
  const cached = join(recipeDir(), "registry-data");
  const image = fixtureImage(`${reg.host}/devbench:1`, m.manifestDigest, layers);
  const data = join(reg.dir, "data");
  if (await exists(cached)) {
    await mirrorStorage(cached, data);
    if ((await manifestDigestOf(reg.host, "devbench", "1")) === m.manifestDigest) return image;
    log("the cached registry storage does not hold devbench: pushing again");
  }
  log(`pushing devbench (${mb(image.compressedBytes)}) to ${reg.host}`);
  for (const l of layers) await pushBlobFile(reg.host, "devbench", l.file, l.digest, l.size);
  await pushBlob(reg.host, "devbench", m.configBytes);
  const got = await pushManifestBytes(reg.host, "devbench", "1", m.manifestBytes, MediaTypes.ociManifest);
  if (got !== m.manifestDigest) throw new Error(`devbench manifest digest ${got}, expected ${m.manifestDigest}`);
  const tmp = `${cached}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mirrorStorage(data, tmp);
  await rm(cached, { recursive: true, force: true });
  await rename(tmp, cached);
  return image;
}

/** Pushes the helpers' busybox image for amd64 as `busybox:1`. */
export async function serveBusybox(reg: TestRegistry): Promise<FixtureImage> {
  const img = await pushBusyboxImage(reg.host, "busybox", "1", "amd64");
  return {
    ref: `${reg.host}/busybox:1`,
    digest: img.digest,
    layers: img.manifest.layers.length,
    compressedBytes: img.manifest.layers.reduce((n, l) => n + l.size, 0),
  };
}

/** Bump when the 1 GB image's recipe changes: it keys the cached layers. */
const BIG_RECIPE = "big-v1";
const BIG_LAYERS = 4;
const BIG_LAYER_BYTES = 256 * 2 ** 20;

/** Writes `bytes` random bytes to `file`, 1 MiB at a time. */
async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const chunk = 1 << 20;
  async function* random() {
    for (let left = bytes; left > 0; left -= chunk) yield randomBytes(Math.min(chunk, left));
  }
  await pipeline(Readable.from(random()), createWriteStream(file));
}

/**
 * Builds (or finds in the cache) the layers of "big", the issue's 1 GB image: four layers, each one file of
 * 256 MiB of random bytes, so that they stay ~1.07 GB compressed (gzip -1) and uncompressed. It measures
 * what a pull holds in memory when the bytes are many and the files few.
 */
export async function bigImageLayers(log: Log): Promise<BuiltLayer[]> {
  const dir = join(BENCH_CACHE, BIG_RECIPE);
  const metaFile = join(dir, "layers.json");
  const cached = await cachedLayers(metaFile);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  const layers: BuiltLayer[] = [];
  for (let i = 0; i < BIG_LAYERS; i++) {
    const name = `random-${i}`;
    const tree = join(dir, `tree-${name}`);
    await rm(tree, { recursive: true, force: true });
    await mkdir(join(tree, "data"), { recursive: true });
    log(`building the 1 GB image's layer ${i + 1} of ${BIG_LAYERS} (${mb(BIG_LAYER_BYTES)} of random bytes)`);
    await writeRandomFile(join(tree, "data", `${name}.bin`), BIG_LAYER_BYTES);
    await utimes(join(tree, "data"), FIXED_MTIME, FIXED_MTIME);
    const file = join(dir, `layer-${name}.tar.gz`);
    const packed = await packTree(tree, file, [`--mtime=@${FIXED_MTIME}`, "--owner=0", "--group=0"], 1);
    await rm(tree, { recursive: true, force: true });
    layers.push({ name, file, ...packed, entries: 2, fileBytes: BIG_LAYER_BYTES });
  }
  await saveLayers(metaFile, layers);
  return layers;
}

/** Makes `reg` serve the 1 GB image as `big:1` (built or taken from the cache, then pushed). */
export async function serveBigImage(reg: TestRegistry, log: Log): Promise<FixtureImage> {
  const layers = await bigImageLayers(log);
  const m = devbenchManifest(layers);
  const image = fixtureImage(`${reg.host}/big:1`, m.manifestDigest, layers);
  log(`pushing the 1 GB image (${mb(image.compressedBytes)}) to ${reg.host}`);
  for (const l of layers) await pushBlobFile(reg.host, "big", l.file, l.digest, l.size);
  await pushBlob(reg.host, "big", m.configBytes);
  const got = await pushManifestBytes(reg.host, "big", "1", m.manifestBytes, MediaTypes.ociManifest);
  if (got !== m.manifestDigest) throw new Error(`big manifest digest ${got}, expected ${m.manifestDigest}`);
  return image;
}

/** Tools the fixtures need, with the Debian package to install for each one that is missing. */
export async function missingFixtureTools(withDevbench: boolean): Promise<string[]> {
  const tools: [string, string][] = [["docker-registry", "docker-registry"]];
  if (withDevbench) tools.push(["apt-get", "apt"], ["dpkg", "dpkg"], ["tar", "tar"]);
  const missing: string[] = [];
  for (const [bin, pkg] of tools) {
    const r = await execFile("sh", ["-c", `command -v ${bin}`]);
    if (r.code !== 0) missing.push(`${bin} (apt-get install -y ${pkg})`);
  }
  return missing;
}
