/** The pure parts of the container lifecycle: restart policies, ps wording, log and event formats, sizes, signals. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isKind } from "../../src/errdefs/mod.ts";
import { nextRestartDelay, parseRestartPolicy, shouldRestart, shouldStartWithDaemon } from "../../src/client/restart_policy.ts";
import { parseSignal } from "../../src/client/tasks.ts";
import { commandText, humanDuration, statusText } from "../../src/cli/status.ts";
import { byteSize } from "../../src/cli/parse.ts";
import { parseLogLine, readLog } from "../../src/runtime/container_log.ts";
import { eventFields, readEvents, appendEvent } from "../../src/runtime/events.ts";
import type { ContainerStatus } from "../../src/client/tasks.ts";

test("restart policies parse as Docker spells them and decide like Docker", () => {
  assert.deepEqual(parseRestartPolicy("no"), { name: "no", maxRetries: undefined });
  assert.deepEqual(parseRestartPolicy("on-failure:5"), { name: "on-failure", maxRetries: 5 });
  for (const bad of ["", "sometimes", "always:3", "on-failure:", "on-failure:-1"]) {
    assert.throws(() => parseRestartPolicy(bad), (e: unknown) => isKind(e, "InvalidArgument"), bad);
  }
  assert.equal(shouldRestart(parseRestartPolicy("always"), 0, 10, false), true);
  assert.equal(shouldRestart(parseRestartPolicy("unless-stopped"), 1, 0, true), false);
  assert.equal(shouldRestart(parseRestartPolicy("on-failure:2"), 0, 0, false), false);
  assert.equal(shouldRestart(parseRestartPolicy("on-failure:2"), 1, 1, false), true);
  assert.equal(shouldRestart(parseRestartPolicy("on-failure:2"), 1, 2, false), false);
  assert.equal(shouldRestart(parseRestartPolicy("no"), 1, 0, false), false);
});

test("ps words durations and states like Docker", () => {
  assert.equal(humanDuration(500), "Less than a second");
  assert.equal(humanDuration(1000), "1 second");
  assert.equal(humanDuration(42_000), "42 seconds");
  assert.equal(humanDuration(90_000), "About a minute");
  assert.equal(humanDuration(3 * 60_000), "3 minutes");
  assert.equal(humanDuration(3_600_000), "About an hour");
  assert.equal(humanDuration(5 * 3_600_000), "5 hours");
  assert.equal(humanDuration(3 * 86_400_000), "3 days");
  const now = Date.parse("2026-01-01T00:10:00Z");
  const base = { record: {} as ContainerStatus["record"], command: [], restarts: 0 };
  assert.equal(statusText({ ...base, status: "running", startedAt: "2026-01-01T00:07:00Z" }, now), "Up 3 minutes");
  assert.equal(statusText({ ...base, status: "paused", startedAt: "2026-01-01T00:09:58Z" }, now), "Up 2 seconds (Paused)");
  assert.equal(statusText({ ...base, status: "stopped", exit: { pid: 1, status: 7, exitedAt: "2026-01-01T00:09:58Z" } }, now), "Exited (7) 2 seconds ago");
  assert.equal(statusText({ ...base, status: "created" }, now), "Created");
  assert.equal(commandText(["sh", "-c", "echo hello; sleep 1000"]), '"sh -c echo hello; s…"');
});

test("sizes and signals are validated", () => {
  assert.equal(byteSize("4k"), 4096);
  assert.equal(byteSize("10m"), 10 * 1024 * 1024);
  assert.equal(byteSize("10MiB"), 10 * 1024 * 1024);
  assert.equal(byteSize("123"), 123);
  for (const bad of ["", "0", "ten", "4x", "-1"]) assert.throws(() => byteSize(bad), (e: unknown) => isKind(e, "InvalidArgument"), bad);
  assert.equal(parseSignal("term"), "SIGTERM");
  assert.equal(parseSignal("SIGKILL"), "SIGKILL");
  assert.equal(parseSignal("9"), "9");
  assert.throws(() => parseSignal("NOPE"), (e: unknown) => isKind(e, "InvalidArgument"));
});

test("log lines parse in the CRI format; readLog reads rotated files oldest first and honours --tail", async () => {
  assert.deepEqual(parseLogLine("2026-01-01T00:00:00.000000001Z stderr F a b  c"), { time: "2026-01-01T00:00:00.000000001Z", stream: "stderr", partial: false, text: "a b  c" });
  assert.equal(parseLogLine("2026-01-01T00:00:00Z stdout P ")?.text, "");
  assert.equal(parseLogLine("garbage"), undefined);
  const dir = await mkdtemp(join(tmpdir(), "tsctr-lc-unit-"));
  try {
    const line = (n: number) => `2026-01-01T00:00:0${n}.000000000Z stdout F line${n}\n`;
    await writeFile(join(dir, "container.log.2"), line(1));
    await writeFile(join(dir, "container.log.1"), line(2) + line(3));
    await writeFile(join(dir, "container.log"), line(4) + "not a record\n" + line(5));
    const all: string[] = [];
    for await (const r of readLog(dir)) all.push(r.text);
    assert.deepEqual(all, ["line1", "line2", "line3", "line4", "line5"]);
    const tail: string[] = [];
    for await (const r of readLog(dir, { tail: 2 })) tail.push(r.text);
    assert.deepEqual(tail, ["line4", "line5"]);

    // Following across a rotation: the renamed file is drained, then the new one is read from its start.
    let step = 0;
    const followed: string[] = [];
    const done = async () => {
      step++;
      if (step === 2) {
        await appendFile(join(dir, "container.log"), line(6));
        await rename(join(dir, "container.log"), join(dir, "container.log.1"));
        await writeFile(join(dir, "container.log"), line(7));
      }
      return step >= 4;
    };
    for await (const r of readLog(dir, { tail: 1, follow: true, done, pollMs: 10 })) followed.push(r.text);
    assert.deepEqual(followed, ["line5", "line6", "line7"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("events: the monitor's fields are valid JSON members; readEvents follows appended lines", async () => {
  assert.deepEqual(JSON.parse(`{"type":"exit",${eventFields("default", "web")},"status":0}`), { type: "exit", namespace: "default", id: "web", status: 0 });
  const dir = await mkdtemp(join(tmpdir(), "tsctr-lc-unit-"));
  try {
    const file = join(dir, "events.log");
    await appendEvent(file, { type: "create", namespace: "default", id: "old" });
    let step = 0;
    const done = async () => {
      if (++step === 2) {
        await appendEvent(file, { type: "exit", namespace: "default", id: "new", status: 3 });
        await appendFile(file, "{cut by a cra");
      }
      return step >= 3;
    };
    const seen: unknown[] = [];
    for await (const e of readEvents(file, { done, pollMs: 10 })) seen.push([e.type, e.id, e.status]);
    assert.deepEqual(seen, [["exit", "new", 3]], "only events appended after the start");
    const past: string[] = [];
    for await (const e of readEvents(file, { past: true, done: async () => true })) past.push(e.id);
    assert.deepEqual(past, ["old", "new"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("at daemon start, always and unless-stopped come back as in Docker; on-failure and no do not", () => {
  assert.equal(shouldStartWithDaemon(parseRestartPolicy("always"), true), true, "always comes back even after an explicit stop");
  assert.equal(shouldStartWithDaemon(parseRestartPolicy("unless-stopped"), false), true);
  assert.equal(shouldStartWithDaemon(parseRestartPolicy("unless-stopped"), true), false);
  assert.equal(shouldStartWithDaemon(parseRestartPolicy("on-failure:3"), false), false);
  assert.equal(shouldStartWithDaemon(parseRestartPolicy("no"), false), false);
});

test("restart back-off: 100 ms doubling, capped at 1 min, reset after a 10 s run", () => {
  const delays: number[] = [];
  let d = 0;
  for (let i = 0; i < 12; i++) delays.push((d = nextRestartDelay(d, 50)));
  assert.deepEqual(delays.slice(0, 5), [100, 200, 400, 800, 1600]);
  assert.equal(delays.at(-1), 60_000);
  assert.equal(Math.max(...delays), 60_000);
  assert.equal(nextRestartDelay(60_000, 10_000), 100);
  assert.equal(nextRestartDelay(60_000, 9_999), 60_000);
});
