/**
 * Unpack end to end with real parts: layers built by GNU tar, stored in the real content store, unpacked
 * into the overlay snapshotter, mounted with overlayfs, and compared with GNU tar's own extraction of the
 * same layers (whiteouts applied by hand). Then hostile layers: path traversal, symlink-parent escapes,
 * a hardlink out of the layer, a wrong diffID.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { lchown, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { openLocalStore } from "../../src/content/mod.ts";
import type { ContentStore } from "../../src/content/types.ts";
import { digestOf, type Digest } from "../../src/digest/mod.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";
import { chainIds } from "../../src/images/chainid.ts";
import { MediaTypes, type Descriptor } from "../../src/images/types.ts";
import { mountAll, unmount } from "../../src/mount/mod.ts";
import { getXattrs } from "../../src/platform/special_files.ts";
import { OverlaySnapshotter } from "../../src/snapshots/overlay/mod.ts";
import { unpackLayers, type UnpackEvent } from "../../src/unpack/unpacker.ts";
import { decompressEngine, setDecompressEngine } from "../../src/archive/decompress.ts";

interface Fixture {
  work: string;
  content: ContentStore;
  snapshotter: OverlaySnapshotter;
}

let fixture: Promise<Fixture> | undefined;
const mounted: string[] = [];

/** One content store and snapshotter for the file, made on first use and removed at exit. */
function setup(): Promise<Fixture> {
  fixture ??= (async () => {
    const work = await mkdtemp(join(tmpdir(), "tsctr-unpack-"));
    const cleanup = () => {
      for (const m of mounted) execFileSync("umount", ["-l", m], { stdio: "ignore" });
      mounted.length = 0;
      rmSync(work, { recursive: true, force: true });
    };
    process.once("exit", cleanup); // Node
    (globalThis as unknown as { addEventListener?: (type: string, f: () => void) => void }).addEventListener?.("unload", cleanup); // Deno
    return { work, content: await openLocalStore(join(work, "content")), snapshotter: await OverlaySnapshotter.open(join(work, "snapshots")) };
  })();
  return fixture;
}

interface Layer {
  desc: Descriptor;
  diffId: Digest;
  tar: string;
  src: string;
}

