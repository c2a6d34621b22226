/*
 * A streaming gzip decoder (RFC 1952 members of RFC 1951 deflate data).
 *
 * Memory. Each inflater is one block: state, decode tables, an input buffer that JS fills, and an output
 * buffer whose first 32 KiB hold the window. Output is produced linearly after the window; when less than
 * half a chunk of room is left, the last 32 KiB slide to the front, so matches always copy from a plain
 * array and never wrap. JS reads new output as a view of [out_start, op) after each step.
 *
 * Resumability. Decoding works in units that are either completed or not started: a gzip header field, a
 * block header including its whole code-length tables, a run of stored bytes, one literal or one
 * length/distance pair, the trailer. When a unit lacks input the step returns NEED_INPUT with the unit's
 * bytes still in the input buffer (JS appends behind them), so no unit ever has to be suspended halfway.
 * The input buffer is far larger than the largest unit (a dynamic block header, under 600 bytes).
 *
 * Speed. A fast loop runs while at least 16 input bytes and 274 bytes of output room remain: a 64-bit bit
 * buffer refilled without branches, an 11-bit first-level literal/length table and an 8-bit distance table
 * whose entries carry the symbol's base value and extra-bit count so a length or distance is decoded with
 * one lookup and one shift, up to three literals per refill, and match copies of 16 bytes at a time (SIMD) or
 * 8 (plain) that may overrun into slack behind the output.
 *
 * Safety. Every table index is masked, subtable offsets come from our own builder, the fast loop's reads
 * stay inside its input margin and its writes inside the output slack, and every distance is checked
 * against the start of the member's history. Every malformed input ends in a negative status.
 */
#include "engine.h"
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define WSIZE 32768u
#define OUT_CHUNK (256u * 1024u)
#define OUT_CAP (WSIZE + OUT_CHUNK)
#define OUT_SLACK 64u
#define IN_CAP (128u * 1024u)
#define FAST_IN 16u
#define FAST_OUT (258u + 16u) /* 3 literals + a 258-byte match + 15 bytes of copy overrun fit with the slack */

/* Statuses returned by inf_step (0 is used internally for "go on"); errors are negative and sticky. */
enum {
  ST_NEED_INPUT = 1,
  ST_OUTPUT_FULL = 2,
  ST_DONE = 3,
  ST_MEMBER_END = 4, /* only with an external CRC: a member's trailer was read; JS checks inf_trailer_crc() */
  E_TRUNCATED = -1,
  E_BAD_MAGIC = -2,
  E_BAD_METHOD = -3,
  E_BAD_FLAGS = -4,
  E_BAD_HEADER_CRC = -5,
  E_BAD_BLOCK_TYPE = -6,
  E_BAD_STORED_LEN = -7,
  E_TOO_MANY_CODES = -8,
  E_BAD_CODE_LENGTHS = -9,
  E_BAD_REPEAT = -10,
  E_NO_END_OF_BLOCK = -11,
  E_BAD_LITLEN_CODES = -12,
  E_BAD_DIST_CODES = -13,
  E_BAD_LITLEN_SYMBOL = -14,
  E_BAD_DIST_SYMBOL = -15,
  E_DIST_TOO_FAR = -16,
  E_BAD_CRC = -17,
  E_BAD_ISIZE = -18,
  E_TRAILING_GARBAGE = -19,
};

/* Where decoding stands between units. */
enum { S_HEADER, S_BLOCK, S_HUFF, S_STORED, S_TRAILER, S_MEMBER_END, S_PADDING, S_DONE };
/* Gzip header fields, in order. */
enum { H_FIXED, H_XLEN, H_XSKIP, H_NAME, H_COMMENT, H_HCRC };

/*
 * Decode table entry (u32):
 *   bits 0-5   bits to consume: code length (+ extra bits for lengths and distances); at most 28
 *   bits 6-9   code length alone (for a subtable pointer: the subtable's index bits)
 *   bit 10     end of block        bit 11 subtable pointer        bit 12 invalid symbol
 *   bits 16-30 literal byte, length/distance base, or subtable offset
 *   bit 31     literal (only literals have it, so `e >> 16` is the value of every other entry)
 * Keeping the count in the low 6 bits lets the fast loop write `bb >>= e & 63` (WebAssembly shifts mask
 * their count anyway, so the AND costs nothing) and `bc -= e`: bc is then only meaningful modulo 64, and
 * the fast loop reads it as such.
 */
