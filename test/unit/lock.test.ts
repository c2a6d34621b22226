import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { acquireLock, breakStaleLock, lockHeld, lockOwner, ownerAlive, ownerId, withLock } from "../../src/platform/lock.ts";
import { isKind } from "../../src/errdefs/mod.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-lock-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The PID of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}

test("a lock holds this process's identity and is released", () =>
  withDir(async (dir) => {
    const path = join(dir, "a");
    const release = await acquireLock(path);
    assert.ok((await readFile(path, "utf8")).startsWith(`${ownerId()} `));
    assert.ok(await lockHeld(path));
    await release();
    await release();
    assert.equal(await lockHeld(path), false);
  }));

test("a second holder waits until the first releases; a zero timeout fails with Unavailable", () =>
  withDir(async (dir) => {
    const path = join(dir, "b");
    const order: string[] = [];
    const first = await acquireLock(path);
    await assert.rejects(acquireLock(path, { timeoutMs: 0, what: "blob x" }), (e) => isKind(e, "Unavailable") && /lock blob x: held by process \d+/.test((e as Error).message));
    const second = withLock(path, async () => void order.push("second"));
    await new Promise((r) => setTimeout(r, 100));
    order.push("first done");
    await first();
    await second;
    assert.deepEqual(order, ["first done", "second"]);
  }));

test("a dead process's lock (or a recycled PID with another start time) is taken over", () =>
  withDir(async (dir) => {
    const path = join(dir, "c");
    await writeFile(path, `${await deadPid()} 12345 abcd\n`);
    const release = await acquireLock(path, { timeoutMs: 1000 });
    await release();
    await writeFile(path, `${process.pid} 1 abcd\n`);
    assert.equal(ownerAlive(`${process.pid} 1`), false);
    assert.ok(ownerAlive(ownerId()));
    const again = await acquireLock(path, { timeoutMs: 1000 });
    await again();
  }));

test("many concurrent takers of one stale lock: exactly one holds it at a time", () =>
  withDir(async (dir) => {
    const dead = await deadPid();
    for (let round = 0; round < 10; round++) {
      const path = join(dir, `d${round}`);
      await writeFile(path, `${dead} 1 x\n`);
      let inside = 0;
      let max = 0;
      await Promise.all(
        Array.from({ length: 8 }, () =>
          withLock(path, async () => {
            inside++;
            max = Math.max(max, inside);
            await new Promise((r) => setTimeout(r, 1));
            inside--;
          }),
        ),
      );
      assert.equal(max, 1, `round ${round}`);
      assert.equal(await lockOwner(path), undefined);
    }
    assert.deepEqual((await readdir(dir)).filter((f) => !/^d\d+$/.test(f)), [], "no break or temporary files are left");
  }));

test("a taker that read the stale owner late removes nothing once another holds the lock", () =>
  withDir(async (dir) => {
    const path = join(dir, "f");
    const stale = `${await deadPid()} 1 w`;
    await writeFile(path, `${stale}\n`);
    const release = await acquireLock(path, { timeoutMs: 1000 });
    const holder = await lockOwner(path);
    const repeat = async (times: number, fn: () => Promise<string>) => {
      const seen: string[] = [];
      for (let i = 0; i < times; i++) seen.push(await fn());
      return seen;
    };
    const outcomes = (
      await Promise.all([
        ...Array.from({ length: 4 }, () => repeat(25, () => breakStaleLock(path, stale).then(() => "broke"))),
        ...Array.from({ length: 8 }, () =>
          repeat(25, () =>
            acquireLock(path, { timeoutMs: 0 }).then(
              async (r) => (await r(), "acquired"),
              () => "busy",
            ),
          ),
        ),
      ])
    ).flat();
    assert.equal(outcomes.filter((o) => o === "acquired").length, 0, "nobody got in beside the holder");
    assert.equal(await lockOwner(path), holder);
    await release();
  }));

test("a taker that died while breaking a stale lock does not block the next one", () =>
  withDir(async (dir) => {
    const path = join(dir, "e");
    const stale = `${await deadPid()} 1 y`;
    await writeFile(path, `${stale}\n`);
    // The break lock a taker holds while it removes this stale content, left behind by a taker that died.
    const breaker = `${path}.${createHash("sha256").update(stale).digest("hex").slice(0, 16)}.break`;
    await writeFile(breaker, `${await deadPid()} 1 z\n`);
    const release = await acquireLock(path, { timeoutMs: 2000 });
    assert.ok((await lockOwner(path))?.startsWith(ownerId()));
    await release();
    assert.deepEqual(await readdir(dir), [], "the dead taker's break lock is gone too");
  }));