/** Archives `src` with GNU tar (PAX format, xattrs, numeric owners), optionally gzips it, and stores the blob. */
async function storeLayer(f: Fixture, src: string, opts: { gzip: boolean; tarArgs?: string[]; members?: string[] }): Promise<Layer> {
  const tar = `${src}.tar`;
  const members = opts.members ?? readdirSync(src).sort();
  execFileSync("tar", ["--format=posix", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--sort=name", ...(opts.tarArgs ?? []), "-cf", tar, "-C", src, ...members]);
  const raw = readFileSync(tar);
  const blob = opts.gzip ? execFileSync("gzip", ["-n", "-c", tar], { maxBuffer: 1 << 30 }) : raw;
  const desc: Descriptor = { mediaType: opts.gzip ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer, digest: await digestOf(blob), size: blob.length };
  await f.content.writeBytes(blob, { digest: desc.digest, size: desc.size });
  return { desc, diffId: await digestOf(raw), tar, src };
}

function file(path: string, content: string, mode = 0o644, owner: [number, number] = [0, 0]) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chownSync(path, ...owner);
  chmodSync(path, mode);
}

function dir(path: string, mode = 0o755, owner: [number, number] = [0, 0]) {
  mkdirSync(path, { recursive: true });
  chownSync(path, ...owner);
  chmodSync(path, mode);
}

/** The three layers of the main test: odd modes, owners, links, devices, whiteouts, replacements. */
async function buildSources(root: string): Promise<string[]> {
  const l1 = join(root, "l1");
  dir(join(l1, "bin"));
  file(join(l1, "bin", "suid"), "suid v1\n", 0o4755);
  file(join(l1, "bin", "sgid"), "sgid\n", 0o2755);
  dir(join(l1, "tmp"), 0o1777);
  dir(join(l1, "etc"));
  file(join(l1, "etc", "secret"), "secret\n", 0o600, [1000, 1000]);
  dir(join(l1, "home", "user"), 0o750, [1000, 1000]);
  file(join(l1, "home", "user", ".profile"), "PS1=$\n", 0o644, [1000, 1000]);
  dir(join(l1, "data"));
  file(join(l1, "data", "file1"), "one\n");
  execFileSync("setfattr", ["-n", "user.note", "-v", "hello", join(l1, "data", "file1")]);
  linkSync(join(l1, "data", "file1"), join(l1, "data", "hard"));
  file(join(l1, "data", "empty"), "");
  // Modes the umask (022 here) would cut, and none at all: open(2) cannot give these, fchmod must.
  file(join(l1, "data", "everyone"), "rw\n", 0o666);
  file(join(l1, "data", "nobody"), "", 0o000);
  dir(join(l1, "links"));
  symlinkSync("/etc/secret", join(l1, "links", "abs"));
  symlinkSync("../data/file1", join(l1, "links", "rel"));
  symlinkSync("/nonexistent", join(l1, "links", "dangling"));
  await lchown(join(l1, "links", "rel"), 1000, 1000);
  execFileSync("mkfifo", ["-m", "640", join(l1, "fifo")]);
  dir(join(l1, "dev"));
  execFileSync("mknod", ["-m", "666", join(l1, "dev", "zero"), "c", "1", "5"]);
  file(join(l1, "gone", "x"), "x\n");
  file(join(l1, "gone", "keep"), "keep\n");
  file(join(l1, "opaque", "a"), "a\n");
  file(join(l1, "opaque", "b", "deep"), "deep\n");
  file(join(l1, "replaced", "inner"), "inner\n");
  // A setgid directory of another group: a root-owned entry inside must still end up 0:0, not take its group.
  dir(join(l1, "shared"), 0o2775, [0, 50]);
  file(join(l1, "shared", "rootfile"), "root\n", 0o644, [0, 0]);
  dir(join(l1, "shared", "sub"), 0o755, [0, 0]);

  const l2 = join(root, "l2");
  dir(join(l2, "gone"));
  file(join(l2, "gone", ".wh.x"), "");
  dir(join(l2, "opaque"));
  file(join(l2, "opaque", ".wh..wh..opq"), "");
  file(join(l2, "opaque", "c"), "c\n");
  file(join(l2, "replaced"), "now a file\n", 0o640);
  dir(join(l2, "bin"));
  file(join(l2, "bin", "suid"), "suid v2\n", 0o4750);

  const l3 = join(root, "l3");
  dir(join(l3, "data"));
  file(join(l3, "data", "empty", "child"), "child\n"); // a file replaced by a directory
  file(join(l3, "data", "file2"), "two\n", 0o640, [1000, 1000]);
  linkSync(join(l3, "data", "file2"), join(l3, "data", "hard2"));
  dir(join(l3, "links"));
  file(join(l3, "links", ".wh.dangling"), "");
  return [l1, l2, l3];
}

/** What GNU tar gives: extract each layer in order, applying overlay semantics by hand. */
function referenceTree(layers: Layer[], ref: string) {
  mkdirSync(ref);
  for (const layer of layers) {
    const markers: string[] = [];
    const visit = (rel: string) => {
      const name = rel.split("/").pop()!;
      const target = join(ref, rel);
      if (name === ".wh..wh..opq") {
        for (const child of existsSync(dirname(target)) ? readdirSync(dirname(target)) : []) rmSync(join(dirname(target), child), { recursive: true });
        markers.push(target);
      } else if (name.startsWith(".wh.")) {
        rmSync(join(dirname(target), name.slice(4)), { recursive: true, force: true });
        markers.push(target);
      } else {
        const here = lstatSync(target, { throwIfNoEntry: false });
        const mine = lstatSync(join(layer.src, rel));
        if (here && !(here.isDirectory() && mine.isDirectory())) rmSync(target, { recursive: true });
        if (mine.isDirectory()) for (const c of readdirSync(join(layer.src, rel)).sort()) visit(join(rel, c));
      }
    };
    for (const c of readdirSync(layer.src).sort()) visit(c);
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", layer.tar, "-C", ref]);
    for (const m of markers) rmSync(m, { force: true });
  }
}

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  mtime?: number;
  xattrs: Record<string, string>;
}

