/*
 * Shared definitions of the tsctr WASM engine (freestanding C, no libc).
 *
 * The module owns its linear memory. JS allocates engine objects (inflaters, hashers, staging buffers)
 * through the exported allocator and addresses them by pointer; every buffer JS reads or writes lives in
 * linear memory, so data crosses the boundary as views, never as copies made by the engine.
 */
#ifndef TSCTR_ENGINE_H
#define TSCTR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* Marks a function as a module export under `name`. */
#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Unaligned little-endian loads and stores (WebAssembly is little-endian; these become single i64/i32 ops). */
static inline u64 load64(const u8 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return v;
}
static inline u32 load32(const u8 *p) {
  u32 v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
static inline void store64(u8 *p, u64 v) { __builtin_memcpy(p, &v, 8); }

/* alloc.c: size-class allocator over memory.grow; returns 0 when memory cannot grow. Blocks are 16-aligned. */
void *eng_alloc(u32 size);
void eng_free(void *p);
void mem_copy(void *dst, const void *src, u32 n);
void mem_move(void *dst, const void *src, u32 n);
void mem_zero(void *dst, u32 n);

/*
 * Input buffers that JS appends to (the inflater's and the zstd decoder's): `input_append_at` moves the
 * unread bytes [*pos, *end) to the front and returns where JS may write; `input_commit` records `n` bytes
 * written there, never past `cap`.
 */
static inline u8 *input_append_at(u8 *buf, u32 *pos, u32 *end) {
  if (*pos > 0) {
    u32 n = *end - *pos;
    mem_move(buf, buf + *pos, n);
    *pos = 0;
    *end = n;
  }
  return buf + *end;
}
static inline void input_commit(u32 *end, u32 cap, u32 n) {
  if (n > cap - *end) n = cap - *end;
  *end += n;
}

/* crc32.c: CRC-32 (IEEE 802.3, reflected, as in gzip) of `n` bytes continuing from `crc` (0 to start). */
void crc32_init(void);
u32 crc32_update(u32 crc, const u8 *p, u32 n);

#endif
