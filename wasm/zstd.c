/*
 * A streaming Zstandard decoder (RFC 8878): frames back to back, skippable frames skipped, raw, RLE and
 * compressed blocks (raw, RLE and Huffman literals with 1 or 4 streams and treeless reuse; sequences with
 * predefined, RLE, FSE-described and repeated tables), repeat offsets, XXH64 content checksums. No
 * dictionaries: a frame that names one is refused.
 *
 * Memory. Each decoder is one fixed block (state, decode tables, an input buffer JS fills, a literal buffer)
 * plus one window buffer allocated at the first frame and grown only when a later frame needs a larger
 * window. Output is written linearly into the window buffer after the history it may copy from; when less
 * than a block of room is left, the last Window_Size bytes slide to the front, so matches always copy from
 * a plain array. The window buffer is Window_Size rounded up to a power of two (at least 1 MiB), plus half
 * that again of room, so a slide moves at most two bytes per byte of output. Windows above the decoder's
 * limit (set by JS; 32 MiB by default) are refused, which bounds memory whatever the input says.
 *
 * Resumability. Decoding works in whole units: a frame header, a block header, a whole block (at most
 * 128 KiB, so the 256 KiB input buffer always holds one), a checksum. A unit whose bytes have not all
 * arrived yet returns NEED_INPUT and is decoded from the start when they have; only skippable frames are
 * consumed piecemeal. Because a block is decoded in one call, the entropy decoders never suspend.
 *
 * Safety. Every size read from the input is checked against the bytes that hold it and against the block
 * and window limits before use; FSE states are masked to their table; bit readers may run past the start
 * of their stream only into zeros, and a stream that does so is an error once it has been read; every
 * literal and match length is checked against the literals left and the room left in the block; every
 * offset against the window and the frame's history. Copies may overrun their end by up to 32 bytes, into
 * slack that each buffer keeps behind its end. Every malformed input ends in a negative status.
 */
#include "engine.h"
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define BLOCK_MAX (128u * 1024u)
#define IN_CAP (256u * 1024u)
#define SLACK 64u
#define MIN_BUF_WINDOW (1u << 20)
#define HUF_MAX_BITS 11u
#define LL_MAX_LOG 9u
#define ML_MAX_LOG 9u
#define OF_MAX_LOG 8u
#define LL_MAX_SYM 35u
#define ML_MAX_SYM 52u
#define OF_MAX_SYM 31u
#define MAGIC 0xFD2FB528u
#define SKIP_MAGIC 0x184D2A50u

/* Statuses returned by zstd_step; errors are negative and sticky. */
enum {
  ST_NEED_INPUT = 1,
  ST_OUTPUT_FULL = 2,
  ST_DONE = 3,
  E_TRUNCATED = -1,
  E_BAD_MAGIC = -2,
  E_RESERVED = -3,
  E_DICTIONARY = -4,
  E_WINDOW_TOO_LARGE = -5,
  E_BAD_BLOCK_TYPE = -6,
  E_BLOCK_TOO_LARGE = -7,
  E_BAD_LITERALS = -8,
  E_BAD_HUFFMAN = -9,
  E_BAD_SEQUENCES = -10,
  E_BAD_FSE = -11,
  E_BAD_OFFSET = -12,
  E_BAD_CHECKSUM = -13,
  E_BAD_CONTENT_SIZE = -14,
  E_NO_MEMORY = -15,
  E_NO_FRAME = -16,
};

/* Where decoding stands between units. */
enum { S_MAGIC, S_SKIP_SIZE, S_SKIP, S_FRAME_HEADER, S_BLOCK_HEADER, S_BLOCK, S_CHECKSUM, S_DONE };

/* One FSE decoding state: the symbol it emits and how to reach the next state. */
typedef struct {
  u16 base; /* next state = base + nbits bits read */
  u8 sym;
  u8 nbits;
} FseEnt;

/* An FSE state of a sequence table with its symbol resolved to a value base and extra-bit count. */
typedef struct {
  u32 value; /* literal length / match length base, or 1 << offset code */
  u16 base;
  u8 extra;
  u8 nbits;
} SeqEnt;

typedef struct {
  u64 v[4];
  u64 total;
  u8 buf[32];
  u32 n;
} Xxh64;

typedef struct {
  u32 state;
  int32_t error;
  u32 input_final;
  u32 in_pos, in_end;
  u32 frames; /* frames (and skippable frames) whose magic number was read */
  u32 skip;   /* skippable frame bytes left */
  /* current frame */
  u32 checksum_flag, has_fcs;
  u64 fcs, frame_out, window;
  u32 block_max;
  u32 last_block, block_type, block_size;
  u32 rep[3];
  u32 has_huf, has_ll, has_of, has_ml;
  u32 huf_bits;
  Xxh64 xxh;
  /* window buffer: [0, op) history and output; out_start..op is this step's output */
  u8 *buf;
  u32 buf_cap; /* usable bytes; SLACK more are allocated */
  u32 buf_alloc;
  u32 op, out_start, hist;
  u32 max_window_log;
  /* tables */
  u16 huf[1u << HUF_MAX_BITS];
  SeqEnt ll[1u << LL_MAX_LOG];
  SeqEnt of[1u << OF_MAX_LOG];
  SeqEnt ml[1u << ML_MAX_LOG];
  u32 ll_log, of_log, ml_log;
  FseEnt scratch[1u << LL_MAX_LOG];
  u8 lit[BLOCK_MAX + SLACK];
  u8 in[IN_CAP + SLACK];
} Zstd;

