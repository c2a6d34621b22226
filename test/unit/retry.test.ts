import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter } from "../../src/registry/retry.ts";

test("Retry-After: delta-seconds, an HTTP-date, and nonsense", () => {
  const now = Date.parse("Sun, 22 Nov 2026 03:00:00 GMT");
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Sun, 22 Nov 2026 03:00:07 GMT", now), 7000);
  assert.equal(parseRetryAfter("Sun, 22 Nov 2026 02:00:00 GMT", now), 0, "a date in the past means now");
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test("backoff: full jitter below a doubling window, capped; Retry-After wins but is capped too", () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let failures = 1; failures <= 8; failures++) {
    const window = Math.min(1000, 100 * 2 ** (failures - 1));
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(policy, failures);
      assert.ok(d >= 0 && d < window, `failure ${failures}: ${d} outside [0, ${window})`);
    }
  }
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(policy, 4)));
  assert.ok(spread.size > 10, "delays are spread, not synchronised");
  assert.equal(backoffDelay(policy, 1, 700), 700);
  assert.equal(backoffDelay(policy, 1, 60_000), 1000);
});
