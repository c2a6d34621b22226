/**
 * Decompression bombs: a small zstd layer of a 300 MiB zero file is refused once it passes the ratio
 * ceiling, with a clear error and nothing committed, on both decompression engines and on the worker path.
 * And errors met on the worker side of the split pipeline (a hostile tar, a corrupt one) come back with their
 * kind, the layer and the entry named, while nothing lands outside the snapshot.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { linkSync, lstatSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
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

test("errors found on an extraction worker keep their kind and name the layer and the entry", async () => {
  const work = await mkdtemp(join(tmpdir(), "tsctr-worker-errors-"));
  const workers = ExtractWorkers.create(1);
  assert.ok(workers, "workers exist on Node");
  try {
    const content = await openLocalStore(join(work, "content"));
    const snapshotter = await OverlaySnapshotter.open(join(work, "snapshots"));
    const store = async (tar: Buffer): Promise<Descriptor> => {
      const blob = execFileSync("gzip", ["-n", "-c"], { input: tar, maxBuffer: 1 << 26 });
      const layer: Descriptor = { mediaType: MediaTypes.ociLayerGzip, digest: await digestOf(blob), size: blob.length };
      await content.writeBytes(blob, layer);
      return layer;
    };
    // A hardlink whose target is rewritten to ../../etc/passwd.
    const src = join(work, "src");
    await mkdir(src);
    writeFileSync(join(src, "t"), "t\n");
    linkSync(join(src, "t"), join(src, "h"));
    const hostile = await store(execFileSync("tar", ["-cf", "-", "-P", "--transform=s,^t$,../../etc/passwd,RS", "-C", src, "t", "h"], { maxBuffer: 1 << 26 }));
    // A tar whose first header checksum is wrong.
    const corruptTar = execFileSync("tar", ["-cf", "-", "-C", src, "t"], { maxBuffer: 1 << 26 });
    corruptTar[150] = corruptTar[150]! ^ 0x11;
    const corrupt = await store(corruptTar);
    const passwdLinks = lstatSync("/etc/passwd").nlink;
    const cases: Array<[Descriptor, string, RegExp]> = [
      [hostile, "InvalidArgument", /entry "h".*not in the layer/],
      [corrupt, "DataLoss", /checksum/i],
    ];
    for (const [layer, kind, detail] of cases) {
      await assert.rejects(
        extractLayer(snapshotter, await content.readStream(layer.digest), layer, await digestOf("whatever"), "test/worker", { workers }),
        (e: unknown) => e instanceof TsctrError && e.kind === kind && e.message.includes(layer.digest) && detail.test(e.message),
      );
      assert.deepEqual(await readdir(join(work, "snapshots", "active")), [], "the staging snapshot is removed");
    }
    assert.equal(lstatSync("/etc/passwd").nlink, passwdLinks, "nothing was linked outside the snapshot");
  } finally {
    await workers?.close();
    await rm(work, { recursive: true, force: true });
  }
});