/* ---- Small helpers ---- */

static inline u32 highbit(u32 v) { return 31u - (u32)__builtin_clz(v); } /* v > 0 */

static inline void copy16(u8 *d, const u8 *s) {
#ifdef __wasm_simd128__
  wasm_v128_store(d, wasm_v128_load(s));
#else
  store64(d, load64(s));
  store64(d + 8, load64(s + 8));
#endif
}

/* Copies n bytes in 16-byte steps: may read and write up to 15 bytes past the end; src and dst must be
 * at least 16 bytes apart when they overlap (src before dst). */
static inline void wild_copy16(u8 *d, const u8 *s, u32 n) {
  u8 *e = d + n;
  do {
    copy16(d, s);
    d += 16;
    s += 16;
  } while (d < e);
}

static void fill(u8 *d, u8 c, u32 n) {
  u64 v = 0x0101010101010101ull * c;
  u32 i = 0;
  for (; i + 8 <= n; i += 8) store64(d + i, v);
  for (; i < n; i++) d[i] = c;
}

/* Copies a match of n bytes from `off` bytes back; may write up to 15 bytes past the end. The source is
 * valid history (checked by the caller). */
static inline void copy_match(u8 *op, u32 off, u32 n) {
  const u8 *src = op - off;
  if (off >= 16) {
    wild_copy16(op, src, n);
    return;
  }
  if (off >= 8) {
    u8 *e = op + n;
    do {
      store64(op, load64(src));
      op += 8;
      src += 8;
    } while (op < e);
    return;
  }
  /* Short period: write one period-multiple byte by byte, then copy 8 bytes at a time from that far back. */
  u32 d = off;
  while (d < 8) d += d;
  u32 head = n < d ? n : d;
  for (u32 i = 0; i < head; i++) op[i] = src[i];
  if (n <= head) return;
  u8 *p = op + head;
  u8 *e = op + n;
  do {
    store64(p, load64(p - d));
    p += 8;
  } while (p < e);
}

/* ---- XXH64 (seed 0), for the content checksum ---- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline u64 rotl64(u64 x, u32 r) { return (x << r) | (x >> (64 - r)); }
static inline u64 xxh_round(u64 acc, u64 lane) {
  acc += lane * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}
static inline u64 xxh_merge(u64 h, u64 v) {
  h ^= xxh_round(0, v);
  return h * P1 + P4;
}

static void xxh_init(Xxh64 *x) {
  x->v[0] = P1 + P2;
  x->v[1] = P2;
  x->v[2] = 0;
  x->v[3] = 0 - P1;
  x->total = 0;
  x->n = 0;
}

static void xxh_update(Xxh64 *x, const u8 *p, u32 len) {
  x->total += len;
  if (x->n) {
    u32 take = 32 - x->n;
    if (take > len) take = len;
    mem_copy(x->buf + x->n, p, take);
    x->n += take;
    p += take;
    len -= take;
    if (x->n < 32) return;
    for (int i = 0; i < 4; i++) x->v[i] = xxh_round(x->v[i], load64(x->buf + 8 * i));
    x->n = 0;
  }
  u64 v0 = x->v[0], v1 = x->v[1], v2 = x->v[2], v3 = x->v[3];
  while (len >= 32) {
    v0 = xxh_round(v0, load64(p));
    v1 = xxh_round(v1, load64(p + 8));
    v2 = xxh_round(v2, load64(p + 16));
    v3 = xxh_round(v3, load64(p + 24));
    p += 32;
    len -= 32;
  }
  x->v[0] = v0, x->v[1] = v1, x->v[2] = v2, x->v[3] = v3;
  if (len) {
    mem_copy(x->buf, p, len);
    x->n = len;
  }
}

static u64 xxh_digest(const Xxh64 *x) {
  u64 h;
  if (x->total >= 32) {
    h = rotl64(x->v[0], 1) + rotl64(x->v[1], 7) + rotl64(x->v[2], 12) + rotl64(x->v[3], 18);
    for (int i = 0; i < 4; i++) h = xxh_merge(h, x->v[i]);
  } else {
    h = P5;
  }
  h += x->total;
  const u8 *p = x->buf;
  u32 len = x->n;
  for (; len >= 8; p += 8, len -= 8) {
    h ^= xxh_round(0, load64(p));
    h = rotl64(h, 27) * P1 + P4;
  }
  if (len >= 4) {
    h ^= (u64)load32(p) * P1;
    h = rotl64(h, 23) * P2 + P3;
    p += 4;
    len -= 4;
  }
  for (; len; p++, len--) {
    h ^= (u64)*p * P5;
    h = rotl64(h, 11) * P1;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/* ---- Backward bit reader (FSE and Huffman streams are read from their last byte towards the first) ----
 *
 * `bits` holds the 8 bytes at `ptr`, most significant first in stream order; `used` counts the bits at the
 * top that have been consumed. A stream shorter than 8 bytes is held whole with its missing high bytes
 * counted as consumed, and never reloads. Reads past the start give zeros (used then exceeds 64), which
 * br_overflow() reports; callers check it where the format says a stream must end. */
typedef struct {
  const u8 *start;
  const u8 *ptr;
  u64 bits;
  u32 used;
  u32 small;
} BitR;

