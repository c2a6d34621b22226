/**
 * The WebAssembly unpack engine: gzip inflate and SHA-256 compiled from wasm/*.c, embedded in the code, loaded
 * lazily (SIMD build when the runtime supports it, plain otherwise).
 */
export { createGunzip, type GunzipOptions, gunzipStream, WasmInflater } from "./inflate.ts";
export { createWasmSha256 } from "./sha256.ts";
export { Engine, type EngineVariant, loadEngine, preferredVariant, privateEngine } from "./wasm.ts";
export { createZstdDecompress, ZstdDecoder, type ZstdOptions, zstdDecompressStream } from "./zstd.ts";
