/** Content digests ("sha256:<64 hex>") and streaming hashers behind one interface. */
import { createHash } from "node:crypto";
import { digestEngine } from "../platform/engines.ts";
import { errorOf } from "../errdefs/mod.ts";

/** A validated content digest, e.g. "sha256:e3b0…". Only sha256 is accepted. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Validates `s` as a sha256 digest; throws InvalidArgument otherwise. */
export function parseDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) throw errorOf("InvalidArgument", `invalid digest "${s.slice(0, 80)}": expected sha256:<64 lowercase hex>`);
  return s as Digest;
}

/** True when `s` is a well-formed sha256 digest. */
export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** The hex part of a digest, used as a file name. */
export function digestHex(d: Digest): string {
  return d.slice(7);
}

/** An incremental SHA-256; `digest()` may be called once. */
export interface Hasher {
  update(chunk: Uint8Array): void;
  digest(): Digest;
}

/** Creates a streaming SHA-256 hasher with the selected engine. */
export async function createHasher(): Promise<Hasher> {
  if (digestEngine() === "native") {
    const h = createHash("sha256");
    return {
      update(chunk) {
        h.update(chunk);
      },
      digest() {
        return `sha256:${h.digest("hex")}` as Digest;
      },
    };
  }
  const { createSHA256 } = await import("./_hash_wasm.ts");
  const h = await createSHA256();
  h.init();
  return {
    update(chunk) {
      h.update(chunk);
    },
    digest() {
      return `sha256:${h.digest("hex")}` as Digest;
    },
  };
}

/** The sha256 digest of a whole byte array (for manifests and configs, which are small). */
export async function digestOf(bytes: Uint8Array | string): Promise<Digest> {
  const h = await createHasher();
  h.update(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
  return h.digest();
}

/** Throws DataLoss unless `bytes` have the expected digest and size. `what` names the object in the error. */
export async function verifyBytes(bytes: Uint8Array, expected: { digest: Digest; size?: number }, what: string): Promise<void> {
  if (expected.size !== undefined && bytes.byteLength !== expected.size) {
    throw errorOf("DataLoss", `${what}: size ${bytes.byteLength} does not match expected ${expected.size}`);
  }
  const got = await digestOf(bytes);
  if (got !== expected.digest) throw errorOf("DataLoss", `${what}: digest ${got} does not match expected ${expected.digest}`);
}