static int br_init(BitR *b, const u8 *src, u32 size) {
  if (size == 0 || src[size - 1] == 0) return -1;
  b->start = src;
  if (size >= 8) {
    b->ptr = src + size - 8;
    b->bits = load64(b->ptr);
    b->small = 0;
  } else {
    u64 v = 0;
    for (u32 i = 0; i < size; i++) v |= (u64)src[i] << (8 * i);
    b->ptr = src;
    b->bits = v;
    b->small = 1;
  }
  b->used = (u32)__builtin_clzll(b->bits) + 1;
  return 0;
}

static inline u32 br_read(BitR *b, u32 n) {
  u64 v = (b->bits << (b->used & 63)) >> 1 >> (63 - n);
  b->used += n;
  return (u32)v;
}

static inline u32 br_peek(const BitR *b, u32 n) { return (u32)((b->bits << (b->used & 63)) >> 1 >> (63 - n)); }

/* Refills so that at least 57 bits are ready, unless the stream start is near. */
static inline void br_reload(BitR *b) {
  if (b->small || b->used > 64) return;
  u32 nb = b->used >> 3;
  u32 room = (u32)(b->ptr - b->start);
  if (nb > room) nb = room;
  b->ptr -= nb;
  b->used -= nb * 8;
  b->bits = load64(b->ptr);
}

static inline int br_overflow(const BitR *b) { return b->used > 64; }
/* True when every bit of the stream has been read, no more and no less. */
static inline int br_finished(const BitR *b) { return b->used == 64 && (b->small || b->ptr == b->start); }

/* ---- FSE tables (RFC 8878 4.1) ---- */

/* Bits `pos`.. of a forward little-endian bit stream of `size` bytes, zeros past its end. */
static u32 fwd_peek(const u8 *src, u32 size, u32 pos) {
  u32 byte = pos >> 3;
  u64 v = 0;
  for (u32 i = 0; i < 5 && byte + i < size; i++) v |= (u64)src[byte + i] << (8 * i);
  return (u32)(v >> (pos & 7));
}

/* Reads an FSE table description; returns the bytes it took or a negative error. */
static int read_fse_header(const u8 *src, u32 size, int16_t *norm, u32 max_sym, u32 max_log, u32 *log_out) {
  if (size == 0) return E_BAD_FSE;
  u32 pos = 4;
  u32 log = (src[0] & 15u) + 5;
  if (log > max_log) return E_BAD_FSE;
  int remaining = (1 << log) + 1;
  int threshold = 1 << log;
  u32 nb = log + 1;
  u32 sym = 0;
  while (remaining > 1) {
    if (sym > max_sym || pos > size * 8) return E_BAD_FSE;
    u32 v = fwd_peek(src, size, pos);
    int max = (2 * threshold - 1) - remaining;
    int val;
    if ((int)(v & (u32)(threshold - 1)) < max) {
      val = (int)(v & (u32)(threshold - 1));
      pos += nb - 1;
    } else {
      val = (int)(v & (u32)(2 * threshold - 1));
      if (val >= threshold) val -= max;
      pos += nb;
    }
    int count = val - 1;
    remaining -= count < 0 ? -count : count;
    norm[sym++] = (int16_t)count;
    if (count == 0) {
      for (;;) {
        u32 rep = fwd_peek(src, size, pos) & 3u;
        pos += 2;
        if (sym + rep > max_sym + 1) return E_BAD_FSE;
        for (u32 i = 0; i < rep; i++) norm[sym++] = 0;
        if (rep != 3) break;
        if (pos > size * 8) return E_BAD_FSE;
      }
    }
    if (remaining < 1) return E_BAD_FSE;
    while (remaining < threshold) {
      nb--;
      threshold >>= 1;
    }
  }
  if (remaining != 1 || pos > size * 8) return E_BAD_FSE;
  while (sym <= max_sym) norm[sym++] = 0;
  *log_out = log;
  return (int)((pos + 7) >> 3);
}

/* Builds the decoding table of a distribution (counts summing to 1 << log, -1 for "less than one"). */
static int build_fse(FseEnt *t, const int16_t *norm, u32 nsym, u32 log) {
  u32 size = 1u << log;
  u32 high = size - 1;
  u16 next[64];
  for (u32 s = 0; s < nsym; s++) {
    if (norm[s] == -1) {
      t[high--].sym = (u8)s;
      next[s] = 1;
    } else {
      next[s] = (u16)norm[s];
    }
  }
  u32 step = (size >> 1) + (size >> 3) + 3, mask = size - 1, pos = 0;
  for (u32 s = 0; s < nsym; s++) {
    for (int i = 0; i < norm[s]; i++) {
      t[pos].sym = (u8)s;
      do pos = (pos + step) & mask;
      while (pos > high);
    }
  }
  if (pos != 0) return E_BAD_FSE;
  for (u32 i = 0; i < size; i++) {
    u32 s = t[i].sym;
    u32 ns = next[s]++;
    u32 nbits = log - highbit(ns);
    t[i].nbits = (u8)nbits;
    t[i].base = (u16)((ns << nbits) - size);
  }
  return 0;
}

/* ---- Sequence tables ---- */

