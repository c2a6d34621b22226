import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chainId, chainIds } from "../../src/images/chainid.ts";
import type { Digest } from "../../src/digest/mod.ts";

/** sha256 of `s` computed by coreutils' sha256sum, independent of tsctr's hasher. */
function sha256sum(s: string): Digest {
  return `sha256:${execFileSync("sha256sum", { input: s }).toString().split(" ")[0]}`;
}

test("chainIds follows the OCI image spec, checked against sha256sum", async () => {
  const diffIds = [sha256sum("layer a"), sha256sum("layer b"), sha256sum("layer c")];
  const c1 = sha256sum(`${diffIds[0]} ${diffIds[1]}`);
  const c2 = sha256sum(`${c1} ${diffIds[2]}`);
  assert.deepEqual(await chainIds(diffIds), [diffIds[0], c1, c2]);
  assert.equal(await chainId(diffIds), c2);
});

test("chainIds of one layer is its diffID; of none is empty", async () => {
  const one = sha256sum("only");
  assert.deepEqual(await chainIds([one]), [one]);
  assert.deepEqual(await chainIds([]), []);
  assert.equal(await chainId([]), undefined);
});
