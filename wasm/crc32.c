/*
 * CRC-32 as gzip uses it (RFC 1952 section 8: polynomial 0xEDB88320 reflected, initial and final
 * complement), computed by slicing-by-8: table k holds the CRC of a byte followed by k zero bytes, so eight
 * independent lookups fold eight input bytes per step.
 */
#include "engine.h"

static u32 tab[8][256];
static int ready;

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
  ready = 1;
}

u32 crc32_update(u32 crc, const u8 *p, u32 n) {
  u32 c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xff];
    n--;
  }
  while (n >= 16) {
    u64 w = load64(p) ^ c;
    c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^ tab[4][(w >> 24) & 0xff] ^
        tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^ tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
    w = load64(p + 8) ^ c;
    c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^ tab[4][(w >> 24) & 0xff] ^
        tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^ tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
    p += 16;
    n -= 16;
  }
  while (n--) c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xff];
  return ~c;
}