static const u32 ll_base[36] = {0,  1,  2,  3,  4,  5,  6,  7,  8,   9,   10,  11,   12,   13,   14,   15,   16,    18,
                                20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
static const u8 ll_extra[36] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  0,  1,  1,
                                1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const u32 ml_base[53] = {3,  4,  5,  6,  7,  8,  9,  10, 11, 12,  13,  14,  15,   16,   17,   18,    19,    20,
                                21, 22, 23, 24, 25, 26, 27, 28, 29, 30,  31,  32,  33,   34,   35,   37,    39,    41,
                                43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539};
static const u8 ml_extra[53] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0,
                                0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Predefined distributions (RFC 8878 3.1.1.3.2.2). */
static const int16_t ll_default[36] = {4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2,  2,
                                       2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1};
static const int16_t ml_default[53] = {1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1,  1,  1,  1,  1,  1,  1,  1,  1,  1, 1,
                                       1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1};
static const int16_t of_default[29] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1};

enum { K_LL, K_OF, K_ML };

static void seq_value(u32 kind, u32 sym, SeqEnt *e) {
  if (kind == K_LL) {
    e->value = ll_base[sym];
    e->extra = ll_extra[sym];
  } else if (kind == K_ML) {
    e->value = ml_base[sym];
    e->extra = ml_extra[sym];
  } else {
    e->value = 1u << sym;
    e->extra = (u8)sym;
  }
}

/* Sets up one sequence table for the block according to its mode; returns bytes taken or an error. */
static int seq_table(Zstd *s, u32 kind, u32 mode, const u8 *src, u32 size) {
  static const u32 max_sym[3] = {LL_MAX_SYM, OF_MAX_SYM, ML_MAX_SYM};
  static const u32 max_log[3] = {LL_MAX_LOG, OF_MAX_LOG, ML_MAX_LOG};
  SeqEnt *t = kind == K_LL ? s->ll : kind == K_OF ? s->of : s->ml;
  u32 *log = kind == K_LL ? &s->ll_log : kind == K_OF ? &s->of_log : &s->ml_log;
  u32 *has = kind == K_LL ? &s->has_ll : kind == K_OF ? &s->has_of : &s->has_ml;
  int16_t norm[64];
  int taken = 0;
  u32 nsym, lg;
  if (mode == 3) { /* repeat */
    return *has ? 0 : E_BAD_SEQUENCES;
  }
  if (mode == 1) { /* RLE */
    if (size < 1 || src[0] > max_sym[kind]) return E_BAD_SEQUENCES;
    seq_value(kind, src[0], &t[0]);
    t[0].base = 0;
    t[0].nbits = 0;
    *log = 0;
    *has = 1;
    return 1;
  }
  if (mode == 0) {
    const int16_t *d = kind == K_LL ? ll_default : kind == K_OF ? of_default : ml_default;
    nsym = kind == K_LL ? 36 : kind == K_OF ? 29 : 53;
    for (u32 i = 0; i < nsym; i++) norm[i] = d[i];
    lg = kind == K_OF ? 5 : 6;
  } else {
    taken = read_fse_header(src, size, norm, max_sym[kind], max_log[kind], &lg);
    if (taken < 0) return taken;
    nsym = max_sym[kind] + 1;
  }
  FseEnt *f = s->scratch;
  int r = build_fse(f, norm, nsym, lg);
  if (r < 0) return r;
  for (u32 i = 0; i < (1u << lg); i++) {
    seq_value(kind, f[i].sym, &t[i]);
    t[i].base = f[i].base;
    t[i].nbits = f[i].nbits;
  }
  *log = lg;
  *has = 1;
  return taken;
}

/* ---- Literals (RFC 8878 3.1.1.3.1) ---- */

/* Reads a Huffman tree description into s->huf; returns bytes taken or an error. */
static int read_huffman_tree(Zstd *s, const u8 *src, u32 size) {
  u8 w[256];
  u32 n;
  u32 taken;
  if (size < 1) return E_BAD_HUFFMAN;
  u32 hb = src[0];
  if (hb >= 128) {
    n = hb - 127;
    taken = 1 + (n + 1) / 2;
    if (taken > size) return E_BAD_HUFFMAN;
    for (u32 i = 0; i < n; i++) w[i] = (i & 1) ? (src[1 + i / 2] & 15) : (src[1 + i / 2] >> 4);
  } else {
    taken = 1 + hb;
    if (taken > size) return E_BAD_HUFFMAN;
    int16_t norm[16];
    u32 lg;
    int h = read_fse_header(src + 1, hb, norm, 12, 6, &lg);
    if (h < 0) return E_BAD_HUFFMAN;
    FseEnt *t = s->scratch;
    if (build_fse(t, norm, 13, lg) < 0) return E_BAD_HUFFMAN;
    BitR b;
    if (br_init(&b, src + 1 + h, hb - (u32)h) < 0) return E_BAD_HUFFMAN;
    u32 mask = (1u << lg) - 1;
    u32 s1 = br_read(&b, lg) & mask, s2;
    br_reload(&b);
    s2 = br_read(&b, lg) & mask;
    br_reload(&b);
    n = 0;
    for (;;) {
      if (n > 253) return E_BAD_HUFFMAN;
      w[n++] = t[s1].sym;
      s1 = (t[s1].base + br_read(&b, t[s1].nbits)) & mask;
      br_reload(&b);
      if (br_overflow(&b)) {
        w[n++] = t[s2].sym;
        break;
      }
      if (n > 253) return E_BAD_HUFFMAN;
      w[n++] = t[s2].sym;
      s2 = (t[s2].base + br_read(&b, t[s2].nbits)) & mask;
      br_reload(&b);
      if (br_overflow(&b)) {
        w[n++] = t[s1].sym;
        break;
      }
    }
  }
  /* Weights to code lengths; the last symbol's weight is implied by the others. */
  u32 rank[HUF_MAX_BITS + 2] = {0};
  u32 total = 0;
  for (u32 i = 0; i < n; i++) {
    if (w[i] > HUF_MAX_BITS) return E_BAD_HUFFMAN;
    rank[w[i]]++;
    total += (1u << w[i]) >> 1;
  }
  if (total == 0) return E_BAD_HUFFMAN;
  u32 bits = highbit(total) + 1;
  if (bits > HUF_MAX_BITS) return E_BAD_HUFFMAN;
  u32 rest = (1u << bits) - total;
  if (rest & (rest - 1)) return E_BAD_HUFFMAN;
  u32 last = highbit(rest) + 1;
  w[n] = (u8)last;
  rank[last]++;
  if (rank[1] < 2 || (rank[1] & 1)) return E_BAD_HUFFMAN;
  u32 next[HUF_MAX_BITS + 2];
  u32 pos = 0;
  for (u32 k = 1; k <= bits; k++) {
    next[k] = pos;
    pos += rank[k] << (k - 1);
  }
  for (u32 sym = 0; sym <= n; sym++) {
    u32 k = w[sym];
    if (k == 0) continue;
    u32 len = 1u << (k - 1);
    u16 e = (u16)((sym << 8) | (bits + 1 - k));
    u16 *d = s->huf + next[k];
    for (u32 i = 0; i < len; i++) d[i] = e;
    next[k] += len;
  }
  s->huf_bits = bits;
  s->has_huf = 1;
  return (int)taken;
}