#define F_EOB 0x400u
#define F_SUB 0x800u
#define F_BAD 0x1000u
#define F_LIT 0x80000000u
#define E_USE(e) ((e) & 63u)
#define E_LEN(e) (((e) >> 6) & 15u)
#define E_VAL(e) ((e) >> 16)
#define ENTRY(val, codelen, use) (((u32)(val) << 16) | ((u32)(codelen) << 6) | (u32)(use))

#define LT_BITS 11u
#define DT_BITS 8u
#define CL_BITS 7u
/* First level plus at most one 2^(15-bits) subtable per long code. */
#define LT_SIZE ((1u << LT_BITS) + 288u * (1u << (15u - LT_BITS)))
#define DT_SIZE ((1u << DT_BITS) + 32u * (1u << (15u - DT_BITS)))
#define CL_SIZE (1u << CL_BITS)

enum { K_LITLEN, K_DIST, K_CODELEN };

typedef struct {
  u64 bb;        /* bit buffer: unconsumed bits, LSB first; bits above bc are zero between units */
  u32 bc;        /* number of valid bits in bb */
  u32 in_pos;    /* next unread byte in in[] */
  u32 in_end;    /* end of the bytes JS has written */
  u32 op;        /* next output byte in out[] */
  u32 out_start; /* start of this step's output */
  u32 hist;      /* first byte of out[] that belongs to the current member (distances may not reach before) */
  u32 crc_pos;   /* output before this has been folded into crc/isize */
  u32 crc;
  u32 isize;
  u32 state;
  u32 hstate;
  u32 flags;     /* gzip FLG of the current member */
  u32 hcrc;      /* CRC-32 of the header bytes read so far */
  u32 skip;      /* FEXTRA bytes left */
  u32 last;      /* current block is the final one */
  u32 stored;    /* stored bytes left in the current block */
  u32 member;    /* 1-based number of the current member */
  int32_t error;
  u32 input_final;
  u32 ext_crc;     /* JS computes the CRC-32 of the output (with a faster native CRC) */
  u32 trailer_crc; /* the CRC-32 the last member's trailer recorded */
  const u32 *lt; /* literal/length table; the distance table follows it at lt + LT_SIZE */
  u32 tabs[LT_SIZE + DT_SIZE];
  u32 cl_tab[CL_SIZE];
  u8 lens[288 + 32];
  u8 in[IN_CAP + 16];
  u8 out[OUT_CAP + OUT_SLACK];
} Inflater;

static const u16 len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const u8 len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const u16 dist_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                  193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const u8 dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* The order in which code length code lengths are stored (RFC 1951 3.2.7). */
static const u8 cl_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

static u32 fixed_tabs[LT_SIZE + DT_SIZE];

static u32 make_entry(u32 kind, u32 sym, u32 codelen) {
  if (kind == K_LITLEN) {
    if (sym < 256) return F_LIT | ENTRY(sym, codelen, codelen);
    if (sym == 256) return F_EOB | ENTRY(0, codelen, codelen);
    if (sym <= 285) return ENTRY(len_base[sym - 257], codelen, codelen + len_extra[sym - 257]);
    return F_BAD;
  }
  if (kind == K_DIST) {
    if (sym < 30) return ENTRY(dist_base[sym], codelen, codelen + dist_extra[sym]);
    return F_BAD;
  }
  return ENTRY(sym, codelen, codelen);
}

/*
 * Builds the decode table of a canonical Huffman code (RFC 1951 3.2.2) from `n` code lengths. Codes of up
 * to `tb` bits fill every first-level slot that ends in their bit-reversed code; longer codes go to a
 * subtable of 2^(max-tb) entries hanging off their first `tb` bits (canonical order keeps codes that
 * share those bits next to each other). Over-subscribed codes fail; incomplete codes fail unless they are
 * a single one-bit code (or, for distances, empty), as zlib allows; the unused slots are marked invalid.
 * Returns 0 or -1.
 */
