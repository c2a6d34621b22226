import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createHasher, digestEngine, setDigestEngine, type DigestEngine } from "../../src/digest/mod.ts";

for (const engine of ["native", "wasm"] as DigestEngine[]) {
  test(`the ${engine} digest engine matches sha256 over random sizes and chunkings`, async () => {
    const before = digestEngine();
    setDigestEngine(engine);
    try {
      for (const size of [0, 1, 63, 64, 65, 1000, 1 << 20]) {
        const data = randomBytes(size);
        const h = await createHasher();
        for (let off = 0, step = 1; off < size; off += step, step = step * 3 + 1) h.update(data.subarray(off, off + step));
        assert.equal(h.digest(), `sha256:${createHash("sha256").update(data).digest("hex")}`, `size ${size}`);
      }
    } finally {
      setDigestEngine(before);
    }
  });
}