/* Decodes one Huffman stream of exactly `n` symbols into dst. */
static int huf_stream(const Zstd *s, u8 *dst, u32 n, const u8 *src, u32 size) {
  BitR b;
  if (br_init(&b, src, size) < 0) return E_BAD_HUFFMAN;
  const u16 *t = s->huf;
  u32 bits = s->huf_bits;
  u32 i = 0;
  /* 4 symbols per refill: 4 * 11 bits fit in the 57 a refill guarantees. */
  while (i + 4 <= n) {
    br_reload(&b);
    for (int k = 0; k < 4; k++) {
      u16 e = t[br_peek(&b, bits)];
      dst[i++] = (u8)(e >> 8);
      b.used += e & 15u;
    }
  }
  while (i < n) {
    br_reload(&b);
    u16 e = t[br_peek(&b, bits)];
    dst[i++] = (u8)(e >> 8);
    b.used += e & 15u;
  }
  br_reload(&b);
  return br_finished(&b) ? 0 : E_BAD_HUFFMAN;
}

/* Decodes the literals section into s->lit; returns the bytes it took (or an error) and sets *lit_len. */
static int read_literals(Zstd *s, const u8 *src, u32 size, u32 *lit_len) {
  if (size < 1) return E_BAD_LITERALS;
  u32 type = src[0] & 3, fmt = (src[0] >> 2) & 3;
  if (type < 2) { /* raw or RLE */
    u32 hsize, regen;
    if ((fmt & 1) == 0) {
      hsize = 1;
      regen = src[0] >> 3;
    } else if (fmt == 1) {
      if (size < 2) return E_BAD_LITERALS;
      hsize = 2;
      regen = (src[0] >> 4) | ((u32)src[1] << 4);
    } else {
      if (size < 3) return E_BAD_LITERALS;
      hsize = 3;
      regen = (src[0] >> 4) | ((u32)src[1] << 4) | ((u32)src[2] << 12);
    }
    if (regen > s->block_max) return E_BAD_LITERALS;
    *lit_len = regen;
    if (type == 0) {
      if (regen > size - hsize) return E_BAD_LITERALS;
      mem_copy(s->lit, src + hsize, regen);
      return (int)(hsize + regen);
    }
    if (size < hsize + 1) return E_BAD_LITERALS;
    fill(s->lit, src[hsize], regen);
    return (int)(hsize + 1);
  }
  /* Huffman-coded, with a new tree (2) or the previous one (3). */
  u32 hsize, regen, comp, streams = fmt == 0 ? 1 : 4;
  u64 h = 0;
  for (u32 i = 0; i < 5 && i < size; i++) h |= (u64)src[i] << (8 * i);
  if (fmt < 2) {
    hsize = 3;
    regen = (u32)(h >> 4) & 0x3FF;
    comp = (u32)(h >> 14) & 0x3FF;
  } else if (fmt == 2) {
    hsize = 4;
    regen = (u32)(h >> 4) & 0x3FFF;
    comp = (u32)(h >> 18) & 0x3FFF;
  } else {
    hsize = 5;
    regen = (u32)(h >> 4) & 0x3FFFF;
    comp = (u32)(h >> 22) & 0x3FFFF;
  }
  if (size < hsize || regen > s->block_max || comp > size - hsize) return E_BAD_LITERALS;
  const u8 *p = src + hsize;
  u32 left = comp;
  if (type == 2) {
    int t = read_huffman_tree(s, p, left);
    if (t < 0) return t;
    p += t;
    left -= (u32)t;
  } else if (!s->has_huf) {
    return E_BAD_HUFFMAN;
  }
  if (streams == 1) {
    int r = huf_stream(s, s->lit, regen, p, left);
    if (r < 0) return r;
  } else {
    if (left < 10) return E_BAD_HUFFMAN;
    u32 z1 = p[0] | ((u32)p[1] << 8), z2 = p[2] | ((u32)p[3] << 8), z3 = p[4] | ((u32)p[5] << 8);
    u32 sum = 6 + z1 + z2 + z3;
    if (sum >= left) return E_BAD_HUFFMAN;
    u32 z4 = left - sum;
    u32 seg = (regen + 3) / 4;
    if (3 * seg > regen) return E_BAD_HUFFMAN;
    const u8 *q = p + 6;
    int r = huf_stream(s, s->lit, seg, q, z1);
    if (r == 0) r = huf_stream(s, s->lit + seg, seg, q + z1, z2);
    if (r == 0) r = huf_stream(s, s->lit + 2 * seg, seg, q + z1 + z2, z3);
    if (r == 0) r = huf_stream(s, s->lit + 3 * seg, regen - 3 * seg, q + z1 + z2 + z3, z4);
    if (r < 0) return r;
  }
  *lit_len = regen;
  return (int)(hsize + comp);
}

