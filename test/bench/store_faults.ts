/**
 * The kill -9 fault-injection test with more rounds than CI runs: `node test/bench/store_faults.ts [N]`
 * (default 200). Each round SIGKILLs a pull, an `images rm` or a `prune --all` at a random instant and
 * checks the store (see test/integration/store_faults.test.ts).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";

const runs = process.argv[2] ?? "200";
const file = join(import.meta.dirname, "..", "integration", "store_faults.test.ts");
const r = spawnSync(process.execPath, ["--test", "--test-timeout=0", "--test-name-pattern", "SIGKILL", file], {
  stdio: "inherit",
  env: { ...process.env, TSCTR_FAULT_RUNS: runs },
});
process.exit(r.status ?? 1);
