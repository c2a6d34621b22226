/** Assertions on a CLI run's result: the one-line error with the exit code of its kind. */
import assert from "node:assert/strict";
import { ErrorKinds } from "../../src/errdefs/mod.ts";

export type Result = { code: number; stdout: string; stderr: string };

/** Asserts that `r` failed with `kind`'s exit code and one "tsctr: …" line on stderr matching `re`. */
export function assertError(r: Result, kind: keyof typeof ErrorKinds, re: RegExp): void {
  assert.equal(r.code, ErrorKinds[kind], `expected exit ${ErrorKinds[kind]} (${kind}), got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^tsctr: /);
  assert.match(lines[0]!, re);
}