/* ---- Blocks ---- */

/* Decodes a compressed block of `size` bytes at src into the window buffer at s->op. */
static int compressed_block(Zstd *s, const u8 *src, u32 size) {
  u32 lit_len = 0;
  int r = read_literals(s, src, size, &lit_len);
  if (r < 0) return r;
  const u8 *p = src + r;
  const u8 *end = src + size;
  if (p >= end) return E_BAD_SEQUENCES;
  u32 nseq = p[0];
  if (nseq < 128) {
    p += 1;
  } else if (nseq < 255) {
    if (end - p < 2) return E_BAD_SEQUENCES;
    nseq = ((nseq - 128) << 8) | p[1];
    p += 2;
  } else {
    if (end - p < 3) return E_BAD_SEQUENCES;
    nseq = (p[1] | ((u32)p[2] << 8)) + 0x7F00;
    p += 3;
  }
  u8 *op = s->buf + s->op;
  u8 *const block_end = op + s->block_max;
  const u8 *lp = s->lit;
  const u8 *const lit_end = s->lit + lit_len;
  if (nseq > 0) {
    if (p >= end) return E_BAD_SEQUENCES;
    u32 modes = *p++;
    if (modes & 3) return E_RESERVED;
    r = seq_table(s, K_LL, modes >> 6, p, (u32)(end - p));
    if (r < 0) return r;
    p += r;
    r = seq_table(s, K_OF, (modes >> 4) & 3, p, (u32)(end - p));
    if (r < 0) return r;
    p += r;
    r = seq_table(s, K_ML, (modes >> 2) & 3, p, (u32)(end - p));
    if (r < 0) return r;
    p += r;
    BitR b;
    if (br_init(&b, p, (u32)(end - p)) < 0) return E_BAD_SEQUENCES;
    const SeqEnt *llt = s->ll, *oft = s->of, *mlt = s->ml;
    u32 llm = (1u << s->ll_log) - 1, ofm = (1u << s->of_log) - 1, mlm = (1u << s->ml_log) - 1;
    u32 lls = br_read(&b, s->ll_log) & llm;
    u32 ofs = br_read(&b, s->of_log) & ofm;
    u32 mls = br_read(&b, s->ml_log) & mlm;
    u32 r1 = s->rep[0], r2 = s->rep[1], r3 = s->rep[2];
    u8 *const hist = s->buf + s->hist;
    u64 window = s->window;
    for (u32 i = 0; i < nseq; i++) {
      const SeqEnt *el = &llt[lls], *eo = &oft[ofs], *em = &mlt[mls];
      br_reload(&b);
      u32 ofv = eo->value + br_read(&b, eo->extra);
      if (eo->extra + em->extra + el->extra > 56) br_reload(&b);
      u32 ml = em->value + br_read(&b, em->extra);
      u32 ll = el->value + br_read(&b, el->extra);
      u32 off;
      if (ofv > 3) {
        off = ofv - 3;
        r3 = r2;
        r2 = r1;
        r1 = off;
      } else {
        u32 idx = ofv - 1 + (ll == 0);
        if (idx == 0) {
          off = r1;
        } else {
          off = idx == 1 ? r2 : idx == 2 ? r3 : r1 - 1;
          if (idx != 1) r3 = r2;
          r2 = r1;
          r1 = off;
        }
      }
      if (i + 1 < nseq) {
        br_reload(&b);
        lls = (el->base + br_read(&b, el->nbits)) & llm;
        mls = (em->base + br_read(&b, em->nbits)) & mlm;
        ofs = (eo->base + br_read(&b, eo->nbits)) & ofm;
      }
      /* Execute: ll literals, then ml bytes from off back. */
      if (ll > (u32)(lit_end - lp) || (u64)ll + ml > (u64)(block_end - op)) return E_BAD_SEQUENCES;
      if (ll) {
        wild_copy16(op, lp, ll);
        op += ll;
        lp += ll;
      }
      if (off == 0 || off > (u32)(op - hist) || off > window) return E_BAD_OFFSET;
      copy_match(op, off, ml);
      op += ml;
    }
    br_reload(&b);
    if (!br_finished(&b)) return E_BAD_SEQUENCES;
    s->rep[0] = r1, s->rep[1] = r2, s->rep[2] = r3;
  } else if (p != end) {
    return E_BAD_SEQUENCES;
  }
  u32 rest = (u32)(lit_end - lp);
  if (rest > (u32)(block_end - op)) return E_BAD_SEQUENCES;
  mem_copy(op, lp, rest);
  op += rest;
  s->op = (u32)(op - s->buf);
  return 0;
}

