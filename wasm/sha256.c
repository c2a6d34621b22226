/*
 * Streaming SHA-256 (FIPS 180-4). A hasher is a small block in linear memory; update() hashes whole
 * 64-byte blocks straight from the caller's bytes (which may be an inflater's output) and keeps only a
 * partial block.
 */
#include "engine.h"

typedef struct {
  u32 h[8];
  u64 total;
  u32 fill;
  u8 block[64];
  u8 digest[32];
} Sha256;

static const u32 K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define S0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define S1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define s0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define s1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))

/* One round with the working variables passed in rotated order, so no register shuffling is needed. */
#define ROUND(a, b, c, d, e, f, g, h, i)              \
  do {                                                \
    u32 t1 = h + S1(e) + CH(e, f, g) + K[i] + w[(i) & 15]; \
    u32 t2 = S0(a) + MAJ(a, b, c);                    \
    d += t1;                                          \
    h = t1 + t2;                                      \
  } while (0)

#define EXPAND(i) (w[(i) & 15] += s1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + s0(w[((i) - 15) & 15]))

static void compress(u32 *state, const u8 *p, u32 blocks) {
  u32 w[16];
  while (blocks--) {
    for (int i = 0; i < 16; i++) w[i] = __builtin_bswap32(load32(p + 4 * i));
    u32 a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i += 8) {
      if (i >= 16) {
        EXPAND(i + 0), EXPAND(i + 1), EXPAND(i + 2), EXPAND(i + 3);
        EXPAND(i + 4), EXPAND(i + 5), EXPAND(i + 6), EXPAND(i + 7);
      }
      ROUND(a, b, c, d, e, f, g, h, i + 0);
      ROUND(h, a, b, c, d, e, f, g, i + 1);
      ROUND(g, h, a, b, c, d, e, f, i + 2);
      ROUND(f, g, h, a, b, c, d, e, i + 3);
      ROUND(e, f, g, h, a, b, c, d, i + 4);
      ROUND(d, e, f, g, h, a, b, c, i + 5);
      ROUND(c, d, e, f, g, h, a, b, i + 6);
      ROUND(b, c, d, e, f, g, h, a, i + 7);
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
    p += 64;
  }
}

static void sha_reset(Sha256 *s) {
  static const u32 iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  for (int i = 0; i < 8; i++) s->h[i] = iv[i];
  s->total = 0;
  s->fill = 0;
}

/** Creates a hasher; 0 when memory is exhausted. */
EXPORT(sha_new) Sha256 *sha_new(void) {
  Sha256 *s = (Sha256 *)eng_alloc(sizeof(Sha256));
  if (s) sha_reset(s);
  return s;
}

/** Frees a hasher. */
EXPORT(sha_free) void sha_free(Sha256 *s) { eng_free(s); }

/** Hashes `n` bytes at `p` (anywhere in linear memory). */
EXPORT(sha_update) void sha_update(Sha256 *s, const u8 *p, u32 n) {
  s->total += n;
  if (s->fill) {
    u32 take = 64 - s->fill;
    if (take > n) take = n;
    mem_copy(s->block + s->fill, p, take);
    s->fill += take;
    p += take;
    n -= take;
    if (s->fill < 64) return;
    compress(s->h, s->block, 1);
    s->fill = 0;
  }
  if (n >= 64) {
    compress(s->h, p, n / 64);
    p += n & ~63u;
    n &= 63;
  }
  if (n) {
    mem_copy(s->block, p, n);
    s->fill = n;
  }
}

/** Pads, finishes and returns a pointer to the 32-byte digest; the hasher starts over afterwards. */
EXPORT(sha_final) u8 *sha_final(Sha256 *s) {
  u64 bits = s->total * 8;
  u32 fill = s->fill;
  s->block[fill++] = 0x80;
  if (fill > 56) {
    mem_zero(s->block + fill, 64 - fill);
    compress(s->h, s->block, 1);
    fill = 0;
  }
  mem_zero(s->block + fill, 56 - fill);
  for (int i = 0; i < 8; i++) s->block[56 + i] = (u8)(bits >> (56 - 8 * i));
  compress(s->h, s->block, 1);
  for (int i = 0; i < 8; i++) {
    s->digest[4 * i] = (u8)(s->h[i] >> 24);
    s->digest[4 * i + 1] = (u8)(s->h[i] >> 16);
    s->digest[4 * i + 2] = (u8)(s->h[i] >> 8);
    s->digest[4 * i + 3] = (u8)s->h[i];
  }
  sha_reset(s);
  return s->digest;
}
