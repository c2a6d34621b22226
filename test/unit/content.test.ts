import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLocalStore } from "../../src/content/mod.ts";
import { digestOf } from "../../src/digest/mod.ts";
import { isKind } from "../../src/errdefs/mod.ts";

async function withStore(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-content-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a verified blob becomes visible and reads back byte for byte", () =>
  withStore(async (dir) => {
    const store = await openLocalStore(dir);
    const bytes = new TextEncoder().encode("hello layers");
    const digest = await digestOf(bytes);
    const w = await store.writer("r1", { digest, size: bytes.length });
    await w.write(bytes.subarray(0, 5));
    assert.equal(await store.info(digest), undefined, "not visible before commit");
    await w.write(bytes.subarray(5));
    await w.commit();
    assert.deepEqual(await store.info(digest), { digest, size: bytes.length });
    assert.deepEqual(await store.readBytes(digest), bytes);
    const chunks: Uint8Array[] = [];
    for await (const c of await store.readStream(digest)) chunks.push(c);
    assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), bytes);
    assert.deepEqual(await readdir(join(dir, "ingest")), [], "ingest cleaned up");
  }));

test("a blob with the wrong digest or size is refused and leaves nothing behind", () =>
  withStore(async (dir) => {
    const store = await openLocalStore(dir);
    const good = new TextEncoder().encode("good");
    const digest = await digestOf(good);
    const w = await store.writer("r2", { digest, size: 4 });
    await w.write(new TextEncoder().encode("evil"));
    await assert.rejects(w.commit(), (e) => isKind(e, "DataLoss"));
    assert.equal(await store.info(digest), undefined);
    const w2 = await store.writer("r3", { digest, size: 4 });
    await assert.rejects(w2.write(new TextEncoder().encode("too long")), (e) => isKind(e, "DataLoss"));
    await w2.abort();
    const w3 = await store.writer("r4", { digest, size: 4 });
    await w3.write(new TextEncoder().encode("go"));
    await assert.rejects(w3.commit(), (e) => isKind(e, "DataLoss"));
    assert.deepEqual(await readdir(join(dir, "ingest")), []);
    assert.deepEqual(await readdir(join(dir, "blobs", "sha256")), []);
  }));

test("a missing blob is NotFound and a second writer on the same ref is refused", () =>
  withStore(async (dir) => {
    const store = await openLocalStore(dir);
    const digest = await digestOf("x");
    await assert.rejects(store.readBytes(digest), (e) => isKind(e, "NotFound"));
    const w = await store.writer("same", { digest, size: 1 });
    await assert.rejects(store.writer("same", { digest, size: 1 }), (e) => isKind(e, "AlreadyExists"));
    await w.abort();
  }));
