import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { currentUmask } from "../../src/platform/umask.ts";

test("currentUmask reads the umask as it is now, without changing it", () => {
  const before = process.umask(0o027);
  try {
    assert.equal(currentUmask(), 0o027);
    process.umask(0o002);
    assert.equal(currentUmask(), 0o002);
    assert.equal(process.umask(0o002), 0o002, "unchanged by the read");
  } finally {
    process.umask(before);
  }
});
