/**
 * The streaming tar reader against archives written by GNU tar (posix and gnu formats), read back in
 * chunks of several sizes, and against corrupt, truncated and oversized input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import process from "node:process";
import { mkdtemp, mkdir, readFile, writeFile, chmod, chown, symlink, link, lstat, readlink, utimes, lutimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTar, type TarEntry } from "../../src/archive/tar_reader.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";

let dir = "";
const longDir = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}/${"g".repeat(60)}/${"h".repeat(60)}`;
const longFile = `${longDir}/${"x".repeat(120)}.txt`; // > 100 bytes as a name, > 255 in all
const longTarget = `../${"t".repeat(150)}/target`;

/** Builds the source tree and its archives once, on first use (node:test's before/after are not in Deno). */
let fixture: Promise<void> | undefined;
function setup(): Promise<void> {
  fixture ??= makeFixture();
  return fixture;
}

async function makeFixture(): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), "tsctr-tar-"));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", cleanup); // Node
  (globalThis as unknown as { addEventListener?: (type: string, f: () => void) => void }).addEventListener?.("unload", cleanup); // Deno
  const src = join(dir, "src");
  await mkdir(join(src, "tree", longDir), { recursive: true });
  await writeFile(join(src, "tree", "hello.txt"), "hello, tar\n");
  await writeFile(join(src, "tree", "empty"), "");
  await writeFile(join(src, "tree", longFile), "deep\n");
  await writeFile(join(src, "tree", "big.bin"), Buffer.alloc(20_000, 7)); // spans many chunks
  await writeFile(join(src, "tree", "suid"), "#!/bin/sh\n");
  await chmod(join(src, "tree", "suid"), 0o4755);
  await writeFile(join(src, "tree", "owned"), "mine\n");
  await chown(join(src, "tree", "owned"), 1000, 1000);
  await chmod(join(src, "tree", "owned"), 0o600);
  await mkdir(join(src, "tree", "sticky"));
  await chmod(join(src, "tree", "sticky"), 0o1777);
  await symlink(longTarget, join(src, "tree", "longlink"));
  await symlink("hello.txt", join(src, "tree", "shortlink"));
  await link(join(src, "tree", "hello.txt"), join(src, "tree", "hard"));
  execFileSync("mkfifo", [join(src, "tree", "fifo")]);
  execFileSync("mknod", [join(src, "tree", "null"), "c", "1", "3"]);
  execFileSync("setfattr", ["-n", "user.blob", "-v", "0x00ff0a3d20", join(src, "tree", "hello.txt")]);
  await utimes(join(src, "tree", "hello.txt"), 1_600_000_000, 1_600_000_000);
  await lutimes(join(src, "tree", "shortlink"), 1_500_000_000, 1_500_000_000);
  execFileSync("tar", ["--format=posix", "--xattrs", "--xattrs-include=user.*", "-cf", join(dir, "posix.tar"), "-C", src, "tree"]);
  execFileSync("tar", ["--format=gnu", "-cf", join(dir, "gnu.tar"), "-C", src, "tree"]);
  execFileSync("tar", ["--format=gnu", "--owner=big:3000000", "--group=big:3000001", "-cf", join(dir, "bigid.tar"), "-C", src, "tree/hello.txt"]);
}

/** A web stream of `bytes` cut into `size`-byte chunks (to exercise headers and bodies split across chunks). */
function streamOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(off, off + size));
      off += size;
    },
  });
}

interface Read {
  entry: TarEntry;
  data: Buffer;
}

async function readAll(bytes: Uint8Array, chunk: number, opts = {}): Promise<Map<string, Read>> {
  const out = new Map<string, Read>();
  for await (const entry of readTar(streamOf(bytes, chunk), opts)) {
    const parts: Uint8Array[] = [];
    for await (const b of entry.body) parts.push(Buffer.from(b)); // copy: views are only valid until the next entry
    out.set(entry.path.replace(/\/$/, ""), { entry, data: Buffer.concat(parts) });
  }
  return out;
}