static int build_table(u32 *table, u32 tb, const u8 *lens, u32 n, u32 kind) {
  u32 count[16] = {0};
  for (u32 i = 0; i < n; i++) count[lens[i]]++;
  count[0] = 0;
  u32 max = 0;
  for (u32 l = 1; l < 16; l++)
    if (count[l]) max = l;
  int32_t left = 1;
  for (u32 l = 1; l < 16; l++) {
    left = (left << 1) - (int32_t)count[l];
    if (left < 0) return -1;
  }
  if (left > 0) {
    int allowed = kind != K_CODELEN && (max == 1 || (max == 0 && kind == K_DIST));
    if (!allowed) return -1;
    for (u32 i = 0; i < (1u << tb); i++) table[i] = F_BAD;
    if (max == 0) return 0;
  }
  /* Counting sort by length (stable, so symbols stay in order within a length): canonical code order. */
  u16 sorted[288];
  u32 offs[16];
  offs[1] = 0;
  for (u32 l = 1; l < 15; l++) offs[l + 1] = offs[l] + count[l];
  u32 used = offs[15] + count[15];
  for (u32 sym = 0; sym < n; sym++)
    if (lens[sym]) sorted[offs[lens[sym]]++] = (u16)sym;
  u32 sub_bits = max > tb ? max - tb : 0;
  u32 sub_next = 1u << tb;
  int32_t cur_prefix = -1;
  u32 cur_sub = 0;
  /*
   * r is the current canonical code bit-reversed (codes are read LSB first). Lengthening a code appends
   * zeros at its low end, which leaves the reversed value unchanged; incrementing it is an increment that
   * carries from bit l-1 downwards.
   */
  u32 r = 0;
  for (u32 k = 0; k < used; k++) {
    u32 sym = sorted[k];
    u32 l = lens[sym];
    if (l <= tb) {
      u32 e = make_entry(kind, sym, l);
      for (u32 i = r; i < (1u << tb); i += 1u << l) table[i] = e;
    } else {
      u32 prefix = r & ((1u << tb) - 1);
      if ((int32_t)prefix != cur_prefix) {
        cur_prefix = (int32_t)prefix;
        cur_sub = sub_next;
        sub_next += 1u << sub_bits;
        table[prefix] = F_SUB | ENTRY(cur_sub, sub_bits, tb);
      }
      u32 rl = l - tb;
      u32 e = make_entry(kind, sym, rl);
      if (e & F_BAD) e = F_BAD;
      for (u32 i = r >> tb; i < (1u << sub_bits); i += 1u << rl) table[cur_sub + i] = e;
    }
    u32 inc = 1u << (l - 1);
    while (r & inc) inc >>= 1;
    r = inc ? (r & (inc - 1)) + inc : 0;
  }
  return 0;
}

static void build_fixed(void) {
  static int ready;
  if (ready) return;
  u8 lens[288];
  u32 i = 0;
  for (; i < 144; i++) lens[i] = 8;
  for (; i < 256; i++) lens[i] = 9;
  for (; i < 280; i++) lens[i] = 7;
  for (; i < 288; i++) lens[i] = 8;
  build_table(fixed_tabs, LT_BITS, lens, 288, K_LITLEN);
  for (i = 0; i < 32; i++) lens[i] = 5;
  build_table(fixed_tabs + LT_SIZE, DT_BITS, lens, 32, K_DIST);
  ready = 1;
}

/* ---- bit and byte input ---- */

/*
 * Adds whole input bytes while the buffer holds at most 48 bits (so at most 56 after), never past in_end.
 * Keeping bc below 64 matters: the fast refill shifts by bc, and a 64-bit shift would wrap in WebAssembly.
 */
static inline void refill_slow(Inflater *s) {
  while (s->bc <= 48 && s->in_pos < s->in_end) {
    s->bb |= (u64)s->in[s->in_pos++] << s->bc;
    s->bc += 8;
  }
}

/* Whole bytes available to byte-aligned readers (bit buffer first, then the input buffer). */
static inline u32 bytes_avail(const Inflater *s) { return s->bc / 8 + (s->in_end - s->in_pos); }

/* Takes one byte; the caller has checked bytes_avail() and that the reader is byte-aligned. */
static inline u32 take_byte(Inflater *s) {
  if (s->bc >= 8) {
    u32 v = (u32)(s->bb & 0xff);
    s->bb >>= 8;
    s->bc -= 8;
    return v;
  }
  return s->in[s->in_pos++];
}

static inline u32 peek_byte(const Inflater *s) { return s->bc >= 8 ? (u32)(s->bb & 0xff) : s->in[s->in_pos]; }

static inline int need_input(const Inflater *s) { return s->input_final ? E_TRUNCATED : ST_NEED_INPUT; }

/* Folds the member's output produced since the last call into its CRC and length. */
static void fold_crc(Inflater *s) {
  if (s->op > s->crc_pos) {
    if (!s->ext_crc) s->crc = crc32_update(s->crc, s->out + s->crc_pos, s->op - s->crc_pos);
    s->isize += s->op - s->crc_pos;
  }
  s->crc_pos = s->op;
}

/* ---- gzip header and trailer ---- */

static u32 header_byte(Inflater *s) {
  u8 b = (u8)take_byte(s);
  s->hcrc = crc32_update(s->hcrc, &b, 1);
  return b;
}

