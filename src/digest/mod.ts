export { createHasher, digestHex, digestOf, isDigest, parseDigest, verifyBytes } from "./digest.ts";
export type { Digest, Hasher } from "./digest.ts";
export { digestEngine, setDigestEngine, type DigestEngine } from "../platform/engines.ts";
