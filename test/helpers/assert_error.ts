/** Asserting the CLI's error contract: one line "tsctr: …" on stderr and the exit code of the error's kind. */
import assert from "node:assert/strict";
import { ErrorKinds } from "../../src/errdefs/mod.ts";

/** What a CLI run returned. */
export type Result = { code: number; stdout: string; stderr: string };

/** Asserts `r` failed with `kind`'s exit code and one stderr line "tsctr: …" matching `re`. */
export function assertError(r: Result, kind: keyof typeof ErrorKinds, re: RegExp): void {
  assert.equal(r.code, ErrorKinds[kind], `expected exit ${ErrorKinds[kind]} (${kind}), got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^tsctr: /);
  assert.match(lines[0]!, re);
}
