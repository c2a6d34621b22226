import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile, open } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLocalStore } from "../../src/content/mod.ts";
import type { ContentWriter } from "../../src/content/mod.ts";
import { digestOf } from "../../src/digest/mod.ts";
import { isKind } from "../../src/errdefs/mod.ts";

async function withStore(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-ingest-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function drain(w: ContentWriter): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of w.replay() as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
  return new Uint8Array(Buffer.concat(chunks));
}

const blob = randomBytes(300_000);

/** Writes the first `n` bytes of `blob` under ingest "pull-x", suspends, and returns the ingest's directory. */
async function suspendedIngest(dir: string, n: number): Promise<string> {
  const store = await openLocalStore(dir);
  const w = await store.writer("pull-x", { digest: await digestOf(blob), size: blob.length }, { resume: true });
  await w.write(blob.subarray(0, n));
  await w.suspend();
  const [ingest] = await readdir(join(dir, "ingest"));
  return join(dir, "ingest", ingest!);
}

test("a suspended ingest is resumed: its bytes are replayed, hashed, and only the rest is written", () =>
  withStore(async (dir) => {
    const store = await openLocalStore(dir);
    const expected = { digest: await digestOf(blob), size: blob.length };
    const first = await store.writer("pull-x", expected, { resume: true });
    assert.equal(first.offset, 0);
    await first.write(blob.subarray(0, 123_456));
    await first.suspend();
    assert.equal(await store.info(expected.digest), undefined, "nothing visible");

    const second = await store.writer("pull-x", expected, { resume: true });
    assert.equal(second.offset, 123_456);
    await assert.rejects(second.write(blob.subarray(123_456)), (e) => isKind(e, "FailedPrecondition"));
    assert.deepEqual(await drain(second), new Uint8Array(blob.subarray(0, 123_456)));
    await second.write(blob.subarray(123_456));
    await second.commit();
    assert.deepEqual(await store.readBytes(expected.digest), new Uint8Array(blob));
    assert.deepEqual(await readdir(join(dir, "ingest")), []);
  }));

test("a writer without resume, or for another digest, starts from zero", () =>
  withStore(async (dir) => {
    const store = await openLocalStore(dir);
    const expected = { digest: await digestOf(blob), size: blob.length };
    const w = await store.writer("pull-x", expected, { resume: true });
    await w.write(blob.subarray(0, 1000));
    await w.suspend();
    const other = await store.writer("pull-x", { digest: await digestOf("other"), size: 5 }, { resume: true });
    assert.equal(other.offset, 0);
    await other.suspend();
    const fresh = await store.writer("pull-x", expected);
    assert.equal(fresh.offset, 0);
    await fresh.abort();
    assert.deepEqual(await readdir(join(dir, "ingest")), [], "an empty suspended ingest and an aborted one leave nothing");
  }));

test("after a reboot only the bytes fsynced at the last checkpoint are trusted", () =>
  withStore(async (dir) => {
    const ingest = await suspendedIngest(dir, 200_000);
    const state = JSON.parse(await readFile(join(ingest, "state"), "utf8")) as { boot: string; synced: number };
    assert.deepEqual(state.synced, 200_000);
    await writeFile(join(ingest, "state"), JSON.stringify({ boot: "another-boot", synced: 50_000 }));
    const store = await openLocalStore(dir);
    const expected = { digest: await digestOf(blob), size: blob.length };
    const again = await store.writer("pull-x", expected, { resume: true });
    assert.equal(again.offset, 50_000);
    await again.abort();
  }));

test("kept bytes that changed on disk fail the commit with DataLoss and the ingest is discarded", () =>
  withStore(async (dir) => {
    const fh = await open(join(await suspendedIngest(dir, 100_000), "data"), "r+");
    await fh.write(Buffer.from("flipped"), 0, 7, 5000);
    await fh.close();
    const store = await openLocalStore(dir);
    const expected = { digest: await digestOf(blob), size: blob.length };
    const again = await store.writer("pull-x", expected, { resume: true });
    await drain(again);
    await again.write(blob.subarray(100_000));
    await assert.rejects(again.commit(), (e) => isKind(e, "DataLoss") && /data has digest/.test((e as Error).message));
    assert.deepEqual(await readdir(join(dir, "ingest")), []);
    assert.equal(await store.info(expected.digest), undefined);
  }));
