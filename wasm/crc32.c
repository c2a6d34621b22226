/*
 * CRC-32 as gzip uses it (RFC 1952 section 8: polynomial 0xEDB88320 reflected, initial and final
 * complement), computed by slicing-by-8: table k holds the CRC of a byte followed by k zero bytes, so eight
 * independent lookups fold eight input bytes per step.
 *
 * One slicing chain is bound by latency (each step needs the previous CRC). Long inputs therefore run four
 * chains over four consecutive 4 KiB lanes at once and join them with the linearity of CRCs: the register
 * after A||B is reg(A)·x^(8|B|) + reg(B) mod P, where reg(B) starts from zero.
 */
#include "engine.h"

#define POLY 0xEDB88320u
#define LANE 4096u

static u32 tab[8][256];
static u32 lane_shift; /* x^(8*LANE) mod P */
static int ready;

/* a(x)·b(x) mod P in the reflected representation (bit 31 is x^0). */
static u32 mulmod(u32 a, u32 b) {
  u32 prod = 0;
  for (int i = 0; i < 32; i++) {
    if (a & 0x80000000u) prod ^= b;
    a <<= 1;
    b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
  }
  return prod;
}

/* x^(8n) mod P, by square-and-multiply on x^8. */
static u32 x8n(u32 n) {
  u32 result = 0x80000000u, base = 0x80000000u >> 8;
  while (n) {
    if (n & 1) result = mulmod(result, base);
    base = mulmod(base, base);
    n >>= 1;
  }
  return result;
}

/* Folds 8 bytes, given as two 32-bit halves with the running CRC already xored into the low one. */
#define SLICE8(lo, hi)                                                                                         \
  (tab[7][(lo) & 0xff] ^ tab[6][((lo) >> 8) & 0xff] ^ tab[5][((lo) >> 16) & 0xff] ^ tab[4][(lo) >> 24] ^       \
   tab[3][(hi) & 0xff] ^ tab[2][((hi) >> 8) & 0xff] ^ tab[1][((hi) >> 16) & 0xff] ^ tab[0][(hi) >> 24])

void crc32_init(void) {
  if (ready) return;
  for (u32 n = 0; n < 256; n++) {
    u32 c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    tab[0][n] = c;
  }
  for (u32 n = 0; n < 256; n++) {
    u32 c = tab[0][n];
    for (int k = 1; k < 8; k++) {
      c = (c >> 8) ^ tab[0][c & 0xff];
      tab[k][n] = c;
    }
  }
  lane_shift = x8n(LANE);
  ready = 1;
}

u32 crc32_update(u32 crc, const u8 *p, u32 n) {
  u32 c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xff];
    n--;
  }
  while (n >= 4 * LANE) {
    u32 c0 = c, c1 = 0, c2 = 0, c3 = 0;
    for (u32 i = 0; i < LANE; i += 8) {
      const u8 *q = p + i;
      u32 l0 = load32(q) ^ c0, h0 = load32(q + 4);
      u32 l1 = load32(q + LANE) ^ c1, h1 = load32(q + LANE + 4);
      u32 l2 = load32(q + 2 * LANE) ^ c2, h2 = load32(q + 2 * LANE + 4);
      u32 l3 = load32(q + 3 * LANE) ^ c3, h3 = load32(q + 3 * LANE + 4);
      c0 = SLICE8(l0, h0);
      c1 = SLICE8(l1, h1);
      c2 = SLICE8(l2, h2);
      c3 = SLICE8(l3, h3);
    }
    c = mulmod(mulmod(mulmod(c0, lane_shift) ^ c1, lane_shift) ^ c2, lane_shift) ^ c3;
    p += 4 * LANE;
    n -= 4 * LANE;
  }
  while (n >= 8) {
    u32 lo = load32(p) ^ c, hi = load32(p + 4);
    c = SLICE8(lo, hi);
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xff];
  return ~c;
}

/** CRC-32 of `n` bytes at `p`, continuing from `crc` (0 to start); exported for tests and benchmarks. */
EXPORT(eng_crc32) u32 eng_crc32(u32 crc, const u8 *p, u32 n) {
  crc32_init();
  return crc32_update(crc, p, n);
}