static int gzip_header(Inflater *s) {
  for (;;) {
    switch (s->hstate) {
      case H_FIXED: {
        if (bytes_avail(s) < 10) return need_input(s);
        s->hcrc = 0;
        u32 id1 = header_byte(s), id2 = header_byte(s), cm = header_byte(s), flg = header_byte(s);
        for (int i = 0; i < 6; i++) header_byte(s); /* MTIME, XFL, OS */
        if (id1 != 0x1f || id2 != 0x8b) return E_BAD_MAGIC;
        if (cm != 8) return E_BAD_METHOD;
        if (flg & 0xe0) return E_BAD_FLAGS;
        s->flags = flg;
        s->hstate = H_XLEN;
        break;
      }
      case H_XLEN:
        if (s->flags & 4) {
          if (bytes_avail(s) < 2) return need_input(s);
          u32 lo = header_byte(s);
          s->skip = lo | (header_byte(s) << 8);
        } else {
          s->skip = 0;
        }
        s->hstate = H_XSKIP;
        break;
      case H_XSKIP:
        while (s->skip) {
          if (!bytes_avail(s)) return need_input(s);
          header_byte(s);
          s->skip--;
        }
        s->hstate = H_NAME;
        break;
      case H_NAME:
      case H_COMMENT: {
        u32 bit = s->hstate == H_NAME ? 8 : 16;
        if (s->flags & bit) {
          for (;;) {
            if (!bytes_avail(s)) return need_input(s);
            if (header_byte(s) == 0) break;
          }
        }
        s->hstate = s->hstate == H_NAME ? H_COMMENT : H_HCRC;
        break;
      }
      case H_HCRC:
        if (s->flags & 2) {
          if (bytes_avail(s) < 2) return need_input(s);
          u32 want = s->hcrc & 0xffff;
          u32 lo = take_byte(s);
          u32 got = lo | (take_byte(s) << 8);
          if (got != want) return E_BAD_HEADER_CRC;
        }
        s->hstate = H_FIXED;
        s->crc = 0;
        s->isize = 0;
        s->hist = s->op;
        s->crc_pos = s->op;
        s->state = S_BLOCK;
        return 0;
    }
  }
}

static int gzip_trailer(Inflater *s) {
  s->bb >>= s->bc & 7;
  s->bc &= ~7u;
  if (bytes_avail(s) < 8) return need_input(s);
  fold_crc(s);
  u32 crc = 0, isize = 0;
  for (int i = 0; i < 4; i++) crc |= take_byte(s) << (8 * i);
  for (int i = 0; i < 4; i++) isize |= take_byte(s) << (8 * i);
  s->state = S_MEMBER_END;
  if (s->ext_crc) {
    s->trailer_crc = crc;
    if (isize != s->isize) return E_BAD_ISIZE;
    return ST_MEMBER_END;
  }
  if (crc != s->crc) return E_BAD_CRC;
  if (isize != s->isize) return E_BAD_ISIZE;
  return 0;
}

/* After a member: another member, zero padding (ignored, as Node's zlib does), or the end of the input. */
static int member_end(Inflater *s) {
  if (!bytes_avail(s)) return s->input_final ? ST_DONE : ST_NEED_INPUT;
  u32 b = peek_byte(s);
  if (b == 0x1f) {
    s->member++;
    s->state = S_HEADER;
    return 0;
  }
  if (b == 0) {
    s->state = S_PADDING;
    return 0;
  }
  return E_TRAILING_GARBAGE;
}

static int padding(Inflater *s) {
  while (bytes_avail(s)) {
    if (peek_byte(s) != 0) return E_TRAILING_GARBAGE;
    take_byte(s);
  }
  return s->input_final ? ST_DONE : ST_NEED_INPUT;
}

/* ---- block headers ---- */

/* Reads `n` bits (n <= 16) into *v; 0 when the input ran out. */
static inline int get_bits(Inflater *s, u32 n, u32 *v) {
  if (s->bc < n) {
    refill_slow(s);
    if (s->bc < n) return 0;
  }
  *v = (u32)s->bb & ((1u << n) - 1);
  s->bb >>= n;
  s->bc -= n;
  return 1;
}