/** Every path under `root` with what must match, plus the groups of paths that share an inode. */
async function snapshotTree(root: string): Promise<{ nodes: Record<string, Node>; hardlinks: string[][] }> {
  const nodes: Record<string, Node> = {};
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = lstatSync(abs);
      const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : "other";
      const xattrs: Record<string, string> = {};
      if (type !== "symlink") for (const [k, v] of await getXattrs(abs)) if (k.startsWith("user.")) xattrs[k] = Buffer.from(v).toString("hex");
      const node: Node = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs };
      if (type !== "dir") node.mtime = Math.floor(st.mtimeMs / 1000);
      if (type === "file") {
        node.size = st.size;
        node.sha256 = createHash("sha256").update(readFileSync(abs)).digest("hex");
        inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), path]);
      }
      if (type === "symlink") node.link = readlinkSync(abs);
      if (type === "char" || type === "block") node.rdev = st.rdev;
      nodes[path] = node;
      if (type === "dir") await walk(path);
    }
  };
  await walk("");
  return { nodes, hardlinks: [...inodes.values()].filter((g) => g.length > 1).sort() };
}

/** Mounts a read-only view of `chainId` and returns where. */
async function mountView(f: Fixture, key: string, chainId: string): Promise<string> {
  const target = join(f.work, `mnt-${randomBytes(4).toString("hex")}`);
  mkdirSync(target);
  await mountAll(await f.snapshotter.view(key, chainId), target);
  mounted.push(target);
  return target;
}

async function unmountView(f: Fixture, key: string, target: string) {
  await unmount(target);
  mounted.splice(mounted.indexOf(target), 1);
  await f.snapshotter.remove(key);
}

/** No half-made snapshot: no extract snapshot listed, no stray directories in active/ or tmp/. */
async function assertNoLeftovers(f: Fixture) {
  const all = await f.snapshotter.list();
  assert.deepEqual(all.filter((s) => s.name.startsWith("extract-")), []);
  assert.equal(readdirSync(join(f.work, "snapshots", "active")).length, all.filter((s) => s.kind !== "committed").length);
  assert.deepEqual(readdirSync(join(f.work, "snapshots", "tmp")), []);
}

test("unpacks three layers into overlay snapshots identical to GNU tar's extraction with overlay semantics", async () => {
  const f = await setup();
  const sources = await buildSources(join(f.work, "src"));
  const layers = [
    await storeLayer(f, sources[0]!, { gzip: true }),
    await storeLayer(f, sources[1]!, { gzip: false }),
    await storeLayer(f, sources[2]!, { gzip: true }),
  ];
  const diffIds = layers.map((l) => l.diffId);
  const events: UnpackEvent[] = [];
  const { chainId } = await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: layers.map((l) => l.desc), diffIds, imageRef: "test/three:latest", onLayer: (e) => events.push(e) });
  const chain = await chainIds(diffIds);
  assert.equal(chainId, chain[2]);
  assert.deepEqual(events.map((e) => `${e.index}:${e.status}`), ["0:extracting", "0:done", "1:extracting", "1:done", "2:extracting", "2:done"]);
  for (const c of chain) assert.equal((await f.snapshotter.stat(c))?.kind, "committed");
  await assertNoLeftovers(f);

  // Overlay format in the upper directories.
  const l2 = await mountView(f, "l2-view", chain[1]!);
  await unmountView(f, "l2-view", l2);

  const merged = await mountView(f, "verify", chainId);
  referenceTree(layers, join(f.work, "ref"));
  const got = await snapshotTree(merged);
  const want = await snapshotTree(join(f.work, "ref"));
  assert.deepEqual(got, want);
  // Spot checks of what the comparison covers.
  assert.equal(got.nodes["bin/suid"]?.mode, 0o4750);
  assert.equal(got.nodes["tmp"]?.mode, 0o1777);
  assert.deepEqual([got.nodes["etc/secret"]?.uid, got.nodes["etc/secret"]?.mode], [1000, 0o600]);
  assert.equal(got.nodes["gone/x"], undefined, "whited out");
  assert.ok(got.nodes["gone/keep"]);
  assert.deepEqual(Object.keys(got.nodes).filter((p) => p.startsWith("opaque/")), ["opaque/c"], "opaque directory hides the lower one");
  assert.equal(got.nodes["replaced"]?.type, "file");
  assert.equal(got.nodes["data/empty"]?.type, "dir");
  assert.equal(got.nodes["data/everyone"]?.mode, 0o666);
  assert.equal(got.nodes["data/nobody"]?.mode, 0);
  assert.equal(got.nodes["links/dangling"], undefined);
  assert.deepEqual(got.hardlinks, [["data/file1", "data/hard"], ["data/file2", "data/hard2"]]);
  assert.equal(got.nodes["fifo"]?.type, "fifo");
  assert.equal(got.nodes["dev/zero"]?.type, "char");
  assert.equal(got.nodes["data/file1"]?.xattrs["user.note"], Buffer.from("hello").toString("hex"));
  await unmountView(f, "verify", merged);

  // A second unpack of the same image reuses every snapshot.
  const again: UnpackEvent[] = [];
  await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: layers.map((l) => l.desc), diffIds, imageRef: "test/three:latest", onLayer: (e) => again.push(e) });
  assert.deepEqual(again.map((e) => e.status), ["exists", "exists", "exists"]);
});