/* ---- Frames ---- */

/* The window buffer a window needs: the window rounded up to a power of two, half that again, one block. */
static u64 buffer_size(u64 window) {
  u64 w = MIN_BUF_WINDOW;
  while (w < window) w <<= 1;
  return w + w / 2 + BLOCK_MAX;
}

/* Replaces the window buffer by one of `cap` usable bytes; only called with no unread output. */
static int replace_buffer(Zstd *s, u64 cap) {
  if (cap + SLACK > 0x40000000u) return E_WINDOW_TOO_LARGE;
  eng_free(s->buf);
  s->buf = 0;
  s->buf_cap = 0;
  u8 *b = (u8 *)eng_alloc((u32)cap + SLACK);
  if (!b) return E_NO_MEMORY;
  s->buf = b;
  s->buf_cap = (u32)cap;
  s->op = s->out_start = s->hist = 0;
  return 0;
}

static u32 avail(const Zstd *s) { return s->in_end - s->in_pos; }

/* Returns NEED_INPUT, or TRUNCATED once no more input will come. */
static int need(const Zstd *s) { return s->input_final ? E_TRUNCATED : ST_NEED_INPUT; }

static int frame_header(Zstd *s) {
  if (avail(s) < 1) return need(s);
  const u8 *p = s->in + s->in_pos;
  u32 d = p[0];
  u32 fcs_flag = d >> 6, single = (d >> 5) & 1, did_flag = d & 3;
  static const u32 did_size[4] = {0, 1, 2, 4};
  static const u32 fcs_size[4] = {0, 2, 4, 8};
  u32 fsize = fcs_flag == 0 ? single : fcs_size[fcs_flag];
  u32 hsize = 1 + (single ? 0 : 1) + did_size[did_flag] + fsize;
  if (d & 0x08) return E_RESERVED;
  if (avail(s) < hsize) return need(s);
  u32 q = 1;
  u64 window = 0;
  if (!single) {
    u32 wd = p[q++];
    u32 wlog = 10 + (wd >> 3);
    u64 base = 1ull << wlog;
    window = base + (base >> 3) * (wd & 7);
  }
  u32 dict = 0;
  for (u32 i = 0; i < did_size[did_flag]; i++) dict |= (u32)p[q++] << (8 * i);
  if (dict != 0) return E_DICTIONARY;
  u64 fcs = 0;
  for (u32 i = 0; i < fsize; i++) fcs |= (u64)p[q++] << (8 * i);
  if (fsize == 2) fcs += 256;
  if (single) window = fcs;
  s->window = window;
  if (window > (1ull << s->max_window_log)) return E_WINDOW_TOO_LARGE;
  u64 cap = buffer_size(window);
  if (!s->buf || s->buf_cap < cap) {
    /* A larger window buffer replaces the old one: first let JS take the output still in it. */
    if (s->op != s->out_start) return ST_OUTPUT_FULL;
    int r = replace_buffer(s, cap);
    if (r < 0) return r;
  }
  s->in_pos += hsize;
  s->checksum_flag = (d >> 2) & 1;
  s->has_fcs = fsize > 0;
  s->fcs = fcs;
  s->window = window;
  s->block_max = window < BLOCK_MAX ? (u32)window : BLOCK_MAX;
  s->frame_out = 0;
  s->rep[0] = 1, s->rep[1] = 4, s->rep[2] = 8;
  s->has_huf = s->has_ll = s->has_of = s->has_ml = 0;
  s->hist = s->op;
  if (s->checksum_flag) xxh_init(&s->xxh);
  s->state = S_BLOCK_HEADER;
  return 0;
}

static int block(Zstd *s) {
  u32 size = s->block_type == 1 ? 1 : s->block_size;
  if (avail(s) < size) return need(s);
  /* Room for a whole block after op; else slide the window to the front (once JS has read the output). */
  if (s->buf_cap - s->op < BLOCK_MAX) {
    if (s->op != s->out_start) return ST_OUTPUT_FULL;
    u32 keep = s->op - s->hist;
    if (keep > s->window) keep = (u32)s->window;
    u32 shift = s->op - keep;
    mem_move(s->buf, s->buf + shift, keep);
    s->hist = s->hist > shift ? s->hist - shift : 0;
    s->op = keep;
    s->out_start = keep;
  }
  const u8 *src = s->in + s->in_pos;
  u32 start = s->op;
  if (s->block_type == 0) {
    mem_copy(s->buf + s->op, src, size);
    s->op += size;
  } else if (s->block_type == 1) {
    fill(s->buf + s->op, src[0], s->block_size);
    s->op += s->block_size;
  } else {
    int r = compressed_block(s, src, size);
    if (r < 0) return r;
  }
  s->in_pos += size;
  u32 produced = s->op - start;
  s->frame_out += produced;
  if (s->has_fcs && s->frame_out > s->fcs) return E_BAD_CONTENT_SIZE;
  if (s->checksum_flag) xxh_update(&s->xxh, s->buf + start, produced);
  s->state = s->last_block ? S_CHECKSUM : S_BLOCK_HEADER;
  return 0;
}

