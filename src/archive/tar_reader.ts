/**
 * A streaming tar reader: ustar, GNU long names (L/K) and PAX extended headers (x per entry, g global).
 * It yields one entry at a time; an entry's body is a view into the input chunks (no copies) and must be
 * read before the next entry is requested (whatever is left unread is skipped). Nothing is buffered
 * beyond one input chunk and the bounded extension records.
 */
import { TsctrError, errorOf } from "../errdefs/mod.ts";

export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarEntry {
  /** The name as stored (PAX path, GNU long name, or ustar prefix/name); not cleaned. */
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Modification time in seconds since the epoch (fractional with PAX). */
  mtime: number;
  /** Symlink target or hardlink target name; "" for other types. */
  linkname: string;
  /** Bytes in the body (0 for everything but files). */
  size: number;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* (and LIBARCHIVE.xattr.*) records. */
  xattrs: ReadonlyMap<string, Uint8Array>;
  /** The file's bytes, as views into the input; valid only until the next entry is requested. */
  body: AsyncIterable<Uint8Array>;
}

export interface TarReadOptions {
  /** Largest PAX or GNU long-name record accepted, in bytes (default 1 MiB). */
  maxHeaderBytes?: number;
  /** Names the archive in error messages (e.g. "layer sha256:…"). */
  what?: string;
}

