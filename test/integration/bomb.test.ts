/**
 * Decompression bombs: a small zstd layer of a 300 MiB zero file is refused once it passes the ratio
 * ceiling, with a clear error and nothing committed, on both decompression engines and on the worker path.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLocalStore } from "../../src/content/mod.ts";
import { digestOf } from "../../src/digest/mod.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";
import { MediaTypes, type Descriptor } from "../../src/images/types.ts";
import { OverlaySnapshotter } from "../../src/snapshots/overlay/mod.ts";
import { extractLayer } from "../../src/unpack/unpacker.ts";
import { ExtractWorkers } from "../../src/unpack/workers.ts";

test("a zstd bomb is refused past the ratio ceiling, in-process and on a worker", async () => {
  const work = await mkdtemp(join(tmpdir(), "tsctr-bomb-"));
  const workers = ExtractWorkers.create(1);
  try {
    execFileSync("truncate", ["-s", "300M", join(work, "zeros")]);
    execFileSync("tar", ["-cf", join(work, "bomb.tar"), "-C", work, "zeros"]);
    const blob = execFileSync("zstd", ["-q", "-c", "-1", join(work, "bomb.tar")], { maxBuffer: 1 << 26 });
    assert.ok(blob.length < 1 << 20, `the bomb is small (${blob.length} bytes)`);
    const content = await openLocalStore(join(work, "content"));
    const layer: Descriptor = { mediaType: MediaTypes.ociLayerZstd, digest: await digestOf(blob), size: blob.length };
    await content.writeBytes(blob, layer);
    const snapshotter = await OverlaySnapshotter.open(join(work, "snapshots"));
    for (const opts of [{}, { workers }]) {
      await assert.rejects(
        extractLayer(snapshotter, await content.readStream(layer.digest), layer, await digestOf("whatever"), "test/bomb", opts),
        (e: unknown) => e instanceof TsctrError && e.kind === "ResourceExhausted" && /decompression bomb/.test(e.message) && e.message.includes(layer.digest),
      );
      assert.deepEqual(await readdir(join(work, "snapshots", "active")), [], "the staging snapshot is removed");
    }
  } finally {
    await workers?.close();
    await rm(work, { recursive: true, force: true });
  }
});