static int run(Zstd *s) {
  for (;;) {
    int r = 0;
    switch (s->state) {
      case S_MAGIC: {
        if (avail(s) < 4) {
          if (!s->input_final) return ST_NEED_INPUT;
          if (avail(s) > 0) return E_TRUNCATED;
          return s->frames ? ST_DONE : E_NO_FRAME;
        }
        u32 m = load32(s->in + s->in_pos);
        if (m == MAGIC) {
          s->state = S_FRAME_HEADER;
        } else if ((m & 0xFFFFFFF0u) == SKIP_MAGIC) {
          s->state = S_SKIP_SIZE;
        } else {
          return E_BAD_MAGIC;
        }
        s->in_pos += 4;
        s->frames++;
        break;
      }
      case S_SKIP_SIZE:
        if (avail(s) < 4) return need(s);
        s->skip = load32(s->in + s->in_pos);
        s->in_pos += 4;
        s->state = S_SKIP;
        break;
      case S_SKIP: {
        u32 n = avail(s) < s->skip ? avail(s) : s->skip;
        s->in_pos += n;
        s->skip -= n;
        if (s->skip) return need(s);
        s->state = S_MAGIC;
        break;
      }
      case S_FRAME_HEADER:
        r = frame_header(s);
        break;
      case S_BLOCK_HEADER: {
        if (avail(s) < 3) return need(s);
        const u8 *p = s->in + s->in_pos;
        u32 h = p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16);
        s->last_block = h & 1;
        s->block_type = (h >> 1) & 3;
        s->block_size = h >> 3;
        if (s->block_type == 3) return E_BAD_BLOCK_TYPE;
        if (s->block_size > s->block_max) return E_BLOCK_TOO_LARGE;
        s->in_pos += 3;
        s->state = S_BLOCK;
        break;
      }
      case S_BLOCK:
        r = block(s);
        break;
      case S_CHECKSUM:
        if (s->has_fcs && s->frame_out != s->fcs) return E_BAD_CONTENT_SIZE;
        if (s->checksum_flag) {
          if (avail(s) < 4) return need(s);
          if (load32(s->in + s->in_pos) != (u32)xxh_digest(&s->xxh)) return E_BAD_CHECKSUM;
          s->in_pos += 4;
        }
        s->state = S_MAGIC;
        break;
      default:
        return ST_DONE;
    }
    if (r != 0) return r;
  }
}

/** Creates a decoder that accepts windows up to 2^max_window_log bytes (10..30); 0 when out of memory. */
EXPORT(zstd_new) Zstd *zstd_new(u32 max_window_log) {
  Zstd *s = (Zstd *)eng_alloc(sizeof(Zstd));
  if (!s) return 0;
  mem_zero(s, (u32)((u8 *)&s->huf - (u8 *)s));
  s->state = S_MAGIC;
  s->max_window_log = max_window_log < 10 ? 10 : max_window_log > 30 ? 30 : max_window_log;
  return s;
}

/** Frees a decoder and its window. */
EXPORT(zstd_free) void zstd_free(Zstd *s) {
  if (!s) return;
  eng_free(s->buf);
  eng_free(s);
}

/** Moves unread input to the front of the input buffer and returns where JS may append. */
EXPORT(zstd_in_ptr) u8 *zstd_in_ptr(Zstd *s) { return input_append_at(s->in, &s->in_pos, &s->in_end); }

/** Bytes JS may append at zstd_in_ptr(). */
EXPORT(zstd_in_space) u32 zstd_in_space(Zstd *s) { return IN_CAP - s->in_end; }

/** Records that JS appended `n` bytes at zstd_in_ptr(). */
EXPORT(zstd_in_commit) void zstd_in_commit(Zstd *s, u32 n) { input_commit(&s->in_end, IN_CAP, n); }

/** Input bytes not yet consumed. */
EXPORT(zstd_in_left) u32 zstd_in_left(Zstd *s) { return s->in_end - s->in_pos; }

/** Declares that no input follows what has been committed. */
EXPORT(zstd_finish) void zstd_finish(Zstd *s) { s->input_final = 1; }

/**
 * Decodes as far as the input and the output room allow. Returns ST_NEED_INPUT (1), ST_OUTPUT_FULL (2),
 * ST_DONE (3) or a negative error (repeated by every later call). New output is at zstd_out_ptr() for
 * zstd_out_len() bytes, valid until the next step.
 */
EXPORT(zstd_step) int zstd_step(Zstd *s) {
  s->out_start = s->op;
  if (s->error) return s->error;
  if (s->state == S_DONE) return ST_DONE;
  int r = run(s);
  if (r == ST_DONE) s->state = S_DONE;
  if (r < 0) s->error = r;
  return r;
}

/** Start of the output produced by the last step. */
EXPORT(zstd_out_ptr) u8 *zstd_out_ptr(Zstd *s) { return s->buf + s->out_start; }

/** Length of the output produced by the last step. */
EXPORT(zstd_out_len) u32 zstd_out_len(Zstd *s) { return s->op - s->out_start; }

/** The 1-based number of the frame being decoded (skippable frames count), for error messages. */
EXPORT(zstd_frame) u32 zstd_frame(Zstd *s) { return s->frames + (s->state == S_MAGIC); }

/** The window size of the current frame (for error messages). */
EXPORT(zstd_window) double zstd_window(Zstd *s) { return (double)s->window; }