test("the upper directories hold overlay whiteouts: 0:0 char devices and the opaque xattr", async () => {
  const f = await setup();
  const src = join(f.work, "wh");
  dir(join(src, "d"));
  file(join(src, "d", ".wh.victim"), "");
  dir(join(src, "o"));
  file(join(src, "o", ".wh..wh..opq"), "");
  const layer = await storeLayer(f, src, { gzip: false });
  await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer.desc], diffIds: [layer.diffId], imageRef: "test/wh" });
  const mounts = await f.snapshotter.view("wh-view", layer.diffId);
  assert.deepEqual(mounts[0]?.type, "bind");
  const upper = mounts[0]!.source;
  const wh = lstatSync(join(upper, "d", "victim"));
  assert.ok(wh.isCharacterDevice());
  assert.deepEqual([wh.rdev, wh.uid, wh.gid], [0, 0, 0]);
  assert.equal(existsSync(join(upper, "d", ".wh.victim")), false);
  assert.equal(Buffer.from((await getXattrs(join(upper, "o"))).get("trusted.overlay.opaque") ?? []).toString(), "y");
  await f.snapshotter.remove("wh-view");
});

test("names with .. and absolute names land inside the layer, never on the host", async () => {
  const f = await setup();
  const tag = randomBytes(6).toString("hex");
  const src = join(f.work, "trav");
  file(join(src, "f"), "escaped?\n");
  file(join(src, "g"), "absolute?\n");
  const layer = await storeLayer(f, src, {
    gzip: true,
    members: ["f", "g"],
    tarArgs: ["-P", `--transform=s,^f$,../../../../../../../../tmp/tsctr-escape-${tag},`, `--transform=s,^g$,/etc/tsctr-abs-${tag},`],
  });
  const raw = readFileSync(layer.tar).toString("latin1");
  assert.ok(raw.includes(`../../../../../../../../tmp/tsctr-escape-${tag}`) && raw.includes(`/etc/tsctr-abs-${tag}`), "the archive holds the hostile names");
  await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer.desc], diffIds: [layer.diffId], imageRef: "test/trav" });
  assert.equal(existsSync(`/tmp/tsctr-escape-${tag}`), false);
  assert.equal(existsSync(`/etc/tsctr-abs-${tag}`), false);
  const [m] = await f.snapshotter.view("trav-view", layer.diffId);
  assert.equal(readFileSync(join(m!.source, "tmp", `tsctr-escape-${tag}`), "utf8"), "escaped?\n");
  assert.equal(readFileSync(join(m!.source, "etc", `tsctr-abs-${tag}`), "utf8"), "absolute?\n");
  await f.snapshotter.remove("trav-view");
  await assertNoLeftovers(f);
});

test("within one layer a later entry replaces an earlier one of the same name, whatever it was", async () => {
  const f = await setup();
  const src = join(f.work, "dups");
  file(join(src, "f"), "first\n");
  file(join(src, "d", "inner"), "inner\n");
  mkdirSync(join(src, "l-target"), { recursive: true });
  symlinkSync("l-target", join(src, "l"));
  const layer = await storeLayer(f, src, { gzip: false, members: ["f", "d", "l", "l-target"] });
  // Append second versions under the same names: a file over a file, over a directory, over a symlink.
  rmSync(join(src, "d"), { recursive: true });
  rmSync(join(src, "l"));
  file(join(src, "f"), "second\n", 0o600);
  file(join(src, "d"), "now a file\n");
  file(join(src, "l"), "not a link\n");
  execFileSync("tar", ["--format=posix", "--numeric-owner", "-rf", layer.tar, "-C", src, "f", "d", "l"]);
  const raw = readFileSync(layer.tar);
  const desc: Descriptor = { mediaType: MediaTypes.ociLayer, digest: await digestOf(raw), size: raw.length };
  await f.content.writeBytes(raw, { digest: desc.digest, size: desc.size });
  await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [desc], diffIds: [desc.digest], imageRef: "test/dups" });
  const [m] = await f.snapshotter.view("dups-view", desc.digest);
  const root = m!.source;
  assert.equal(readFileSync(join(root, "f"), "utf8"), "second\n");
  assert.equal(lstatSync(join(root, "f")).mode & 0o7777, 0o600);
  assert.ok(lstatSync(join(root, "d")).isFile(), "the directory was replaced by the file");
  assert.equal(readFileSync(join(root, "d"), "utf8"), "now a file\n");
  assert.ok(lstatSync(join(root, "l")).isFile(), "the symlink was replaced, not written through");
  assert.equal(readFileSync(join(root, "l"), "utf8"), "not a link\n");
  assert.deepEqual(readdirSync(join(root, "l-target")), [], "nothing was written through the old symlink");
  await f.snapshotter.remove("dups-view");
  await assertNoLeftovers(f);
});