const BLOCK = 512;
const EMPTY = new Uint8Array(0);
/** The extension records (and xattrs) of an entry that has none; never written to. */
const NO_RECORDS: ReadonlyMap<string, Uint8Array> = new Map();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Pulls bytes from a web stream, handing out views into its chunks. */
class Source {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  #ended = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  get ended(): boolean {
    return this.#ended;
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#ended) return false;
      const r = await this.#reader.read();
      if (r.done) {
        this.#ended = true;
        this.#chunk = EMPTY;
        this.#pos = 0;
        return false;
      }
      this.#chunk = r.value;
      this.#pos = 0;
    }
    return true;
  }

  /** Up to `n` bytes as a view into the current chunk; empty only at the end of the stream. */
  async some(n: number): Promise<Uint8Array> {
    if (!(await this.#fill())) return EMPTY;
    const end = Math.min(this.#chunk.length, this.#pos + n);
    const view = this.#chunk.subarray(this.#pos, end);
    this.offset += end - this.#pos;
    this.#pos = end;
    return view;
  }

  /**
   * Exactly `n` bytes, always a copy (headers and records are small, and a copy stays valid when the source
   * reuses its chunk memory, as the WASM engine's zero-copy output does); fewer only at the end of the stream.
   */
  async exact(n: number): Promise<Uint8Array> {
    const first = await this.some(n);
    if (first.length === n) return first.slice();
    if (first.length === 0) return first;
    const buf = new Uint8Array(n);
    buf.set(first);
    let got = first.length;
    while (got < n) {
      const v = await this.some(n - got);
      if (v.length === 0) return buf.subarray(0, got);
      buf.set(v, got);
      got += v.length;
    }
    return buf;
  }

  /** Skips `n` bytes; returns how many were skipped (fewer only at the end of the stream). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const v = await this.some(left);
      if (v.length === 0) break;
      left -= v.length;
    }
    return n - left;
  }

  /** Reads to the end of the stream, so that a hasher teed off the input sees every byte. */
  async drain(): Promise<void> {
    while ((await this.some(1 << 30)).length > 0) {
      // discard
    }
  }

  async cancel(reason?: unknown): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#reader.cancel(reason).catch(() => {});
  }
}

/** A ustar header block's fields, before extension headers are applied. */
interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/**
 * Reads the entries of a tar archive from `stream`. Throws DataLoss for a corrupt or truncated archive,
 * InvalidArgument for oversized or malformed extension headers, NotImplemented for sparse/multi-volume
 * entries. After the end-of-archive marker the rest of the stream is read and discarded (so a digest of
 * the whole stream can be checked); breaking out of the loop early cancels the stream.
 */
export async function* readTar(stream: ReadableStream<Uint8Array>, opts: TarReadOptions = {}): AsyncGenerator<TarEntry, void, undefined> {
  const maxHeader = opts.maxHeaderBytes ?? 1 << 20;
  const what = opts.what ?? "archive";
  const src = new Source(stream);
  // Errors that carry no entry of their own (a cut header, a gzip error between entries) are placed
  // relative to the last entry handed out, so every message names an entry.
  let last: string | undefined;
  let inBody = false;
  const where = () => (last === undefined ? "before the first entry" : `${inBody ? "" : "after "}entry ${quote(last)}`);
  const own = new WeakSet<Error>();
  const fail = (kind: "DataLoss" | "InvalidArgument" | "NotImplemented", entry: string | undefined, detail: string) => {
    const e = errorOf(kind, `read tar ${what}: ${entry === undefined ? where() : `entry ${quote(entry)}`}: ${detail}`);
    own.add(e);
    return e;
  };

  let global = new Map<string, Uint8Array>();
  let pax: Map<string, Uint8Array> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let seq = 0;
  let finished = false;

  /** Reads an extension record's body (bounded), including its padding. */
  const readRecord = async (h: RawHeader, kind: string): Promise<Uint8Array> => {
    if (h.size > maxHeader) throw fail("InvalidArgument", h.name, `${kind} header of ${h.size} bytes exceeds the limit of ${maxHeader}`);
    const data = await src.exact(h.size);
    if (data.length < h.size) throw fail("DataLoss", h.name, `archive truncated inside a ${kind} header`);
    if ((await src.skip(pad(h.size))) < pad(h.size)) throw fail("DataLoss", h.name, "archive truncated after a header");
    return data;
  };

  try {
    for (;;) {
      const start = src.offset;
      const block = await src.exact(BLOCK);
      if (block.length === 0) {
        if (pax || longName !== undefined || longLink !== undefined) throw fail("DataLoss", undefined, "archive ends after an extension header");
        break; // no end-of-archive marker; accepted like Go's archive/tar
      }
      if (block.length < BLOCK) throw fail("DataLoss", undefined, `archive truncated inside a header at offset ${start}`);
      if (isZero(block)) {
        // The end-of-archive marker is two zero blocks; whatever follows (record padding) is drained below.
        break;
      }
      const h = parseHeader(block, (detail, kind = "DataLoss") => fail(kind, headerName(block), `${detail} (header at offset ${start})`));

      switch (h.typeflag) {
        case "x":
          pax = mergeInto(pax ?? new Map(), parsePax(await readRecord(h, "PAX"), (d) => fail("DataLoss", h.name, d)));
          continue;
        case "g":
          global = mergeInto(global, parsePax(await readRecord(h, "PAX global"), (d) => fail("DataLoss", h.name, d)));
          continue;
        case "L":
          longName = cString(await readRecord(h, "GNU long name"), (d) => fail("InvalidArgument", h.name, d));
          continue;
        case "K":
          longLink = cString(await readRecord(h, "GNU long link"), (d) => fail("InvalidArgument", h.name, d));
          continue;
        case "V": // GNU volume label: not an entry
          if ((await src.skip(h.size + pad(h.size))) < h.size + pad(h.size)) throw fail("DataLoss", h.name, "archive truncated");
          continue;
      }

      // Most entries have no extension records at all: they share one empty map instead of making two.
      const ext = global.size === 0 && pax === undefined ? NO_RECORDS : mergeInto(new Map(global), pax ?? NO_RECORDS);
      pax = undefined;
      const entry = buildEntry(h, ext, longName, longLink, fail);
      longName = undefined;
      longLink = undefined;

      // Header-only types carry no data whatever their size field says (as in Go's archive/tar);
      // a GNU dumpdir ('D') is a directory whose data (a listing) is skipped. Whether data follows depends
      // on the typeflag, not on the type read from the name: a regular-file header named "x/" (taken as a
      // pre-POSIX directory) still has its data skipped, else that data would be parsed as headers.
      const dataSize = TYPES[h.typeflag] === "file" || h.typeflag === "D" ? entry.size : 0;
      if (entry.type !== "file") entry.size = 0;
      let remaining = dataSize;
      const id = ++seq;
      if (h.typeflag !== "D") {
        entry.body = {
          async *[Symbol.asyncIterator]() {
            while (remaining > 0) {
              if (id !== seq) throw errorOf("Internal", `read tar ${what}: entry ${quote(entry.path)}: body read after the next entry was requested`);
              const v = await src.some(Math.min(remaining, 1 << 22));
              if (v.length === 0) throw fail("DataLoss", entry.path, `archive truncated: ${remaining} bytes of the file missing`);
              remaining -= v.length;
              yield v;
            }
          },
        };
      }
      last = entry.path;
      inBody = true;
      yield entry;
      seq++;
      const rest = remaining + pad(dataSize);
      remaining = 0;
      if ((await src.skip(rest)) < rest) throw fail("DataLoss", entry.path, "archive truncated inside the file's data");
      inBody = false;
    }
    await src.drain();
    finished = true;
  } catch (e) {
    // An error of the input stream itself (e.g. DataLoss from gunzip, a failed read of the blob) gets the
    // archive and the place in it prefixed, keeping its kind.
    if (e instanceof Error && own.has(e)) throw e;
    throw errorOf(e instanceof TsctrError ? e.kind : "Internal", `read tar ${what}: ${where()}: ${oneLine(e instanceof Error ? e.message : String(e))}`, e);
  } finally {
    if (!finished) await src.cancel();
  }
}

/** A name for a one-line message: quoted, control characters escaped (names may hold newlines), cut at 256. */
export function quote(name: string): string {
  return JSON.stringify(name.length > 256 ? `${name.slice(0, 256)}…` : name);
}

/** `text` with control characters escaped and cut at 512 characters, for one-line messages. */
export function oneLine(text: string): string {
  const t = text.length > 512 ? `${text.slice(0, 512)}…` : text;
  return t.replace(/[\x00-\x1f\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function mergeInto(into: Map<string, Uint8Array>, from: ReadonlyMap<string, Uint8Array>): Map<string, Uint8Array> {
  for (const [k, v] of from) {
    if (v.length === 0) into.delete(k); // an empty value removes a (global) setting
    else into.set(k, v);
  }
  return into;
}

/** The NUL-terminated name field, decoded loosely (for error messages about broken headers). */
function headerName(block: Uint8Array): string {
  return new TextDecoder("utf-8").decode(block.subarray(0, fieldEnd(block, 0, 100)));
}

/** Where the NUL-terminated field at [off, off + len) of a header ends. */
function fieldEnd(block: Uint8Array, off: number, len: number): number {
  const end = off + len;
  for (let i = off; i < end; i++) if (block[i] === 0) return i;
  return end;
}

type Bad = (detail: string, kind?: "DataLoss" | "InvalidArgument") => Error;

function parseHeader(block: Uint8Array, bad: Bad): RawHeader {
  // The checksum is the sum of all header bytes with the checksum field counted as spaces; historic
  // writers summed signed bytes, so both sums are accepted.
  // Fields are read in place: a view per field cost ~25 MB of garbage per devbench pull.
  const stored = parseNumber(block, 148, 8, "checksum", bad);
  let unsigned = 8 * 0x20;
  let high = 0; // bytes above 127, which a signed sum counts 256 lower
  for (let i = 0; i < 148; i++) {
    const b = block[i]!;
    unsigned += b;
    high += b >> 7;
  }
  for (let i = 156; i < BLOCK; i++) {
    const b = block[i]!;
    unsigned += b;
    high += b >> 7;
  }
  if (stored !== unsigned && stored !== unsigned - 256 * high) throw bad(`header checksum mismatch (stored ${stored}, computed ${unsigned})`);

  // POSIX ustar has "ustar\0" here and a name prefix at 345; GNU has "ustar " and other fields there.
  const ustar = block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72 && block[262] === 0;
  let name = text(block, 0, 100, bad);
  if (ustar) {
    const prefix = text(block, 345, 155, bad);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: parseNumber(block, 100, 8, "mode", bad),
    uid: parseNumber(block, 108, 8, "uid", bad),
    gid: parseNumber(block, 116, 8, "gid", bad),
    size: parseNumber(block, 124, 12, "size", bad),
    mtime: parseNumber(block, 136, 12, "mtime", bad),
    typeflag: String.fromCharCode(block[156]!),
    linkname: text(block, 157, 100, bad),
    uname: text(block, 265, 32, bad),
    gname: text(block, 297, 32, bad),
    devmajor: parseNumber(block, 329, 8, "devmajor", bad),
    devminor: parseNumber(block, 337, 8, "devminor", bad),
  };
}

/** The NUL-terminated UTF-8 field at [off, off + len) of a header. */
function text(block: Uint8Array, off: number, len: number, bad: Bad): string {
  const end = fieldEnd(block, off, len);
  if (end === off) return "";
  try {
    return utf8.decode(block.subarray(off, end));
  } catch {
    throw bad("name is not valid UTF-8 (not supported yet)", "InvalidArgument");
  }
}

/** The octal (NUL/space padded) or GNU base-256 (high bit set) numeric field at [off, off + len) of a header. */
function parseNumber(block: Uint8Array, off: number, len: number, name: string, bad: Bad): number {
  const end = off + len;
  if ((block[off]! & 0x80) !== 0) {
    if (block[off] === 0xff) throw bad(`negative ${name}`);
    let v = block[off]! & 0x7f;
    for (let i = off + 1; i < end; i++) {
      v = v * 256 + block[i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw bad(`${name} too large`);
    }
    return v;
  }
  let i = off;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw bad(`invalid octal ${name} field`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) if (block[i] !== 0 && block[i] !== 0x20) throw bad(`invalid octal ${name} field`);
  return digits === 0 ? 0 : v;
}

/** Parses PAX records "<len> <key>=<value>\n"; values stay bytes (xattr values may be binary). */
function parsePax(data: Uint8Array, bad: (detail: string) => Error): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    let len = 0;
    let i = pos;
    for (; i < data.length && data[i] !== 0x20; i++) {
      const c = data[i]!;
      if (c < 0x30 || c > 0x39 || i - pos > 12) throw bad("malformed PAX record length");
      len = len * 10 + (c - 0x30);
    }
    const end = pos + len;
    if (i >= data.length || len <= i - pos + 1 || end > data.length || data[end - 1] !== 0x0a) throw bad("malformed PAX record");
    const rec = data.subarray(i + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw bad("malformed PAX record (no key)");
    if (rec.subarray(0, eq).includes(0)) throw bad("PAX key contains a NUL byte");
    let key: string;
    try {
      key = utf8.decode(rec.subarray(0, eq));
    } catch {
      throw bad("PAX key is not valid UTF-8");
    }
    out.set(key, rec.subarray(eq + 1));
    pos = end;
  }
  return out;
}

function cString(data: Uint8Array, bad: (detail: string) => Error): string {
  const nul = data.indexOf(0);
  try {
    return utf8.decode(nul < 0 ? data : data.subarray(0, nul));
  } catch {
    throw bad("name is not valid UTF-8 (not supported yet)");
  }
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
  D: "dir",
};

/** PAX values that are names and must not hold a NUL byte. */
const NUL_FREE = new Set(["path", "linkpath", "uname", "gname"]);

type Fail = (kind: "DataLoss" | "InvalidArgument" | "NotImplemented", entry: string | undefined, detail: string) => Error;

function buildEntry(h: RawHeader, ext: ReadonlyMap<string, Uint8Array>, longName: string | undefined, longLink: string | undefined, fail: Fail): TarEntry {
  const str = (key: string): string | undefined => {
    const v = ext.get(key);
    if (v === undefined) return undefined;
    // A NUL cannot be part of a name (it would be cut there by the system call); Go's archive/tar refuses it too.
    if (NUL_FREE.has(key) && v.includes(0)) throw fail("DataLoss", h.name, `PAX ${key} contains a NUL byte`);
    try {
      return utf8.decode(v);
    } catch {
      throw fail("InvalidArgument", h.name, `PAX ${key} is not valid UTF-8 (not supported yet)`);
    }
  };
  const path = str("path") ?? longName ?? h.name;
  const int = (key: string, fallback: number): number => {
    const s = str(key);
    if (s === undefined) return fallback;
    if (!/^[0-9]{1,16}$/.test(s)) throw fail("DataLoss", path, `invalid PAX ${key} ${quote(s.slice(0, 32))}`);
    const n = Number(s);
    if (n > Number.MAX_SAFE_INTEGER) throw fail("DataLoss", path, `PAX ${key} ${s} is too large`);
    return n;
  };
  for (const k of ext.keys()) {
    if (k.startsWith("GNU.sparse.")) throw fail("NotImplemented", path, "sparse files are not supported");
  }
  if (h.typeflag === "S") throw fail("NotImplemented", path, "GNU sparse files are not supported");
  if (h.typeflag === "M" || h.typeflag === "N") throw fail("NotImplemented", path, "multi-volume archives are not supported");
  let type = TYPES[h.typeflag];
  if (type === undefined) throw fail("InvalidArgument", path, `unsupported entry type '${h.typeflag.replace(/[^\x20-\x7e]/g, "?")}'`);
  if (type === "file" && h.typeflag !== "7" && path.endsWith("/")) type = "dir"; // pre-POSIX directories

  let mtime = h.mtime;
  const m = str("mtime");
  if (m !== undefined) {
    if (!/^-?[0-9]{1,20}(\.[0-9]*)?$/.test(m)) throw fail("DataLoss", path, `invalid PAX mtime ${quote(m.slice(0, 32))}`);
    mtime = Number(m);
  }
  const xattrs = ext.size === 0 ? NO_RECORDS : xattrsOf(ext, path, fail);
  return {
    path,
    type,
    mode: h.mode & 0o7777,
    uid: int("uid", h.uid),
    gid: int("gid", h.gid),
    uname: str("uname") ?? h.uname,
    gname: str("gname") ?? h.gname,
    mtime,
    linkname: type === "symlink" || type === "hardlink" ? (str("linkpath") ?? longLink ?? h.linkname) : "",
    size: int("size", h.size),
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs,
    body: emptyBody,
  };
}

/** The extended attributes an entry's PAX records carry (LIBARCHIVE.xattr.* first, SCHILY.xattr.* winning). */
function xattrsOf(ext: ReadonlyMap<string, Uint8Array>, path: string, fail: Fail): Map<string, Uint8Array> {
  const xattrs = new Map<string, Uint8Array>();
  for (const [k, v] of ext) {
    if (k.startsWith("LIBARCHIVE.xattr.")) {
      let name: string;
      let value: Uint8Array;
      try {
        name = decodeURIComponent(k.slice(17));
        value = base64(v);
      } catch {
        throw fail("DataLoss", path, `malformed PAX ${quote(k.slice(0, 64))} record`);
      }
      xattrs.set(name, value);
    }
  }
  for (const [k, v] of ext) {
    if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice(13), v);
  }
  return xattrs;
}

const emptyBody: AsyncIterable<Uint8Array> = {
  async *[Symbol.asyncIterator]() {},
};

function base64(v: Uint8Array): Uint8Array {
  const s = new TextDecoder().decode(v).replace(/=+$/, "");
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
