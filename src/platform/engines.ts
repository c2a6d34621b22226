/**
 * Which engine computes digests and which decompresses layers, chosen once per process (CLI options or
 * environment) and read by the digest and archive services. Kept apart from them so that choosing costs no
 * module loading at start-up.
 */
import process from "node:process";
import { runtimeName } from "./runtime.ts";

export type DigestEngine = "native" | "wasm";
export type DecompressEngine = "native" | "wasm";

/**
 * gzip on Node: node:zlib on the thread pool (src/archive/pool_gunzip.ts), which inflates beside the main
 * thread instead of in it; a devbench pull on 2 cores, alternating: 4.4–5.0 s against 5.5–5.7 s with the WASM
 * inflater in the main thread, at the same peak RSS. On Deno (no such pool): the WASM engine.
 */
export function defaultDecompressEngine(): DecompressEngine {
  const env = process.env.TSCTR_DECOMPRESS_ENGINE;
  if (env === "native" || env === "wasm") return env;
  return runtimeName() === "node" ? "native" : "wasm";
}

const engines = {
  digest: (process.env.TSCTR_DIGEST_ENGINE === "wasm" ? "wasm" : "native") as DigestEngine,
  decompress: defaultDecompressEngine(),
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

/** The decompression engine in use: "native" (node:zlib; the default on Node) or "wasm" (the default on Deno). */
export function decompressEngine(): DecompressEngine {
  return engines.decompress;
}
