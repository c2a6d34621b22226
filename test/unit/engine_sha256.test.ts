/**
 * The WASM SHA-256 (SIMD and plain builds) against node:crypto: known vectors, random sizes fed in random
 * chunkings, chunks larger than the staging buffer, and bytes hashed in place from an inflater's output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { WasmInflater } from "../../src/engine/inflate.ts";
import { createWasmSha256 } from "../../src/engine/sha256.ts";
import { compressible, Rng } from "../helpers/engine_gzip.ts";

const VARIANTS = ["simd", "plain"] as const;
const native = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

test("FIPS 180-4 example vectors", () => {
  const vectors: [string, string][] = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    ["abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"],
  ];
  for (const variant of VARIANTS) {
    for (const [msg, hex] of vectors) {
      const h = createWasmSha256({ variant });
      h.update(Buffer.from(msg));
      assert.equal(h.digest(), `sha256:${hex}`, `${variant} "${msg}"`);
    }
  }
});

test("random sizes around the block and padding boundaries, in random chunkings", () => {
  const rng = new Rng(1);
  const sizes = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 4095, 65536, 262_143, 262_144, 262_145, 600_000, 3_000_001];
  for (let i = 0; i < 30; i++) sizes.push(rng.int(200_000));
  for (const size of sizes) {
    const data = rng.bytes(size);
    const want = native(data);
    for (const variant of VARIANTS) {
      const h = createWasmSha256({ variant });
      for (let off = 0; off < size; ) {
        const n = rng.int(4) === 0 ? rng.int(70) : rng.int(400_000);
        h.update(data.subarray(off, off + n));
        off += n;
      }
      assert.equal(h.digest(), want, `${variant}, ${size} bytes`);
    }
  }
});

test("hashes inflater output in place (views into engine memory) like copies", () => {
  const data = compressible(new Rng(2), 2_000_000);
  const gz = zlib.gzipSync(data);
  for (const variant of VARIANTS) {
    const inf = new WasmInflater({ variant });
    const h = createWasmSha256({ variant });
    for (let i = 0; i < gz.length; i += 50_000) inf.write(gz.subarray(i, i + 50_000), (v) => h.update(v));
    inf.end((v) => h.update(v));
    inf.close();
    assert.equal(h.digest(), native(data), variant);
  }
});

test("digest() finishes the hasher", () => {
  const h = createWasmSha256();
  h.update(Buffer.from("x"));
  h.digest();
  assert.throws(() => h.digest(), /digest called twice/);
  assert.throws(() => h.update(Buffer.from("y")), /update after digest/);
});
