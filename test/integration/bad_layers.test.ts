/**
 * Hostile layers end to end: hand-made tar bytes (optionally gzipped, sometimes corrupted) go into the real
 * content store and through `unpackLayers` into the real overlay snapshotter. Every refused layer must fail
 * with a typed one-line error naming the layer digest and the entry, commit nothing, and leave active/ and
 * tmp/ empty; every accepted layer must keep all its bytes inside its snapshot. A sentinel directory next
 * to the snapshotter (and /, /etc, /tmp, /dev) must never see a file named after the test's random marker.
 * (unpack.test.ts covers GNU-tar-made traversal names, a -> / parents and ../../etc/passwd hardlinks;
 * tar_reader.test.ts covers the reader alone. Nothing here repeats them.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { openLocalStore } from "../../src/content/mod.ts";
import type { ContentStore } from "../../src/content/types.ts";
import { digestOf, type Digest } from "../../src/digest/mod.ts";
import { TsctrError, type ErrorKind } from "../../src/errdefs/mod.ts";
import { MediaTypes, type Descriptor } from "../../src/images/types.ts";
import { OverlaySnapshotter } from "../../src/snapshots/overlay/mod.ts";
import { unpackLayers } from "../../src/unpack/unpacker.ts";

// ---------------------------------------------------------------------------------------------------------
// A small tar writer that can lie: every header field is set by hand, the checksum can be overridden.

const enc = new TextEncoder();

interface Hdr {
  name: string | Uint8Array;
  /** "0" file, "1" hardlink, "2" symlink, "3" char, "4" block, "5" dir, "x" PAX, "g" PAX global. */
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** A number, or the raw text of the 12-byte size field. */
  size?: number | string;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Replaces the computed checksum. */
  checksum?: number;
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, "0")}\0`;

/** One 512-byte ustar header ("ustar\0" "00") with a correct checksum unless told otherwise. */
function header(h: Hdr): Uint8Array {
  const b = new Uint8Array(512);
  const put = (off: number, v: string | Uint8Array, max: number) => {
    const bytes = typeof v === "string" ? enc.encode(v) : v;
    assert.ok(bytes.length <= max, `tar field at ${off} too long`);
    b.set(bytes, off);
  };
  put(0, h.name, 100);
  put(100, octal(h.mode ?? 0o644, 8), 8);
  put(108, octal(h.uid ?? 0, 8), 8);
  put(116, octal(h.gid ?? 0, 8), 8);
  put(124, typeof h.size === "string" ? h.size : octal(h.size ?? 0, 12), 12);
  put(136, octal(h.mtime ?? 1_700_000_000, 12), 12);
  put(156, h.type ?? "0", 1);
  put(157, h.linkname ?? "", 100);
  put(257, "ustar\0", 6);
  put(263, "00", 2);
  put(265, "root", 32);
  put(297, "root", 32);
  put(329, octal(h.devmajor ?? 0, 8), 8);
  put(337, octal(h.devminor ?? 0, 8), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  put(148, `${(h.checksum ?? sum).toString(8).padStart(6, "0")}\0 `, 8);
  return b;
}

const padding = (n: number) => new Uint8Array((512 - (n % 512)) % 512);

/** A header followed by its data, padded to a block. */
function entry(h: Hdr, data: string | Uint8Array = ""): Uint8Array {
  const body = typeof data === "string" ? enc.encode(data) : data;
  return Buffer.concat([header({ size: body.length, ...h }), body, padding(body.length)]);
}

const file = (name: string, data: string | Uint8Array = "", h: Partial<Hdr> = {}) => entry({ name, type: "0", ...h }, data);
const dirEntry = (name: string, h: Partial<Hdr> = {}) => entry({ name, type: "5", mode: 0o755, ...h });
const symlink = (name: string, target: string) => entry({ name, type: "2", mode: 0o777, linkname: target });
const hardlink = (name: string, target: string) => entry({ name, type: "1", linkname: target });

/** A well-formed PAX record "<len> key=value\n" (the length counts itself). */
function rec(key: string, value: string | Uint8Array): Uint8Array {
  const v = typeof value === "string" ? enc.encode(value) : value;
  const tail = Buffer.concat([enc.encode(` ${key}=`), v, enc.encode("\n")]);
  let n = tail.length + 1;
  while (String(n).length + tail.length !== n) n++;
  return Buffer.concat([enc.encode(String(n)), tail]);
}

/** A PAX extended header ('x') holding `records` (well-formed or not) as its data. */
function pax(records: (Uint8Array | string)[], name = "PaxHeaders/x"): Uint8Array {
  const data = Buffer.concat(records.map((r) => (typeof r === "string" ? enc.encode(r) : r)));
  return entry({ name, type: "x" }, data);
}

const END = new Uint8Array(1024);
const tar = (...parts: Uint8Array[]) => Buffer.concat([...parts, END]);

// ---------------------------------------------------------------------------------------------------------
// One content store and snapshotter for the file, plus the sentinel that must stay empty.

interface Fixture {
  work: string;
  content: ContentStore;
  snapshotter: OverlaySnapshotter;
  /** An empty directory next to the snapshotter's root: hostile layers aim at it. */
  sentinel: string;
  /** A host file next to the snapshotter: hostile hardlinks aim at it. */
  victim: string;
  /** Random; no file named after it may appear outside a snapshot. */
  marker: string;
}

let fixture: Promise<Fixture> | undefined;

function setup(): Promise<Fixture> {
  fixture ??= (async () => {
    const work = await mkdtemp(join(tmpdir(), "tsctr-bad-"));
    const cleanup = () => rmSync(work, { recursive: true, force: true });
    process.once("exit", cleanup); // Node
    (globalThis as unknown as { addEventListener?: (type: string, f: () => void) => void }).addEventListener?.("unload", cleanup); // Deno
    const marker = `tsctr-mark-${randomBytes(6).toString("hex")}`;
    const sentinel = join(work, `sentinel-${marker}`);
    mkdirSync(sentinel);
    const victim = join(work, `victim-${marker}`);
    writeFileSync(victim, "host file\n");
    return { work, content: await openLocalStore(join(work, "content")), snapshotter: await OverlaySnapshotter.open(join(work, "snapshots")), sentinel, victim, marker };
  })();
  return fixture;
}

/** "../" repeated enough to climb from an active snapshot's fs directory to the fixture's work directory. */
const UP = "../../../../";

interface Stored {
  desc: Descriptor;
  diffId: Digest;
}

/** Stores `tarBytes` (gzipped unless `gzip` is false; `corrupt` edits the blob) with the tar's true diffID. */
async function store(f: Fixture, tarBytes: Uint8Array, opts: { gzip?: boolean; corrupt?: (blob: Buffer) => Buffer } = {}): Promise<Stored> {
  const gzip = opts.gzip ?? true;
  let blob: Buffer = gzip ? gzipSync(tarBytes) : Buffer.from(tarBytes);
  if (opts.corrupt) blob = opts.corrupt(Buffer.from(blob));
  const desc: Descriptor = { mediaType: gzip ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer, digest: await digestOf(blob), size: blob.length };
  await f.content.writeBytes(blob, { digest: desc.digest, size: desc.size });
  return { desc, diffId: await digestOf(tarBytes) };
}

const unpack = (f: Fixture, l: Stored) => unpackLayers({ content: f.content, snapshotter: f.snapshotter, layers: [l.desc], diffIds: [l.diffId], imageRef: "test/bad" });

/** Nothing escaped: the sentinel is empty, the victim untouched, and no file named after the marker is on the host. */
function assertNothingOutside(f: Fixture) {
  assert.deepEqual(readdirSync(f.sentinel), [], "the sentinel next to the snapshotter stays empty");
  assert.equal(readFileSync(f.victim, "utf8"), "host file\n");
  assert.equal(lstatSync(f.victim).nlink, 1, "no hardlink to the host file");
  for (const d of ["/", "/etc", "/tmp", "/dev", "/root", f.work, join(f.work, "snapshots")]) {
    const hits = readdirSync(d).filter((n) => n.includes(f.marker) && join(d, n) !== f.sentinel && join(d, n) !== f.victim);
    assert.deepEqual(hits, [], `no marker file in ${d}`);
  }
}

/** No half-made snapshot: active/ and tmp/ are empty and nothing but earlier successes is committed. */
async function assertNoLeftovers(f: Fixture, refused?: Stored) {
  assert.deepEqual(readdirSync(join(f.work, "snapshots", "active")), []);
  assert.deepEqual(readdirSync(join(f.work, "snapshots", "tmp")), []);
  assert.ok((await f.snapshotter.list()).every((s) => s.kind === "committed"));
  if (refused) assert.equal(await f.snapshotter.stat(refused.diffId), undefined, "the refused layer is not committed");
}

interface Refusal {
  kind: ErrorKind;
  /**
   * The entry the message must name as `entry "…"` (or `after entry "…"`), escaped, cut after 256 characters;
   * or a pattern, where the place depends on buffering (gzip errors surface when the decompressor gets there).
   */
  entry: string | RegExp;
  /** What the message must also say. */
  detail: RegExp;
}

/** Unpacks `l` expecting a refusal as described, then checks that nothing is left anywhere. */
async function refuse(f: Fixture, l: Stored, want: Refusal): Promise<string> {
  let message = "";
  await assert.rejects(unpack(f, l), (e: unknown) => {
    assert.ok(e instanceof TsctrError, `a TsctrError, got ${String(e)}`);
    message = e.message;
    assert.equal(e.kind, want.kind, message);
    assert.ok(message.includes(l.desc.digest), `names the layer: ${message}`);
    if (want.entry instanceof RegExp) {
      assert.match(message, want.entry);
    } else {
      const named = want.entry.length > 256 ? `entry ${JSON.stringify(`${want.entry.slice(0, 256)}…`)}` : `entry ${JSON.stringify(want.entry)}`;
      assert.ok(message.includes(named), `names ${named}: ${message}`);
    }
    assert.match(message, want.detail);
    assert.ok(!/[\n\r\0]/.test(message), `one line: ${JSON.stringify(message)}`);
    assert.ok(message.length < 1200, `short: ${message.length} characters`);
    return true;
  });
  await assertNoLeftovers(f, l);
  assertNothingOutside(f);
  return message;
}

/** Unpacks `l` expecting success and returns the committed layer's directory (read through a view). */
async function accept(f: Fixture, l: Stored, check: (fs: string) => void | Promise<void>): Promise<void> {
  const { chainId } = await unpack(f, l);
  assert.equal(chainId, l.diffId);
  const key = `view-${randomBytes(4).toString("hex")}`;
  const [m] = await f.snapshotter.view(key, chainId);
  try {
    assert.equal(m?.type, "bind");
    await check(m!.source);
  } finally {
    await f.snapshotter.remove(key);
  }
  await assertNoLeftovers(f);
  assertNothingOutside(f);
}

/**
 * Where a gzip error is reported depends on buffering (the decompressor may be ahead of the tar reader, or
 * errors may drop queued output), so the place is a pattern; both engines' prefixes are accepted
 * ("decompress" for node:zlib, "gunzip" for the WASM engine, TSCTR_DECOMPRESS_ENGINE=wasm).
 */
const gzipAt = (entries: string) => new RegExp(`: (before the first entry|(after )?entry "(${entries})"): (decompress|gunzip) layer sha256:[0-9a-f]{64}: `);

/** A payload big enough that gzip output spans several stream chunks. */
const noise = (n: number) => randomBytes(n).toString("base64").slice(0, n);

// ---------------------------------------------------------------------------------------------------------
// Compression

test("a truncated gzip stream is DataLoss naming the layer and the entry being read, and nothing stays", async () => {
  const f = await setup();
  const big = noise(300_000);
  const t = tar(dirEntry("d/"), file("d/big", big), file("d/after", "after\n"));
  const l = await store(f, t, { corrupt: (b) => b.subarray(0, Math.floor(b.length / 2)) });
  await refuse(f, l, { kind: "DataLoss", entry: gzipAt("d|d/big"), detail: /unexpected end of (file|data)/ });
});

test("gzip truncated between members, or inside the trailer, is DataLoss", async () => {
  const f = await setup();
  const t = tar(file("one", "1\n"), file("two", "2\n"));
  // The trailer (CRC32 + ISIZE) cut short: every tar byte was inflated already.
  const l = await store(f, t, { corrupt: (b) => b.subarray(0, b.length - 3) });
  await refuse(f, l, { kind: "DataLoss", entry: gzipAt("one|two"), detail: /unexpected end of (file|data)/ });
});

test("corrupt deflate data is DataLoss", async () => {
  const f = await setup();
  const t = tar(file("a", noise(200_000)), file("b", "b\n"));
  const l = await store(f, t, {
    corrupt: (b) => {
      for (let i = 2000; i < 2100; i++) b[i] = b[i]! ^ 0x5a;
      return b;
    },
  });
  await refuse(f, l, { kind: "DataLoss", entry: gzipAt("a"), detail: /gzip data is corrupt|gunzip layer / });
});

test("a wrong gzip CRC32 or ISIZE is DataLoss after the last entry, though every tar byte is intact", async () => {
  const f = await setup();
  const t = tar(file("x", "payload\n"), file("y", "more\n"));
  const crc = await store(f, t, {
    corrupt: (b) => {
      b[b.length - 8] = b[b.length - 8]! ^ 0xff;
      return b;
    },
  });
  const anywhere = gzipAt("x|y");
  await refuse(f, crc, { kind: "DataLoss", entry: anywhere, detail: /incorrect data check|bad CRC/ });
  const isize = await store(f, t, {
    corrupt: (b) => {
      b[b.length - 1] = b[b.length - 1]! ^ 0x01;
      return b;
    },
  });
  await refuse(f, isize, { kind: "DataLoss", entry: anywhere, detail: /incorrect length check|bad length \(ISIZE\)/ });
});

// ---------------------------------------------------------------------------------------------------------
// Tar structure

test("a bad tar header checksum is DataLoss naming the entry, after earlier entries were written", async () => {
  const f = await setup();
  const bad = entry({ name: `bad-${f.marker}`, type: "0", checksum: 12345 }, "x");
  const l = await store(f, tar(file("good", "good\n"), bad));
  await refuse(f, l, { kind: "DataLoss", entry: `bad-${f.marker}`, detail: /checksum mismatch/ });
});

test("a size field that runs past the end of the archive is DataLoss naming the entry", async () => {
  const f = await setup();
  // The header says 100000 bytes; 700 follow and the archive ends. The name has a newline in it, which
  // the one-line message must escape.
  const t = Buffer.concat([file("first", "1\n"), header({ name: "evil\nname", size: 100_000 }), enc.encode("z".repeat(700))]);
  const l = await store(f, t, { gzip: false });
  await refuse(f, l, { kind: "DataLoss", entry: "evil\nname", detail: /truncated/ });
  // The same, compressed, and with a size beyond any real file (octal 77777777777 = 8 GiB).
  const huge = Buffer.concat([header({ name: "huge", size: "77777777777\0" }), enc.encode("z".repeat(5000))]);
  await refuse(f, await store(f, huge), { kind: "DataLoss", entry: "huge", detail: /truncated/ });
});

test("an archive cut inside a header is DataLoss naming the entry before it", async () => {
  const f = await setup();
  const t = Buffer.concat([file("whole", "whole\n"), header({ name: "cut" }).subarray(0, 300)]);
  await refuse(f, await store(f, t, { gzip: false }), { kind: "DataLoss", entry: "whole", detail: /truncated inside a header/ });
});

test("a size field that is not octal is DataLoss", async () => {
  const f = await setup();
  const t = tar(header({ name: "nonoctal", size: "0000000009x\0" }));
  await refuse(f, await store(f, t), { kind: "DataLoss", entry: "nonoctal", detail: /invalid octal size/ });
});

// ---------------------------------------------------------------------------------------------------------
// PAX records that lie

test("a PAX record whose length field is too long or too short is DataLoss", async () => {
  const f = await setup();
  // "30 path=a\n" is 10 bytes: the record would run past the header's data.
  const long = tar(pax(["30 path=a\n"], "PaxHeaders/long"), file("plain", "p\n"));
  await refuse(f, await store(f, long), { kind: "DataLoss", entry: "PaxHeaders/long", detail: /malformed PAX record/ });
  // "8 path=abc\n" ends before its newline.
  const short = tar(pax(["8 path=abc\n"], "PaxHeaders/short"), file("plain", "p\n"));
  await refuse(f, await store(f, short), { kind: "DataLoss", entry: "PaxHeaders/short", detail: /malformed PAX record/ });
  // A length of 13 digits, far past the data.
  const digits = tar(pax(["9999999999999 path=a\n"], "PaxHeaders/digits"), file("plain", "p\n"));
  await refuse(f, await store(f, digits), { kind: "DataLoss", entry: "PaxHeaders/digits", detail: /malformed PAX record/ });
});

test("a PAX record without '=' is DataLoss", async () => {
  const f = await setup();
  const t = tar(pax([rec("uid", "0"), "12 pathname\n"], "PaxHeaders/noeq"), file("plain", "p\n"));
  await refuse(f, await store(f, t), { kind: "DataLoss", entry: "PaxHeaders/noeq", detail: /no key/ });
});

test("a PAX size= that contradicts the header is DataLoss either way", async () => {
  const f = await setup();
  // size= larger than the data that follows: the reader runs into the end of the archive.
  const more = Buffer.concat([pax([rec("size", "5000")]), file("liar-more", "short data\n")]);
  await refuse(f, await store(f, more), { kind: "DataLoss", entry: "liar-more", detail: /truncated/ });
  // size= smaller: the rest of the data is then read as the next header, whose checksum cannot match.
  const less = tar(pax([rec("size", "3")]), file("liar-less", "z".repeat(1500)));
  await refuse(f, await store(f, less), { kind: "DataLoss", entry: "z".repeat(100), detail: /checksum/ });
});

test("a PAX path= or linkpath= with a NUL byte is refused, as Go's archive/tar does", async () => {
  const f = await setup();
  const path = tar(pax([rec("path", `a${"\0"}/../../${f.marker}`)]), file("nulpath", "x\n"));
  await refuse(f, await store(f, path), { kind: "DataLoss", entry: "nulpath", detail: /NUL/ });
  const link = tar(pax([rec("linkpath", `/etc\0${f.marker}`)]), symlink("nullink", "x"));
  await refuse(f, await store(f, link), { kind: "DataLoss", entry: "nullink", detail: /NUL/ });
});

test("negative or huge PAX numbers are refused", async () => {
  const f = await setup();
  const cases: [string, string, ErrorKind, RegExp][] = [
    ["size", "-1", "DataLoss", /invalid PAX size/],
    ["size", "99999999999999999999", "DataLoss", /invalid PAX size/],
    ["size", "9007199254740993", "DataLoss", /PAX size/],
    ["uid", "-5", "DataLoss", /invalid PAX uid/],
    ["gid", "1e9", "DataLoss", /invalid PAX gid/],
    ["uid", "4294967296", "InvalidArgument", /owner 4294967296:0 is out of range/],
    ["mtime", "12abc", "DataLoss", /invalid PAX mtime/],
  ];
  for (const [key, value, kind, detail] of cases) {
    const name = `num-${key}-${value}`;
    await refuse(f, await store(f, tar(pax([rec(key, value)]), file(name, "n\n"))), { kind, entry: name, detail });
  }
});

test("out-of-range PAX mtimes are clamped to the epoch, as containerd does, not applied as garbage", async () => {
  const f = await setup();
  const t = tar(pax([rec("mtime", "99999999999999999999")]), file("future", "f\n"), pax([rec("mtime", "-86400.5")]), file("past", "p\n"), file("normal", "n\n", { mtime: 1_600_000_000 }));
  await accept(f, await store(f, t), (fs) => {
    assert.equal(lstatSync(join(fs, "future")).mtimeMs, 0);
    assert.equal(lstatSync(join(fs, "past")).mtimeMs, 0);
    assert.equal(lstatSync(join(fs, "normal")).mtimeMs, 1_600_000_000_000);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Names and links that aim outside

test("hand-made .. and absolute names, in entries and in hardlink targets, land inside", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(
    dirEntry("../../../"), // the root itself: ignored
    file(`${UP}sentinel-${m}/up`, "up\n"),
    file(`/${f.sentinel.slice(1)}/abs`, "abs\n"),
    file(`a/../../../../${m}`, "folded\n"),
    hardlink(`hl-${m}`, `../../../../../${m}`),
  );
  await accept(f, await store(f, t), (fs) => {
    assert.equal(readFileSync(join(fs, `sentinel-${m}`, "up"), "utf8"), "up\n");
    assert.equal(readFileSync(join(fs, f.sentinel, "abs"), "utf8"), "abs\n");
    assert.equal(readFileSync(join(fs, m), "utf8"), "folded\n");
    assert.equal(lstatSync(join(fs, `hl-${m}`)).ino, lstatSync(join(fs, m)).ino);
    assert.equal(existsSync(join(fs, "a")), false, "names are cleaned lexically, as containerd does");
  });
});

test("a chain of symlinks (a -> b, b -> ../../..) followed by a/etc/x stays inside", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(
    symlink("a", "b"),
    symlink("b", "../../.."),
    file(`a/etc/${m}`, "chained\n"),
    symlink("c", f.sentinel), // absolute, to the real sentinel
    symlink("d", `${UP}sentinel-${m}`), // relative, climbing to the real sentinel from the snapshot
    symlink("e", "c"),
    file(`c/${m}-abs`, "c\n"),
    file(`e/${m}-chain`, "e\n"),
    file(`d/${m}-rel`, "d\n"),
  );
  await accept(f, await store(f, t), (fs) => {
    assert.equal(readFileSync(join(fs, "etc", m), "utf8"), "chained\n");
    assert.equal(readFileSync(join(fs, f.sentinel, `${m}-abs`), "utf8"), "c\n");
    assert.equal(readFileSync(join(fs, f.sentinel, `${m}-chain`), "utf8"), "e\n");
    assert.equal(readFileSync(join(fs, `sentinel-${m}`, `${m}-rel`), "utf8"), "d\n");
    assert.equal(readlinkSync(join(fs, "b")), "../../..", "the links themselves are kept as written");
  });
});

test("a directory replaced by a symlink later in the same layer, then written through, stays inside", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(
    dirEntry("d/"),
    dirEntry("d/e/"), // resolved (and remembered) before d changes
    file("d/e/old", "old\n"),
    symlink("d", `${UP}sentinel-${m}`),
    file(`d/e/${m}`, "through the new link\n"),
    dirEntry("p/"),
    symlink("p", f.sentinel),
    file(`p/${m}`, "abs\n"),
  );
  await accept(f, await store(f, t), (fs) => {
    assert.equal(lstatSync(join(fs, "d")).isSymbolicLink(), true);
    assert.equal(readFileSync(join(fs, `sentinel-${m}`, "e", m), "utf8"), "through the new link\n");
    assert.equal(existsSync(join(fs, `sentinel-${m}`, "e", "old")), false);
    assert.equal(readFileSync(join(fs, f.sentinel, m), "utf8"), "abs\n");
  });
});

test("every entry type written over a symlink that points out replaces the link, never writes through it", async () => {
  const f = await setup();
  const m = f.marker;
  const over = (name: string, target: string) => symlink(name, target);
  const t = tar(
    file(`target-${m}`, "inside\n"),
    over("f", f.victim),
    file("f", "replaced\n"),
    over("d", f.sentinel),
    dirEntry("d/"),
    file(`d/${m}`, "in the new dir\n"),
    over("p", `${UP}sentinel-${m}/fifo-${m}`),
    entry({ name: "p", type: "6", mode: 0o644 }),
    over("c", `${UP}sentinel-${m}/char-${m}`),
    entry({ name: "c", type: "3", mode: 0o600, devmajor: 1, devminor: 3 }),
    over("h", f.victim),
    hardlink("h", `target-${m}`),
    over("s", f.sentinel),
    symlink("s", "elsewhere"),
  );
  await accept(f, await store(f, t), (fs) => {
    assert.equal(readFileSync(join(fs, "f"), "utf8"), "replaced\n");
    assert.ok(lstatSync(join(fs, "d")).isDirectory());
    assert.equal(readFileSync(join(fs, "d", m), "utf8"), "in the new dir\n");
    assert.ok(lstatSync(join(fs, "p")).isFIFO());
    assert.ok(lstatSync(join(fs, "c")).isCharacterDevice());
    assert.equal(lstatSync(join(fs, "h")).ino, lstatSync(join(fs, `target-${m}`)).ino);
    assert.equal(readlinkSync(join(fs, "s")), "elsewhere");
  });
});

test("whiteouts and opaque markers under a symlinked parent act inside the layer", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(symlink("w", f.sentinel), file(`w/.wh.${m}`), symlink("o", `${UP}sentinel-${m}`), file("o/.wh..wh..opq"));
  await accept(f, await store(f, t), (fs) => {
    const wh = lstatSync(join(fs, f.sentinel, m));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.ok(lstatSync(join(fs, `sentinel-${m}`)).isDirectory());
  });
});

test("a hardlink whose target resolves through a symlink out of the root is refused", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(symlink("w", f.work), hardlink(`h-${m}`, `w/victim-${m}`));
  await refuse(f, await store(f, t), { kind: "InvalidArgument", entry: `h-${m}`, detail: /not in the layer/ });
  const rel = tar(symlink("up", UP), hardlink(`r-${m}`, `up/victim-${m}`));
  await refuse(f, await store(f, rel), { kind: "InvalidArgument", entry: `r-${m}`, detail: /not in the layer/ });
});

test("a hardlink to a symlink that points out links the symlink itself, not its target", async () => {
  const f = await setup();
  const m = f.marker;
  const nlink = lstatSync(f.victim).nlink;
  const t = tar(symlink("s", f.victim), hardlink(`h-${m}`, "s"));
  await accept(f, await store(f, t), (fs) => {
    const h = lstatSync(join(fs, `h-${m}`));
    assert.ok(h.isSymbolicLink());
    assert.equal(h.ino, lstatSync(join(fs, "s")).ino);
  });
  assert.equal(lstatSync(f.victim).nlink, nlink);
});

test("a symlink loop in a parent path is InvalidArgument", async () => {
  const f = await setup();
  const t = tar(symlink("loop1", "loop2"), symlink("loop2", "loop1"), file("loop1/x", "x\n"));
  await refuse(f, await store(f, t), { kind: "InvalidArgument", entry: "loop1/x", detail: /too many levels of symbolic links/ });
});

// ---------------------------------------------------------------------------------------------------------
// Device nodes: allowed in layers (as containerd allows as root), created inside only

test("char and block devices are created inside the snapshot, also through a symlink to /dev", async () => {
  const f = await setup();
  const m = f.marker;
  const t = tar(
    symlink("devlink", "/dev"),
    entry({ name: `devlink/null-${m}`, type: "3", mode: 0o666, devmajor: 1, devminor: 3 }),
    entry({ name: `dev/loop-${m}`, type: "4", mode: 0o660, devmajor: 7, devminor: 0 }),
    entry({ name: `${UP}sentinel-${m}/zero-${m}`, type: "3", mode: 0o600, devmajor: 1, devminor: 5 }),
  );
  await accept(f, await store(f, t), (fs) => {
    const c = lstatSync(join(fs, "dev", `null-${m}`));
    assert.ok(c.isCharacterDevice());
    assert.deepEqual([c.rdev, c.mode & 0o7777], [(1 << 8) | 3, 0o666]);
    const b = lstatSync(join(fs, "dev", `loop-${m}`));
    assert.ok(b.isBlockDevice());
    assert.equal(b.rdev, 7 << 8);
    assert.ok(lstatSync(join(fs, `sentinel-${m}`, `zero-${m}`)).isCharacterDevice());
  });
});

test("a device number the kernel cannot hold is InvalidArgument naming the entry", async () => {
  const f = await setup();
  const t = tar(entry({ name: "dev/bogus", type: "3", devmajor: 0o7777777, devminor: 0 }));
  await refuse(f, await store(f, t), { kind: "InvalidArgument", entry: "dev/bogus", detail: /device number/ });
});

// ---------------------------------------------------------------------------------------------------------
// Odd names

test("a non-directory entry named '', '.' or 'a/..' (the layer root) is InvalidArgument", async () => {
  const f = await setup();
  for (const name of ["", ".", "a/.."]) {
    const t = tar(file("keep", "k\n"), file(name, "root?\n"));
    await refuse(f, await store(f, t, { gzip: false }), { kind: "InvalidArgument", entry: name, detail: /layer root/ });
  }
  const link = tar(symlink(".", "/etc"));
  await refuse(f, await store(f, link), { kind: "InvalidArgument", entry: ".", detail: /layer root/ });
  // A directory entry for the root is normal (tar -C dir .) and ignored.
  await accept(f, await store(f, tar(dirEntry("./"), dirEntry("."), file("./ok", "ok\n"))), (fs) => assert.equal(readFileSync(join(fs, "ok"), "utf8"), "ok\n"));
});

test("a regular-file header whose name ends in '/' is a directory, and its data is skipped, not parsed as headers", async () => {
  const f = await setup();
  const m = f.marker;
  // The data of "./" and "d/" is a whole tar entry: a reader that skipped nothing would extract it.
  const smuggled = file(`smuggled-${m}`, "hidden\n");
  const t = tar(file("./", smuggled), file("d/", smuggled), file("after", "after\n"));
  await accept(f, await store(f, t), (fs) => {
    assert.ok(lstatSync(join(fs, "d")).isDirectory());
    assert.deepEqual(readdirSync(fs).sort(), ["after", "d"]);
    assert.deepEqual(readdirSync(join(fs, "d")), []);
  });
});

test("a name longer than 4095 bytes, a component longer than 255, a link target longer than 4095: InvalidArgument", async () => {
  const f = await setup();
  const long = Array.from({ length: 50 }, (_, i) => `${i}`.padStart(99, "n")).join("/"); // 4999 bytes
  const l1 = await store(f, tar(pax([rec("path", long)]), file("x", "x\n")));
  const m1 = await refuse(f, l1, { kind: "InvalidArgument", entry: long, detail: /name of 4999 bytes is longer than the 4095-byte limit/ });
  assert.ok(!m1.includes(long.slice(0, 300)), "the name is cut short in the message");
  const comp = `dir/${"c".repeat(300)}`;
  await refuse(f, await store(f, tar(pax([rec("path", comp)]), file("x", "x\n"))), { kind: "InvalidArgument", entry: comp, detail: /component of 300 bytes is longer than the 255-byte limit/ });
  const target = "t/".repeat(2500);
  await refuse(f, await store(f, tar(pax([rec("linkpath", target)]), symlink("longlink", "x"))), { kind: "InvalidArgument", entry: "longlink", detail: /link target of 5000 bytes is longer than the 4095-byte limit/ });
});

test("invalid whiteouts (.wh.. and .wh...) are InvalidArgument naming the entry", async () => {
  const f = await setup();
  for (const name of ["d/.wh..", "d/.wh..."]) {
    await refuse(f, await store(f, tar(file(name))), { kind: "InvalidArgument", entry: name, detail: /invalid whiteout/ });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Volume

test("a layer of 30000 entries unpacks", async () => {
  const f = await setup();
  const parts: Uint8Array[] = [];
  for (let d = 0; d < 100; d++) {
    parts.push(dirEntry(`many/${d}/`));
    for (let i = 0; i < 299; i++) parts.push(file(`many/${d}/${i}`, i % 10 === 0 ? `${d}/${i}\n` : ""));
  }
  const started = Date.now();
  await accept(f, await store(f, tar(...parts)), (fs) => {
    assert.equal(readdirSync(join(fs, "many")).length, 100);
    assert.equal(readdirSync(join(fs, "many", "42")).length, 299);
    assert.equal(readFileSync(join(fs, "many", "99", "290"), "utf8"), "99/290\n");
  });
  const ms = Date.now() - started;
  assert.ok(ms < 120_000, `30000 entries in ${ms} ms`);
});
