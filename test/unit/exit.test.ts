import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";

const EXIT_MODULE = new URL("../../src/cli/exit.ts", import.meta.url).href;
const ERRORS_MODULE = new URL("../../src/errdefs/mod.ts", import.meta.url).href;

/** Runs `body` in a fresh Node process after loading exit.ts; process.exit calls are reported on stderr. */
function run(body: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const script = `const { finish, reportAndFinish, setDebug } = await import(${JSON.stringify(EXIT_MODULE)});
const { errorOf } = await import(${JSON.stringify(ERRORS_MODULE)});
const exit = process.exit;
process.exit = (code) => { process.stderr.write("process.exit called\\n"); exit(code); };
${body}`;
  const started = Date.now();
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr, ms: Date.now() - started })));
}

test("a finished command ends by draining its event loop, with its exit code", async () => {
  const r = await run(`setTimeout(() => {}, 50); finish(3);`);
  assert.equal(r.code, 3);
  assert.equal(r.stderr, "");
});

test("an error is one line and its kind's exit code; work that fails afterwards changes neither", async () => {
  const r = await run(`reportAndFinish(errorOf("NotFound", "image x: not found"));
setTimeout(() => { throw new Error("late failure"); }, 10);
Promise.reject(new Error("late rejection"));`);
  assert.equal(r.code, 11);
  assert.equal(r.stderr, "tsctr: image x: not found\n");
});

test("a handle left open cannot keep a finished command alive; --debug names it", async () => {
  const r = await run(`setDebug(true); setInterval(() => {}, 1000); finish(4);`);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /^tsctr: debug: still open after the command ended: .*Timeout.*\nprocess\.exit called\n$/);
  assert.ok(r.ms >= 2000, `it waited for the handles first (${r.ms} ms)`);
});