/* Reads the code length tables of a dynamic block and builds its decode tables. 1: input ran out. */
static int dynamic_tables(Inflater *s) {
  u32 hlit, hdist, hclen, v;
  if (!get_bits(s, 5, &hlit) || !get_bits(s, 5, &hdist) || !get_bits(s, 4, &hclen)) return 1;
  hlit += 257;
  hdist += 1;
  hclen += 4;
  if (hlit > 286 || hdist > 30) return E_TOO_MANY_CODES;
  u8 cl[19];
  for (u32 i = 0; i < 19; i++) cl[i] = 0;
  for (u32 i = 0; i < hclen; i++) {
    if (!get_bits(s, 3, &v)) return 1;
    cl[cl_order[i]] = (u8)v;
  }
  if (build_table(s->cl_tab, CL_BITS, cl, 19, K_CODELEN) != 0) return E_BAD_CODE_LENGTHS;
  u32 total = hlit + hdist;
  u8 *lens = s->lens;
  for (u32 i = 0; i < total;) {
    refill_slow(s);
    u32 e = s->cl_tab[s->bb & (CL_SIZE - 1)];
    if (E_USE(e) > s->bc) return 1;
    s->bb >>= E_USE(e);
    s->bc -= E_USE(e);
    u32 sym = E_VAL(e);
    if (sym < 16) {
      lens[i++] = (u8)sym;
      continue;
    }
    u32 fill = 0, rep;
    if (sym == 16) {
      if (i == 0) return E_BAD_REPEAT;
      fill = lens[i - 1];
      if (!get_bits(s, 2, &rep)) return 1;
      rep += 3;
    } else if (sym == 17) {
      if (!get_bits(s, 3, &rep)) return 1;
      rep += 3;
    } else {
      if (!get_bits(s, 7, &rep)) return 1;
      rep += 11;
    }
    if (i + rep > total) return E_BAD_REPEAT;
    while (rep--) lens[i++] = (u8)fill;
  }
  if (lens[256] == 0) return E_NO_END_OF_BLOCK;
  if (build_table(s->tabs, LT_BITS, lens, hlit, K_LITLEN) != 0) return E_BAD_LITLEN_CODES;
  if (build_table(s->tabs + LT_SIZE, DT_BITS, lens + hlit, hdist, K_DIST) != 0) return E_BAD_DIST_CODES;
  s->lt = s->tabs;
  return 0;
}

static int block_header(Inflater *s) {
  refill_slow(s);
  if (s->bc < 3) return need_input(s);
  u32 last = (u32)s->bb & 1, type = ((u32)s->bb >> 1) & 3;
  if (type == 0) {
    u32 pad = (s->bc - 3) & 7;
    if (s->bc < 3 + pad + 32) return need_input(s); /* a refill leaves 49..56 bits unless input ran out */
    s->bb >>= 3 + pad;
    s->bc -= 3 + pad;
    u32 len = (u32)s->bb & 0xffff, nlen = ((u32)s->bb >> 16) & 0xffff;
    s->bb >>= 32;
    s->bc -= 32;
    if (len != (~nlen & 0xffff)) return E_BAD_STORED_LEN;
    s->stored = len;
    s->last = last;
    s->state = S_STORED;
    return 0;
  }
  if (type == 1) {
    s->bb >>= 3;
    s->bc -= 3;
    s->lt = fixed_tabs;
    s->last = last;
    s->state = S_HUFF;
    return 0;
  }
  if (type == 3) return E_BAD_BLOCK_TYPE;
  /* Dynamic: the whole header is one unit; on running out of input, rewind to the block's first bit. */
  u64 bb = s->bb;
  u32 bc = s->bc, in_pos = s->in_pos;
  s->bb >>= 3;
  s->bc -= 3;
  int r = dynamic_tables(s);
  if (r == 1) {
    s->bb = bb;
    s->bc = bc;
    s->in_pos = in_pos;
    return need_input(s);
  }
  if (r < 0) return r;
  s->last = last;
  s->state = S_HUFF;
  return 0;
}

static int stored_block(Inflater *s) {
  while (s->stored) {
    if (s->op >= OUT_CAP) return ST_OUTPUT_FULL;
    if (s->bc >= 8) {
      s->out[s->op++] = (u8)s->bb;
      s->bb >>= 8;
      s->bc -= 8;
      s->stored--;
      continue;
    }
    u32 n = s->stored;
    if (n > s->in_end - s->in_pos) n = s->in_end - s->in_pos;
    if (n > OUT_CAP - s->op) n = OUT_CAP - s->op;
    if (n == 0) return need_input(s);
    mem_copy(s->out + s->op, s->in + s->in_pos, n);
    s->op += n;
    s->in_pos += n;
    s->stored -= n;
  }
  s->state = s->last ? S_TRAILER : S_BLOCK;
  return 0;
}

/* ---- Huffman-coded blocks ---- */

/*
 * Copies a match of `len` bytes from `dist` bytes back to `dst`. May write up to 15 bytes past the end
 * (callers leave that much slack); source bytes are always ones already written.
 */
