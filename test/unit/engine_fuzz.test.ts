/**
 * Bounded fuzzing of the WASM gzip engine (about 20 s in all): random bytes, and valid gzip streams of random
 * or compressible data, mutated (bit flips, byte changes, cuts, insertions) or not, fed in random chunk
 * sizes. The engine must never crash or hang, and must either return exactly what node:zlib returns or fail
 * with DataLoss. A longer run: `node test/bench/fuzz_engine.ts [seconds] [seed]`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CONFIGS, fuzz } from "../helpers/engine_gzip.ts";

const SECONDS = 6;

for (const [i, config] of CONFIGS.entries()) {
  test(`fuzz the ${config.variant} build with the ${config.crc} CRC-32 for ${SECONDS} s`, { timeout: (SECONDS + 30) * 1000 }, () => {
    const seed = (Date.now() ^ (0x5eed * (i + 1))) >>> 0;
    const stats = fuzz(seed, SECONDS * 1000, config);
    assert.ok(stats.cases > 100, `only ${stats.cases} cases ran`);
    assert.ok(stats.bothOk > 0 && stats.bothFailed > 0, `the corpus should hold valid and invalid inputs: ${JSON.stringify(stats)}`);
  });
}
