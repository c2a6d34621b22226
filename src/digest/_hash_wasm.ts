/** hash-wasm's SHA-256 alone: a static named import lets the bundler drop its other hashes (~400 KiB). */
export { createSHA256 } from "hash-wasm";
