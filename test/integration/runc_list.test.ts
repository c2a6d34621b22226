/**
 * runc list while containers come and go: runc reads the root's directory, then stats each entry, and fails
 * as a whole when one is removed in between (seen in a test run: `tsctr ps` failed while the daemon brought
 * containers back). Runc.list then takes the list entry by entry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Runc, findRunc } from "../../src/runtime/runc.ts";

test("runc list succeeds while container directories appear and vanish under its root", async () => {
  const root = await mkdtemp(join(tmpdir(), "tsctr-runc-list-"));
  // Another process creates and removes directories in the root as fast as it can (as runc does for
  // containers being created and deleted); against plain `runc list` this fails about 1 call in 12 here.
  const churn = spawn(process.execPath, [
    "-e",
    `const fs = require("node:fs"); for (let i = 0; ; i++) { const d = ${JSON.stringify(root)} + "/c" + (i % 8); try { fs.mkdirSync(d); fs.rmdirSync(d); } catch {} }`,
  ], { stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const runc = new Runc({ binary: await findRunc(), root });
    for (let i = 0; i < 100; i++) assert.deepEqual(await runc.list(), [], `list ${i}`);
  } finally {
    churn.kill("SIGKILL");
    await new Promise((r) => churn.once("close", r));
    await rm(root, { recursive: true, force: true });
  }
});