/** Checks every archived path against the source tree it came from. */
async function checkAgainstSource(entries: Map<string, Read>, opts: { xattrs: boolean }) {
  const src = join(dir, "src");
  const expected = execFileSync("find", ["tree"], { cwd: src, encoding: "utf8" }).trim().split("\n");
  assert.deepEqual([...entries.keys()].sort(), expected.sort());
  let hardlinks = 0;
  for (const [path, { entry, data }] of entries) {
    const st = await lstat(join(src, path));
    assert.equal(entry.mode, st.mode & 0o7777, `${path} mode`);
    assert.equal(entry.uid, st.uid, `${path} uid`);
    assert.equal(entry.gid, st.gid, `${path} gid`);
    assert.equal(Math.floor(entry.mtime), Math.floor(st.mtimeMs / 1000), `${path} mtime`);
    if (entry.type === "hardlink") {
      hardlinks++;
      assert.ok(["tree/hello.txt", "tree/hard"].includes(entry.linkname) && entry.linkname !== path, `${path} link`);
      continue;
    }
    const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : "?";
    assert.equal(entry.type, type, `${path} type`);
    if (type === "file") {
      assert.equal(entry.size, st.size, `${path} size`);
      assert.deepEqual(data, await readFile(join(src, path)), `${path} content`);
    } else {
      assert.equal(data.length, 0, `${path} has no body`);
    }
    if (type === "symlink") assert.equal(entry.linkname, await readlink(join(src, path)), `${path} target`);
    if (type === "char") assert.deepEqual([entry.devmajor, entry.devminor], [1, 3]);
  }
  assert.equal(hardlinks, 1);
  const hello = entries.get("tree/hello.txt") ?? entries.get("tree/hard");
  if (opts.xattrs) assert.deepEqual([...(hello?.entry.xattrs.get("user.blob") ?? [])], [0, 0xff, 0x0a, 0x3d, 0x20]);
}

test("reads a POSIX (PAX) archive from GNU tar: long names, long link targets, xattrs, modes, owners", async () => {
  await setup();
  const bytes = await readFile(join(dir, "posix.tar"));
  for (const chunk of [1 << 20, 1, 7, 513]) {
    const entries = await readAll(bytes, chunk);
    await checkAgainstSource(entries, { xattrs: true });
    assert.equal(entries.get(`tree/${longFile}`)?.data.toString(), "deep\n");
    assert.equal(entries.get("tree/longlink")?.entry.linkname, longTarget);
  }
});

test("reads a GNU archive: long names and link targets through L/K records", async () => {
  await setup();
  const bytes = await readFile(join(dir, "gnu.tar"));
  assert.ok(bytes.includes("././@LongLink"), "the archive uses GNU long-name records");
  for (const chunk of [1 << 20, 3, 512]) {
    const entries = await readAll(bytes, chunk);
    await checkAgainstSource(entries, { xattrs: false });
    assert.equal(entries.get("tree/longlink")?.entry.linkname, longTarget);
  }
});

test("reads GNU base-256 numbers (ids too large for octal)", async () => {
  await setup();
  const entries = await readAll(await readFile(join(dir, "bigid.tar")), 4096);
  const e = entries.get("tree/hello.txt")!.entry;
  assert.deepEqual([e.uid, e.gid], [3000000, 3000001]);
});

test("skips bodies that are not read and drains the stream after the end marker", async () => {
  await setup();
  const bytes = await readFile(join(dir, "posix.tar"));
  let pulled = 0;
  const counting = streamOf(bytes, 1000).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        pulled += chunk.length;
        c.enqueue(chunk);
      },
    }),
  );
  const paths: string[] = [];
  for await (const e of readTar(counting)) paths.push(e.path);
  assert.ok(paths.includes("tree/big.bin"));
  assert.equal(pulled, bytes.length, "every byte (including record padding) was read");
});

