/*
 * Memory for engine objects: a bump pointer over linear memory (grown with memory.grow) plus one free list
 * per block size. The engine allocates few sizes (an inflater, a hasher, staging buffers), so freed blocks
 * are reused exactly and memory never fragments; a size beyond the known classes is bumped and, when freed,
 * kept on its own list.
 */
#include "engine.h"

extern u8 __heap_base;

#define ALIGN 16u
#define HEADER 16u
#define CLASSES 16
#define PAGE 65536u

typedef struct Free {
  struct Free *next;
} Free;

static uintptr_t bump;
static u32 class_size[CLASSES];
static Free *class_head[CLASSES];

static int class_of(u32 size) {
  for (int i = 0; i < CLASSES; i++) {
    if (class_size[i] == size) return i;
    if (class_size[i] == 0) {
      class_size[i] = size;
      return i;
    }
  }
  return -1;
}

EXPORT(eng_alloc) void *eng_alloc(u32 size) {
  if (size > 0x40000000u) return 0;
  u32 total = (size + HEADER + ALIGN - 1) & ~(ALIGN - 1);
  int c = class_of(total);
  if (c >= 0 && class_head[c]) {
    Free *f = class_head[c];
    class_head[c] = f->next;
    return f;
  }
  if (bump == 0) bump = ((uintptr_t)&__heap_base + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
  uintptr_t block = bump;
  uintptr_t end = block + total;
  if (end < block) return 0;
  uintptr_t have = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
  if (end > have) {
    uintptr_t pages = (end - have + PAGE - 1) / PAGE;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
  }
  bump = end;
  *(u32 *)block = total;
  return (void *)(block + HEADER);
}

EXPORT(eng_free) void eng_free(void *p) {
  if (p == 0) return;
  u32 total = *(u32 *)((u8 *)p - HEADER);
  int c = class_of(total);
  if (c < 0) return; /* more sizes than classes: the block stays allocated (never happens in practice) */
  Free *f = (Free *)p;
  f->next = class_head[c];
  class_head[c] = f;
}

/*
 * Byte copies. With bulk memory (the SIMD build) these are single memory.copy/memory.fill instructions;
 * the plain build copies 8 bytes at a time. `no_builtin` keeps the compiler from turning the loops back
 * into calls of themselves.
 */
__attribute__((no_builtin("memcpy", "memmove", "memset"))) void mem_move(void *dst, const void *src, u32 n) {
#ifdef __wasm_bulk_memory__
  __builtin_memmove(dst, src, n);
#else
  u8 *d = (u8 *)dst;
  const u8 *s = (const u8 *)src;
  if (d == s || n == 0) return;
  if (d < s || d >= s + n) {
    while (n >= 8) {
      store64(d, load64(s));
      d += 8;
      s += 8;
      n -= 8;
    }
    while (n--) *d++ = *s++;
  } else {
    d += n;
    s += n;
    while (n >= 8) {
      d -= 8;
      s -= 8;
      n -= 8;
      store64(d, load64(s));
    }
    while (n--) *--d = *--s;
  }
#endif
}

void mem_copy(void *dst, const void *src, u32 n) { mem_move(dst, src, n); }

__attribute__((no_builtin("memcpy", "memmove", "memset"))) void mem_zero(void *dst, u32 n) {
#ifdef __wasm_bulk_memory__
  __builtin_memset(dst, 0, n);
#else
  u8 *d = (u8 *)dst;
  while (n >= 8) {
    store64(d, 0);
    d += 8;
    n -= 8;
  }
  while (n--) *d++ = 0;
#endif
}

#ifndef __wasm_bulk_memory__
/* The compiler may emit calls to these for struct copies and zeroing; without libc they live here. */
__attribute__((no_builtin("memcpy", "memmove", "memset"))) void *memcpy(void *dst, const void *src, size_t n) {
  mem_move(dst, src, (u32)n);
  return dst;
}
__attribute__((no_builtin("memcpy", "memmove", "memset"))) void *memmove(void *dst, const void *src, size_t n) {
  mem_move(dst, src, (u32)n);
  return dst;
}
__attribute__((no_builtin("memcpy", "memmove", "memset"))) void *memset(void *dst, int c, size_t n) {
  u8 *d = (u8 *)dst;
  while (n--) *d++ = (u8)c;
  return dst;
}
#endif
