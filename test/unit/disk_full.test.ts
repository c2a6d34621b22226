/** isDiskFull / diskFullError: which errors mean a full disk, and the one line they become. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { TsctrError, errorOf, isDiskFull } from "../../src/errdefs/mod.ts";
import { diskFullError } from "../../src/platform/disk_full.ts";

test("a real ENOSPC (writing /dev/full), wrapped or not, is a full disk", async () => {
  const err = await writeFile("/dev/full", "x").then(() => undefined, (e: unknown) => e);
  assert.equal((err as { code?: string }).code, "ENOSPC");
  assert.ok(isDiskFull(err));
  assert.ok(isDiskFull(errorOf("Internal", "apply layer x: entry y: no room", err)));
  assert.ok(isDiskFull(errorOf("Internal", "extract layer x: failed", { code: "EDQUOT" })));
  assert.ok(isDiskFull(Object.assign(new Error("database or disk is full"), { errcode: 13 })));
  assert.ok(!isDiskFull(Object.assign(new Error("nope"), { code: "ENOENT" })));
  assert.ok(!isDiskFull(errorOf("ResourceExhausted", "pull x: image config of 9 bytes is too large")));
});

test("diskFullError: one ResourceExhausted line naming the root; other errors pass through unchanged", async () => {
  const other = errorOf("DataLoss", "pull x: digest mismatch");
  assert.equal(await diskFullError(other, "pull x", tmpdir()), other);
  const full = await diskFullError(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }), "pull x", tmpdir(), 1 << 60);
  assert.ok(full instanceof TsctrError);
  assert.equal(full.kind, "ResourceExhausted");
  assert.equal(full.exitCode, 19);
  assert.match(full.message, new RegExp(`^pull x: no space left on device under ${tmpdir()} \\(\\d+ MB free; needed about \\d+ MB more\\)$`));
});