test("a corrupt header checksum is DataLoss naming the entry", async () => {
  await setup();
  const bytes = new Uint8Array(await readFile(join(dir, "gnu.tar")));
  bytes[0] = bytes[0]! ^ 0x01; // first header's name: "tree/" becomes "uree/"
  await assert.rejects(readAll(bytes, 4096), (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /checksum/.test(e.message) && /uree/.test(e.message));
});

test("header checksums: the unsigned sum, or the signed one of historic writers; anything else is DataLoss", async () => {
  // One ustar header for "é-file" (bytes above 127 make the two sums differ), an empty body, the end marker.
  const header = new Uint8Array(512);
  const put = (off: number, s: string) => header.set(new TextEncoder().encode(s), off);
  put(0, "é-file");
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, "00000000000\0");
  put(136, "00000000000\0");
  header[156] = 0x30;
  put(257, "ustar\0" + "00");
  let unsigned = 8 * 32;
  let signed = 8 * 32;
  header.forEach((b, i) => {
    if (i >= 148 && i < 156) return;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  });
  assert.notEqual(unsigned, signed);
  const archive = (sum: number) => {
    const h = header.slice();
    h.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
    const out = new Uint8Array(512 * 3);
    out.set(h);
    return out;
  };
  for (const sum of [unsigned, signed]) {
    const entries = await readAll(archive(sum), 512);
    assert.deepEqual([...entries.keys()], ["é-file"], `checksum ${sum}`);
  }
  await assert.rejects(readAll(archive(unsigned + 1), 512), (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /checksum mismatch/.test(e.message));
});

test("a truncated archive is DataLoss, inside a body or inside a header", async () => {
  await setup();
  const bytes = await readFile(join(dir, "gnu.tar"));
  const big = bytes.indexOf(Buffer.alloc(64, 7)); // inside big.bin's data
  assert.ok(big > 0);
  await assert.rejects(readAll(bytes.subarray(0, big + 1000), 4096), (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /truncated/.test(e.message));
  const nextHeader = big + Math.ceil(20_000 / 512) * 512; // big.bin's data starts on a block boundary
  await assert.rejects(readAll(bytes.subarray(0, nextHeader + 100), 4096), (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /truncated inside a header/.test(e.message));
});

/** A ustar header block with a valid checksum. */
function header(name: string, type: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(new TextEncoder().encode(s), off);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, `${size.toString(8).padStart(11, "0")}\0`);
  put(136, "00000000000\0");
  put(156, type);
  put(257, "ustar\x0000");
  put(148, "        ");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

test("an oversized PAX header is refused before it is buffered", async () => {
  await setup();
  const size = 2 << 20;
  const pax = header("PaxHeaders/huge", "x", size);
  const body = new Uint8Array(size + 1024); // the record itself never gets parsed
  const bytes = Buffer.concat([pax, body]);
  await assert.rejects(readAll(bytes, 65536), (e: unknown) => e instanceof TsctrError && e.kind === "InvalidArgument" && /PaxHeaders\/huge/.test(e.message) && /exceeds/.test(e.message));
  // The limit is configurable; GNU tar's own PAX records trip a small one.
  await assert.rejects(readAll(await readFile(join(dir, "posix.tar")), 4096, { maxHeaderBytes: 16 }), (e: unknown) => e instanceof TsctrError && e.kind === "InvalidArgument");
});

test("a malformed PAX record is DataLoss", async () => {
  await setup();
  const rec = new TextEncoder().encode("99 path=x\n");
  const bytes = Buffer.concat([header("PaxHeaders/bad", "x", rec.length), rec, new Uint8Array(512 - rec.length), header("file", "0", 0), new Uint8Array(1024)]);
  await assert.rejects(readAll(bytes, 512), (e: unknown) => e instanceof TsctrError && e.kind === "DataLoss" && /PAX/.test(e.message));
});

test("PAX path, size and global headers apply as the standard says", async () => {
  await setup();
  const enc = new TextEncoder();
  const rec = (k: string, v: string) => {
    const body = ` ${k}=${v}\n`;
    let n = body.length + 1;
    while (`${n}${body}`.length !== n) n++;
    return `${n}${body}`;
  };
  const padTo = (b: Uint8Array) => Buffer.concat([b, new Uint8Array((512 - (b.length % 512)) % 512)]);
  const g = enc.encode(rec("uid", "42"));
  const x = enc.encode(rec("path", "a/very/long/" + "n".repeat(200)) + rec("mtime", "1700000000.25"));
  const data = enc.encode("payload");
  const bytes = Buffer.concat([
    header("g", "g", g.length), padTo(g),
    header("x", "x", x.length), padTo(x),
    header("short", "0", data.length), padTo(data),
    header("second", "0", 0),
    new Uint8Array(1024),
  ]);
  const entries = await readAll(bytes, 100);
  const first = entries.get("a/very/long/" + "n".repeat(200))!;
  assert.equal(first.data.toString(), "payload");
  assert.equal(first.entry.mtime, 1700000000.25);
  assert.equal(first.entry.uid, 42);
  assert.equal(entries.get("second")!.entry.uid, 42, "a global header applies to every later entry");
  assert.equal(entries.get("second")!.entry.mtime, 0, "a per-entry header applies to one entry");
});
