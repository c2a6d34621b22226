/**
 * Which engine computes digests and which decompresses layers, chosen once per process (CLI options or
 * environment) and read by the digest and archive services. Kept apart from them so that choosing costs no
 * module loading at start-up.
 */
import process from "node:process";

export type DigestEngine = "native" | "wasm";
export type DecompressEngine = "native" | "wasm";

const engines = {
  digest: (process.env.TSCTR_DIGEST_ENGINE === "wasm" ? "wasm" : "native") as DigestEngine,
  // WASM by default: measured faster in the pull pipeline than node:zlib (devbench on tmpfs, 2 cores: 9.6 s vs
  // 11.5 s) and lighter (no thread-pool hop, no per-chunk buffers: peak RSS 190 MB vs 225 MB).
  decompress: (process.env.TSCTR_DECOMPRESS_ENGINE === "native" ? "native" : "wasm") as DecompressEngine,
};

/** Chooses how SHA-256 digests are computed from now on. */
export function setDigestEngine(e: DigestEngine): void {
  engines.digest = e;
}

/** The digest engine in use: "native" (node:crypto, the default) or "wasm". */
export function digestEngine(): DigestEngine {
  return engines.digest;
}

/** Chooses the decompression engine for the layers unpacked from now on. */
export function setDecompressEngine(e: DecompressEngine): void {
  engines.decompress = e;
}

/** The decompression engine in use: "wasm" (the default) or "native" (node:zlib). */
export function decompressEngine(): DecompressEngine {
  return engines.decompress;
}
