export { createHasher, digestEngine, setDigestEngine, digestHex, digestOf, isDigest, parseDigest, verifyBytes } from "./digest.ts";
export type { Digest, DigestEngine, Hasher } from "./digest.ts";