static inline void copy_match(u8 *dst, u32 dist, u32 len) {
  const u8 *src = dst - dist;
  u8 *end = dst + len;
#ifdef __wasm_simd128__
  if (LIKELY(dist >= 16)) {
    do {
      wasm_v128_store(dst, wasm_v128_load(src));
      dst += 16;
      src += 16;
    } while (dst < end);
    return;
  }
  if (dist == 1) {
    v128_t v = wasm_i8x16_splat((int8_t)src[0]);
    do {
      wasm_v128_store(dst, v);
      dst += 16;
    } while (dst < end);
    return;
  }
#else
  if (LIKELY(dist >= 8)) {
    do {
      store64(dst, load64(src));
      store64(dst + 8, load64(src + 8));
      dst += 16;
      src += 16;
    } while (dst < end);
    return;
  }
  if (dist == 1) {
    u64 v = 0x0101010101010101ull * src[0];
    do {
      store64(dst, v);
      store64(dst + 8, v);
      dst += 16;
    } while (dst < end);
    return;
  }
#endif
  if (dist >= 8) {
    do {
      store64(dst, load64(src));
      dst += 8;
      src += 8;
    } while (dst < end);
    return;
  }
  do {
    *dst++ = *src++;
  } while (dst < end);
}

#define MASK(n) ((1u << (n)) - 1u)

