/**
 * A long fuzz run of the WASM gzip engine against node:zlib (see test/unit/engine_fuzz.test.ts):
 * `node test/bench/fuzz_engine.ts [seconds=300] [seed=random]`. Each round uses a new seed, printed first, so a
 * failure can be replayed with that seed; exits 1 on the first failure.
 */
import process from "node:process";
import { CONFIGS, fuzz } from "../helpers/engine_gzip.ts";

const seconds = Number(process.argv[2] ?? 300);
let seed = process.argv[3] !== undefined ? Number(process.argv[3]) : (Math.random() * 2 ** 32) >>> 0;
const deadline = performance.now() + seconds * 1000;
const total = { cases: 0, bothOk: 0, bothFailed: 0, onlyWasmFailed: 0 };
for (let round = 0; performance.now() < deadline; round++) {
  for (const config of CONFIGS) {
    process.stdout.write(`round ${round} ${config.variant}/${config.crc} crc seed ${seed}\n`);
    const s = fuzz(seed, Math.min(30_000, Math.max(0, deadline - performance.now())), config);
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += s[k];
  }
  seed = (seed * 1103515245 + 12345) >>> 0;
}
process.stdout.write(
  `fuzz: ${total.cases} cases in ${seconds} s: ${total.bothOk} decoded like zlib, ${total.bothFailed} rejected like zlib, ${total.onlyWasmFailed} rejected where zlib accepted (stricter, allowed)\n`,
);