test("a symlink in a parent path is resolved inside the layer: a -> / then a/etc/x stays in the layer", async () => {
  const f = await setup();
  const tag = randomBytes(6).toString("hex");
  const src = join(f.work, "symesc");
  mkdirSync(src);
  symlinkSync("/", join(src, "a"));
  symlinkSync("../../../../..", join(src, "b"));
  file(join(src, "x"), "via absolute link\n");
  file(join(src, "y"), "via relative link\n");
  const layer = await storeLayer(f, src, {
    gzip: false,
    members: ["a", "b", "x", "y"],
    tarArgs: [`--transform=s,^x$,a/etc/tsctr-evil-${tag},`, `--transform=s,^y$,b/tmp/tsctr-evil-${tag},`],
  });
  await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer.desc], diffIds: [layer.diffId], imageRef: "test/symesc" });
  assert.equal(existsSync(`/etc/tsctr-evil-${tag}`), false);
  assert.equal(existsSync(`/tmp/tsctr-evil-${tag}`), false);
  const [m] = await f.snapshotter.view("symesc-view", layer.diffId);
  assert.equal(readFileSync(join(m!.source, "etc", `tsctr-evil-${tag}`), "utf8"), "via absolute link\n");
  assert.equal(readFileSync(join(m!.source, "tmp", `tsctr-evil-${tag}`), "utf8"), "via relative link\n");
  assert.equal(readlinkSync(join(m!.source, "a")), "/");
  await f.snapshotter.remove("symesc-view");
});

test("a hardlink to ../../etc/passwd is refused and nothing is committed", async () => {
  const f = await setup();
  const src = join(f.work, "hardesc");
  file(join(src, "t"), "t\n");
  linkSync(join(src, "t"), join(src, "h"));
  const passwdLinks = lstatSync("/etc/passwd").nlink;
  // RS: rewrite only hardlink targets, so the entry "h" links to ../../etc/passwd.
  const layer = await storeLayer(f, src, { gzip: true, members: ["t", "h"], tarArgs: ["-P", "--transform=s,^t$,../../etc/passwd,RS"] });
  assert.ok(readFileSync(layer.tar).toString("latin1").includes("../../etc/passwd"));
  await assert.rejects(
    unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer.desc], diffIds: [layer.diffId], imageRef: "test/hardesc" }),
    (e: unknown) => e instanceof TsctrError && e.kind === "InvalidArgument" && e.message.includes(layer.desc.digest) && /entry "h"/.test(e.message) && /not in the layer/.test(e.message),
  );
  assert.equal(lstatSync("/etc/passwd").nlink, passwdLinks);
  assert.equal(await f.snapshotter.stat(layer.diffId), undefined);
  await assertNoLeftovers(f);
});

test("a diffID mismatch is DataLoss naming the layer, and leaves no snapshot behind", async () => {
  const f = await setup();
  const src = join(f.work, "mismatch");
  file(join(src, "m"), "m\n");
  const layer = await storeLayer(f, src, { gzip: true });
  const wrong = await digestOf("not this layer");
  await assert.rejects(
    unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer.desc], diffIds: [wrong], imageRef: "test/mismatch" }),
    (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && e.message.includes(layer.desc.digest) && /diffID/.test(e.message),
  );
  assert.equal(await f.snapshotter.stat(wrong), undefined);
  await assertNoLeftovers(f);
});

/** A listing of a tree for comparison: type, mode, owner, size, link target and content digest per path. */
function treeListing(root: string): string {
  return execFileSync("sh", ["-c", `cd '${root}' && find . -printf '%p %y %m %U:%G %s %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`], { maxBuffer: 1 << 26 }).toString();
}