/* Decodes symbols until the end of the block (returns 0), or until input or output room runs out. */
static int huffman_block(Inflater *s) {
  const u32 *lt = s->lt, *dt = s->lt + LT_SIZE;
  const u8 *in = s->in;
  u8 *out = s->out;
  u64 bb = s->bb;
  u32 bc = s->bc, ip = s->in_pos, iend = s->in_end, op = s->op, hist = s->hist;
  int ret;

  for (;;) {
    /*
     * Fast loop: no input or output bounds checks inside; see the margins. The branchless refill loads
     * 8 bytes, so all 64 bits of bb hold real input even though bc counts only whole bytes consumed; that
     * lets the next literal/length entry be looked up before a match is copied (at most 48 bits are used
     * since the last refill, leaving at least 16 >= LT_BITS), hiding the table load behind the copy.
     * Inside this loop bc is only meaningful modulo 64 (see the entry layout).
     */
#define REFILL_P()                       \
  do {                                   \
    bb |= load64(ipp) << (bc & 63);      \
    ipp += 7 - ((bc >> 3) & 7);          \
    bc |= 56;                            \
  } while (0)
#define FAST_OK() (ip + FAST_IN <= iend && op + FAST_OUT <= OUT_CAP)
#define RESOLVE(t, e, tb)                                 \
  do {                                                    \
    if (UNLIKELY((e) & F_SUB)) {                          \
      bb >>= (tb);                                        \
      bc -= (tb);                                         \
      (e) = (t)[E_VAL(e) + ((u32)bb & MASK(E_LEN(e)))];   \
    }                                                     \
  } while (0)
    if (FAST_OK()) {
      /* Pointers, not offsets, and one table base: fewer live values, so the JIT keeps them in registers. */
      const u8 *ipp = in + ip;
      const u8 *const ilim = in + iend - FAST_IN;
      u8 *opp = out + op;
      u8 *const olim = out + OUT_CAP - FAST_OUT;
      const u8 *const histp = out + hist;
      const u32 *const t = lt;
      REFILL_P();
      u32 e = t[bb & MASK(LT_BITS)];
      for (;;) {
        RESOLVE(t, e, LT_BITS);
        u64 saved = bb;
        bb >>= E_USE(e);
        bc -= e;
        if (e & F_LIT) {
          /* Up to three literals per refill: 3 x 15 bits, or 2 x 15 + a 20-bit length, fit in 56. */
          *opp++ = (u8)(e >> 16);
          e = t[bb & MASK(LT_BITS)];
          RESOLVE(t, e, LT_BITS);
          saved = bb;
          bb >>= E_USE(e);
          bc -= e;
          if (e & F_LIT) {
            *opp++ = (u8)(e >> 16);
            e = t[bb & MASK(LT_BITS)];
            RESOLVE(t, e, LT_BITS);
            saved = bb;
            bb >>= E_USE(e);
            bc -= e;
            if (e & F_LIT) {
              *opp++ = (u8)(e >> 16);
              if (ipp > ilim || opp > olim) break;
              REFILL_P();
              e = t[bb & MASK(LT_BITS)];
              continue;
            }
          }
          REFILL_P();
        }
        if (UNLIKELY(e & (F_EOB | F_BAD))) {
          ret = e & F_BAD ? E_BAD_LITLEN_SYMBOL : 0;
          break;
        }
        u32 len = E_VAL(e) + (((u32)saved & MASK(E_USE(e))) >> E_LEN(e));
        u32 d = t[LT_SIZE + (bb & MASK(DT_BITS))];
        if (UNLIKELY(d & F_SUB)) {
          bb >>= DT_BITS;
          bc -= DT_BITS;
          d = t[LT_SIZE + E_VAL(d) + ((u32)bb & MASK(E_LEN(d)))];
        }
        saved = bb;
        bb >>= E_USE(d);
        bc -= d;
        u32 dist = E_VAL(d) + (((u32)saved & MASK(E_USE(d))) >> E_LEN(d));
        if (UNLIKELY((d & F_BAD) || dist > (u32)(opp - histp))) {
          ret = d & F_BAD ? E_BAD_DIST_SYMBOL : E_DIST_TOO_FAR;
          e = F_BAD;
          break;
        }
        e = t[bb & MASK(LT_BITS)];
        copy_match(opp, dist, len);
        opp += len;
        if (ipp > ilim || opp > olim) {
          e = 0; /* the preloaded entry is not decoded yet */
          break;
        }
        REFILL_P();
      }
      bc &= 63;
      ip = (u32)(ipp - in);
      op = (u32)(opp - out);
      if (e & F_BAD) goto out;
      if (e & F_EOB) goto block_end;
    }

    /* The fast refill leaves stale copies of upcoming input bits above bc; the slow path ORs bytes in. */
    bb &= bc >= 64 ? ~0ull : ((1ull << bc) - 1);

    /* Slow path: one unit at a time, each decoded only if all of its bits are present. */
    for (;;) {
      if (ip + FAST_IN <= iend && op + FAST_OUT <= OUT_CAP) break;
      if (op + 258 > OUT_CAP) {
        ret = ST_OUTPUT_FULL;
        goto out;
      }
      while (bc <= 48 && ip < iend) {
        bb |= (u64)in[ip++] << bc;
        bc += 8;
      }
      u32 used = 0;
      u32 e = lt[bb & MASK(LT_BITS)];
      if (e & F_SUB) {
        if (bc < LT_BITS) goto starved;
        used = LT_BITS;
        e = lt[E_VAL(e) + ((u32)(bb >> LT_BITS) & MASK(E_LEN(e)))];
      }
      if (e & F_BAD) {
        ret = E_BAD_LITLEN_SYMBOL;
        goto out;
      }
      if (used + E_USE(e) > bc) goto starved;
      u32 bits = (u32)(bb >> used);
      if (e & F_LIT) {
        out[op++] = (u8)(e >> 16);
        bb >>= used + E_USE(e);
        bc -= used + E_USE(e);
        continue;
      }
      if (e & F_EOB) {
        bb >>= used + E_USE(e);
        bc -= used + E_USE(e);
        goto block_end;
      }
      u32 len = E_VAL(e) + ((bits & MASK(E_USE(e))) >> E_LEN(e));
      used += E_USE(e);
      u64 rest = bb >> used;
      u32 d = dt[rest & MASK(DT_BITS)];
      if (d & F_SUB) {
        if (bc - used < DT_BITS) goto starved;
        used += DT_BITS;
        rest >>= DT_BITS;
        d = dt[E_VAL(d) + ((u32)rest & MASK(E_LEN(d)))];
      }
      if (d & F_BAD) {
        ret = E_BAD_DIST_SYMBOL;
        goto out;
      }
      if (used + E_USE(d) > bc) goto starved;
      u32 dist = E_VAL(d) + (((u32)rest & MASK(E_USE(d))) >> E_LEN(d));
      used += E_USE(d);
      if (dist > op - hist) {
        ret = E_DIST_TOO_FAR;
        goto out;
      }
      bb >>= used;
      bc -= used;
      copy_match(out + op, dist, len);
      op += len;
    }
  }

starved:
  ret = need_input(s);
  goto out;
block_end:
  s->state = s->last ? S_TRAILER : S_BLOCK;
  ret = 0;
out:
  bb &= bc >= 64 ? ~0ull : ((1ull << bc) - 1);
  s->bb = bb;
  s->bc = bc;
  s->in_pos = ip;
  s->op = op;
  return ret;
}

/* ---- the step ---- */

