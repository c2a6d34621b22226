import { test } from "node:test";
import assert from "node:assert/strict";
import { pullScope, pushScope } from "../../src/registry/auth.ts";

test("pushScope asks for pull,push on the target and pull on a mount source", () => {
  assert.equal(pullScope("library/busybox"), "repository:library/busybox:pull");
  assert.equal(pushScope("team/app"), "repository:team/app:pull,push");
  assert.equal(pushScope("team/app", "team/base"), "repository:team/app:pull,push repository:team/base:pull");
  assert.equal(pushScope("team/app", "team/app"), "repository:team/app:pull,push", "no second scope for the same repository");
});
