/**
 * SHA-256 on the WebAssembly engine (wasm/sha256.c). Bytes that already live in engine memory (an
 * inflater's output views) are hashed in place; other bytes are copied in through a staging buffer.
 */
import type { Digest, Hasher } from "../digest/digest.ts";
import { errorOf } from "../errdefs/mod.ts";
import { type EngineVariant, loadEngine } from "./wasm.ts";

const finalizer = new FinalizationRegistry<{ free: (st: number) => void; st: number }>(({ free, st }) => free(st));
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Creates a streaming SHA-256 on the WASM engine, with the Hasher contract: `update()` any number of times,
 * then `digest()` once (which frees the engine memory; later calls throw FailedPrecondition).
 */
export function createWasmSha256(opts: { variant?: EngineVariant } = {}): Hasher {
  const engine = loadEngine(opts.variant);
  const x = engine.exports;
  let st = x.sha_new();
  if (st === 0) throw errorOf("ResourceExhausted", "sha256: the WebAssembly engine is out of memory");
  const token = {};
  const hasher: Hasher = {
    update(chunk) {
      if (st === 0) throw errorOf("FailedPrecondition", "sha256: update after digest");
      if (engine.owns(chunk)) {
        x.sha_update(st, chunk.byteOffset, chunk.byteLength);
        return;
      }
      const { ptr, size } = engine.staging();
      for (let off = 0; off < chunk.length; off += size) {
        const part = chunk.subarray(off, Math.min(off + size, chunk.length));
        engine.heap().set(part, ptr);
        x.sha_update(st, ptr, part.length);
      }
    },
    digest() {
      if (st === 0) throw errorOf("FailedPrecondition", "sha256: digest called twice");
      const ptr = x.sha_final(st);
      const bytes = engine.heap().subarray(ptr, ptr + 32);
      let hex = "";
      for (const b of bytes) hex += HEX[b];
      finalizer.unregister(token);
      x.sha_free(st);
      st = 0;
      return `sha256:${hex}` as Digest;
    },
  };
  finalizer.register(hasher, { free: (s) => x.sha_free(s), st }, token);
  return hasher;
}