static int run(Inflater *s) {
  for (;;) {
    int r;
    switch (s->state) {
      case S_HEADER:
        r = gzip_header(s);
        break;
      case S_BLOCK:
        r = block_header(s);
        break;
      case S_HUFF:
        r = huffman_block(s);
        break;
      case S_STORED:
        r = stored_block(s);
        break;
      case S_TRAILER:
        r = gzip_trailer(s);
        break;
      case S_MEMBER_END:
        r = member_end(s);
        break;
      case S_PADDING:
        r = padding(s);
        break;
      default:
        return ST_DONE;
    }
    if (r == ST_DONE) s->state = S_DONE;
    if (r != 0) return r;
  }
}

/** Creates an inflater for a gzip stream (one or more members); 0 when memory is exhausted. */
EXPORT(inf_new) Inflater *inf_new(void) {
  crc32_init();
  build_fixed();
  Inflater *s = (Inflater *)eng_alloc(sizeof(Inflater));
  if (!s) return 0;
  mem_zero(s, (u32)((u8 *)&s->tabs - (u8 *)s));
  s->member = 1;
  s->state = S_HEADER;
  s->hstate = H_FIXED;
  s->op = WSIZE;
  s->out_start = WSIZE;
  s->hist = WSIZE;
  s->crc_pos = WSIZE;
  return s;
}

/** Frees an inflater. */
EXPORT(inf_free) void inf_free(Inflater *s) { eng_free(s); }

/** Moves unread input to the front of the input buffer and returns where JS may append (see inf_in_space). */
EXPORT(inf_in_ptr) u8 *inf_in_ptr(Inflater *s) { return input_append_at(s->in, &s->in_pos, &s->in_end); }

/** Bytes JS may append at inf_in_ptr(). */
EXPORT(inf_in_space) u32 inf_in_space(Inflater *s) { return IN_CAP - s->in_end; }

/** Records that JS appended `n` bytes at inf_in_ptr(). */
EXPORT(inf_in_commit) void inf_in_commit(Inflater *s, u32 n) { input_commit(&s->in_end, IN_CAP, n); }

/** Input bytes not yet consumed (in the input buffer and the bit buffer). */
EXPORT(inf_in_left) u32 inf_in_left(Inflater *s) { return s->in_end - s->in_pos + s->bc / 8; }

/** Declares that no input follows what has been committed. */
EXPORT(inf_finish) void inf_finish(Inflater *s) { s->input_final = 1; }

/**
 * Decodes as far as the input and the output room allow. Returns ST_NEED_INPUT (1), ST_OUTPUT_FULL (2),
 * ST_DONE (3), ST_MEMBER_END (4, see inf_set_ext_crc) or a negative error (repeated by every later call).
 * New output is at inf_out_ptr() for inf_out_len() bytes, valid until the next step.
 */
EXPORT(inf_step) int inf_step(Inflater *s) {
  s->out_start = s->op;
  if (s->error) return s->error;
  if (s->state == S_DONE) return ST_DONE;
  if (OUT_CAP - s->op < OUT_CHUNK / 2) {
    /* Slide the window: keep the last 32 KiB. crc_pos == op here, so the CRC needs no care. */
    u32 shift = s->op - WSIZE;
    mem_move(s->out, s->out + shift, WSIZE);
    s->op = WSIZE;
    s->crc_pos = WSIZE;
    s->hist = s->hist > shift ? s->hist - shift : 0;
    s->out_start = WSIZE;
  }
  int r = run(s);
  if (s->state != S_HEADER && s->state != S_MEMBER_END && s->state != S_PADDING && s->state != S_DONE) fold_crc(s);
  if (r < 0) s->error = r;
  return r;
}

/** Start of the output produced by the last step. */
EXPORT(inf_out_ptr) u8 *inf_out_ptr(Inflater *s) { return s->out + s->out_start; }

/** Length of the output produced by the last step. */
EXPORT(inf_out_len) u32 inf_out_len(Inflater *s) { return s->op - s->out_start; }

/**
 * Leaves the CRC-32 to JS (which has a faster native one): the step then returns ST_MEMBER_END after each
 * member's trailer, with the output ending at the member's end, and inf_trailer_crc() holds the CRC that the
 * trailer recorded. The length (ISIZE) is still checked here. Call before the first step.
 */
EXPORT(inf_set_ext_crc) void inf_set_ext_crc(Inflater *s, u32 on) { s->ext_crc = on != 0; }

/** The CRC-32 recorded in the trailer of the member that ended with the last ST_MEMBER_END. */
EXPORT(inf_trailer_crc) u32 inf_trailer_crc(Inflater *s) { return s->trailer_crc; }

/** The 1-based number of the member being decoded (for error messages). */
EXPORT(inf_member) u32 inf_member(Inflater *s) { return s->member; }