for (const engine of ["native", "wasm"] as const) {
  test(`gzip and zstd layers unpack to the same tree with the ${engine} decompression engine`, async () => {
    const before = decompressEngine();
    setDecompressEngine(engine);
    try {
      const f = await setup();
      const src = join(f.work, `engines-${engine}`);
      for (let i = 0; i < 50; i++) file(join(src, `d${i % 5}`, `f${i}`), `${"x".repeat(i * 997)}${i}\n`, 0o640 + (i % 8), [i, i + 1]);
      const gz = await storeLayer(f, src, { gzip: true });
      const zst = execFileSync("zstd", ["-q", "-c", "-3", gz.tar], { maxBuffer: 1 << 30 });
      const zdesc: Descriptor = { mediaType: MediaTypes.ociLayerZstd, digest: await digestOf(zst), size: zst.length };
      await f.content.writeBytes(zst, { digest: zdesc.digest, size: zdesc.size });
      const expected = treeListing(src);
      for (const layer of [gz.desc, zdesc]) {
        const { chainId } = await unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [layer], diffIds: [gz.diffId], imageRef: "test/engines" });
        const committed = join(f.snapshotter.root, "committed", createHash("sha256").update(chainId).digest("hex"), "fs");
        assert.equal(treeListing(committed), expected, `${layer.mediaType} with ${engine}`);
        await f.snapshotter.remove(chainId);
      }
      await assertNoLeftovers(f);
    } finally {
      setDecompressEngine(before);
    }
  });
}

test("a corrupt zstd layer and a corrupt gzip layer are DataLoss and leave nothing behind", async () => {
  const f = await setup();
  const zstd = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
  const zdesc: Descriptor = { mediaType: MediaTypes.ociLayerZstd, digest: await digestOf(zstd), size: zstd.length };
  await f.content.writeBytes(zstd, { digest: zdesc.digest, size: zdesc.size });
  await assert.rejects(
    unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [zdesc], diffIds: [await digestOf("z")], imageRef: "test/zstd" }),
    (e: unknown) => e instanceof TsctrError && (e.kind === "DataLoss" || e.kind === "NotImplemented") && /zstd/.test(e.message),
  );
  const gz = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), randomBytes(4000)]);
  const gdesc: Descriptor = { mediaType: MediaTypes.ociLayerGzip, digest: await digestOf(gz), size: gz.length };
  await f.content.writeBytes(gz, { digest: gdesc.digest, size: gdesc.size });
  await assert.rejects(
    unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [gdesc], diffIds: [await digestOf("g")], imageRef: "test/gz" }),
    (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss",
  );
  await assertNoLeftovers(f);
});

test("the snapshotter refuses a missing parent and removing a parent, and commits atomically", async () => {
  const f = await setup();
  const s = f.snapshotter;
  await assert.rejects(s.prepare("orphan", "sha256:missing"), (e: unknown) => e instanceof TsctrError && e.kind === "NotFound");
  await s.prepare("base-key");
  writeFileSync(join(await s.upperDir("base-key"), "f"), "base\n");
  await s.commit("base", "base-key");
  assert.equal(await s.stat("base-key"), undefined);
  assert.equal((await s.stat("base"))?.kind, "committed");
  const mounts = await s.prepare("child", "base");
  assert.equal(mounts[0]?.type, "overlay");
  assert.ok(mounts[0]!.options.some((o) => o.startsWith("upperdir=")) && mounts[0]!.options.some((o) => o.startsWith("lowerdir=")));
  await assert.rejects(s.remove("base"), (e: unknown) => e instanceof TsctrError && e.kind === "FailedPrecondition");
  await assert.rejects(s.prepare("child", "base"), (e: unknown) => e instanceof TsctrError && e.kind === "AlreadyExists");
  // A writable container snapshot mounts, takes writes in its upper dir, and leaves the layer untouched.
  const target = join(f.work, "rw");
  mkdirSync(target);
  await mountAll(mounts, target);
  mounted.push(target);
  writeFileSync(join(target, "f"), "changed\n");
  await unmount(target);
  mounted.splice(mounted.indexOf(target), 1);
  assert.equal(readFileSync(join(await s.upperDir("child"), "f"), "utf8"), "changed\n");
  const [view] = await s.view("base-view", "base");
  assert.equal(readFileSync(join(view!.source, "f"), "utf8"), "base\n");
  await s.remove("base-view");
  await s.remove("child");
  await s.remove("base");
  assert.equal(await s.stat("base"), undefined);
  await assertNoLeftovers(f);
});
