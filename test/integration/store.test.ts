/**
 * The store as a whole, through the CLI with a real docker-registry and real overlay snapshots: reference-
 * based GC (images rm, prune), df/content/snapshots/namespaces, check and --repair of real damage, the
 * --sync levels, and two tsctr processes working on one store at once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm, truncate, writeFile, readFile, open } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { makeTsctr, type Tsctr } from "../helpers/tsctr.ts";
import { pushLayeredImage, randomLayers } from "../helpers/store_images.ts";
import { ErrorKinds } from "../../src/errdefs/mod.ts";
import { digestHex } from "../../src/digest/mod.ts";
import { pushImage, type PushedImage } from "../helpers/oci_builder.ts";

const blobPath = (t: Tsctr, digest: string) => join(t.root, "content", "blobs", "sha256", digestHex(digest as `sha256:${string}`));
const blobs = async (t: Tsctr) => (await readdir(join(t.root, "content", "blobs", "sha256")).catch(() => [])).map((h) => `sha256:${h}`).sort();
const committed = async (t: Tsctr) => (await readdir(join(t.root, "snapshots", "overlayfs", "committed")).catch(() => [])).length;

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `check` found nothing at all (no damage, no leftovers). */
async function assertClean(t: Tsctr, extra: string[] = []): Promise<void> {
  const r = await t(["check", ...extra]);
  assert.equal(r.code, 0, `check: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, "", "check reports nothing");
}

test("GC by references: images rm, prune, df, content, snapshots, namespaces", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const a = await pushLayeredImage(reg.host, "store-a", "1", await randomLayers("a", 2, 256 << 10));
    const b = await pushLayeredImage(reg.host, "store-b", "1", await randomLayers("b", 1, 256 << 10));
    const refA = `${reg.host}/store-a:1`;
    const refB = `${reg.host}/store-b:1`;
    ok(await tsctr(["pull", "-q", "--plain-http", refA]), "pull a");
    ok(await tsctr(["pull", "-q", "--plain-http", refB]), "pull b");
    // busybox is shared: 1 + 2 + 1 layers, 4 snapshots; blobs: 2 manifests, 2 configs, 4 layers
    assert.equal(await committed(tsctr), 4);
    assert.equal((await blobs(tsctr)).length, 8);

    await t.test("check of a freshly pulled store reports nothing", () => assertClean(tsctr, ["--full"]));

    await t.test("content ls and snapshots ls show everything in use", async () => {
      const content = ok(await tsctr(["content", "ls"]), "content ls").trim().split("\n");
      assert.match(content[0]!, /^DIGEST\s+SIZE\s+USED$/);
      assert.equal(content.length, 9);
      assert.ok(content.slice(1).every((l) => l.endsWith("yes")));
      const snaps = ok(await tsctr(["snapshots", "ls"]), "snapshots ls").trim().split("\n");
      assert.equal(snaps.length, 5);
      const usage = ok(await tsctr(["snapshots", "usage", "--bytes"]), "usage").trim().split("\n");
      assert.equal(usage.length, 5);
      assert.ok(usage.slice(1).every((l) => Number(l.split(/\s+/)[1]) > 0));
    });

    await t.test("in-use things cannot be removed one by one", async () => {
      const r = await tsctr(["content", "rm", a.digest]);
      assert.equal(r.code, ErrorKinds.FailedPrecondition, r.stderr);
      assert.match(r.stderr, /^tsctr: content rm sha256:[0-9a-f]{64}: an image or an operation in progress uses it\n$/);
      const s = ok(await tsctr(["snapshots", "ls"]), "ls").split("\n")[1]!.split(/\s+/)[0]!;
      assert.equal((await tsctr(["snapshots", "rm", s])).code, ErrorKinds.FailedPrecondition);
    });

    await t.test("images rm removes what only that image held, and keeps what the other shares", async () => {
      ok(await tsctr(["images", "rm", refA]), "rm");
      const left = await blobs(tsctr);
      const expectB = [b.digest, b.configDescriptor.digest, ...b.manifest.layers.map((l) => l.digest)].sort();
      assert.deepEqual(left, expectB);
      assert.equal(await committed(tsctr), 2);
      await assertClean(tsctr);
    });

    await t.test("df counts blobs and snapshots; nothing is reclaimable", async () => {
      const out = ok(await tsctr(["df", "--bytes"]), "df");
      const row = (name: string) => out.split("\n").find((l) => l.startsWith(name))!.trim().split(/\s+/);
      assert.equal(row("blobs")[1], "4");
      assert.equal(Number(row("blobs")[2]), expectSize(b));
      assert.equal(row("snapshots")[1], "2");
      assert.ok(Number(row("snapshots")[2]) > 256 << 10);
      assert.equal(row("reclaimable")[1], "0");
    });

    await t.test("an unreferenced blob is reclaimable, and prune removes it", async () => {
      const stray = join(tsctr.root, "content", "blobs", "sha256", "0".repeat(64));
      await writeFile(stray, "x".repeat(1000));
      const df = ok(await tsctr(["df", "--bytes"]), "df");
      assert.match(df, /reclaimable\s+1000\n/);
      const check = await tsctr(["check"]);
      assert.equal(check.code, 0);
      assert.match(check.stdout, /^leftover: blob sha256:0{64}: unreferenced \(1000 bytes\)\n$/);
      const prune = ok(await tsctr(["prune"]), "prune");
      assert.match(prune, /removed blob sha256:0{64}/);
      assert.equal((await blobs(tsctr)).length, 4);
    });

    await t.test("namespaces: create, ls, rm of a non-empty one fails, prune --all empties the store", async () => {
      ok(await tsctr(["namespaces", "create", "store-ns"]), "create");
      assert.equal((await tsctr(["namespaces", "create", "store-ns"])).code, ErrorKinds.AlreadyExists);
      assert.equal(ok(await tsctr(["namespaces", "ls"]), "ls"), "default\nstore-ns\n");
      ok(await tsctr(["-n", "store-ns", "pull", "-q", "--plain-http", refB]), "pull in store-ns");
      const r = await tsctr(["namespaces", "rm", "store-ns"]);
      assert.equal(r.code, ErrorKinds.FailedPrecondition);
      assert.match(r.stderr, /^tsctr: remove namespace "store-ns": it still holds 1 image, 2 snapshots\n$/);
      // b is now held by two namespaces: removing it from one keeps everything
      ok(await tsctr(["prune", "--all"]), "prune default");
      assert.equal((await blobs(tsctr)).length, 4);
      const pruned = ok(await tsctr(["-n", "store-ns", "prune", "--all"]), "prune store-ns");
      assert.match(pruned, new RegExp(`removed image ${refB.replace(/[.:/]/g, "\\$&")}`));
      assert.deepEqual(await blobs(tsctr), []);
      assert.equal(await committed(tsctr), 0);
      ok(await tsctr(["namespaces", "rm", "store-ns"]), "rm empty");
      assert.equal((await tsctr(["namespaces", "rm", "store-ns"])).code, ErrorKinds.NotFound);
      await assertClean(tsctr);
    });
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

function expectSize(img: PushedImage): number {
  return img.manifestBytes.byteLength + img.configDescriptor.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
}

test("check finds damage and --repair makes the next pull fetch it again", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const img = await pushLayeredImage(reg.host, "store-damage", "1", await randomLayers("d", 2, 128 << 10));
    const ref = `${reg.host}/store-damage:1`;
    ok(await tsctr(["pull", "-q", "--plain-http", ref]), "pull");
    const run = async () => ok(await tsctr(["run", "--rm", ref, "store-damage-run", "sh", "-c", "ls /data | wc -l"]), "run").trim();
    assert.equal(await run(), "2");

    await t.test("a truncated config: damaged (exit 16); repair marks the image; pull fetches it again", async () => {
      await truncate(blobPath(tsctr, img.configDescriptor.digest), 10);
      const r = await tsctr(["check"]);
      assert.equal(r.code, ErrorKinds.DataLoss, r.stdout + r.stderr);
      assert.match(r.stdout, /^damaged: blob sha256:[0-9a-f]{64}: 10 bytes, expected \d+$/m);
      assert.match(r.stdout, /^damaged: image default\/.*store-damage:1: its config sha256:[0-9a-f]{64} has 10 bytes/m);
      const fixed = await tsctr(["check", "--repair"]);
      assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
      assert.match(fixed.stdout, /^repaired: blob sha256:[0-9a-f]{64}: removed \(damaged\)$/m);
      assert.match(fixed.stdout, /^marked: image default\/.*store-damage:1: pull it again/m);
      const after = await tsctr(["check"]);
      assert.equal(after.code, 0);
      assert.doesNotMatch(after.stdout, /damaged/);
      ok(await tsctr(["pull", "-q", "--plain-http", ref]), "pull again");
      await assertClean(tsctr, ["--full"]);
      assert.equal(await run(), "2");
    });

    await t.test("a layer blob with flipped bytes is found by --full only; repair removes it and the pull restores it", async () => {
      const layer = img.manifest.layers[1]!.digest;
      const fh = await open(blobPath(tsctr, layer), "r+");
      await fh.write(new Uint8Array([0xff, 0xfe, 0xfd]), 0, 3, 100);
      await fh.close();
      await assertClean(tsctr);
      const r = await tsctr(["check", "--full"]);
      assert.equal(r.code, ErrorKinds.DataLoss);
      assert.match(r.stdout, new RegExp(`^damaged: blob ${layer}: content has digest sha256:[0-9a-f]{64}$`, "m"));
      assert.equal((await tsctr(["check", "--full", "--repair"])).code, 0);
      await assertClean(tsctr, ["--full"]);
      ok(await tsctr(["pull", "-q", "--plain-http", ref]), "pull again");
      assert.ok((await blobs(tsctr)).includes(layer));
      await assertClean(tsctr, ["--full"]);
    });

    await t.test("a missing parent snapshot: its descendants are damaged; repair removes them; pull unpacks again", async () => {
      const snaps = ok(await tsctr(["snapshots", "ls"]), "ls").trim().split("\n").slice(1).map((l) => l.split(/\s+/));
      const base = snaps.find((s) => s.length === 3)!; // KEY KIND USED: no parent
      const { createHash } = await import("node:crypto");
      await rm(join(tsctr.root, "snapshots", "overlayfs", "committed", createHash("sha256").update(base[0]!).digest("hex")), { recursive: true });
      const r = await tsctr(["check"]);
      assert.equal(r.code, ErrorKinds.DataLoss);
      assert.match(r.stdout, /^damaged: snapshot sha256:[0-9a-f]{64}: its parent sha256:[0-9a-f]{64} is missing$/m);
      assert.match(r.stdout, /^damaged: image default\/.*store-damage:1: its layer snapshot/m);
      const fixed = await tsctr(["check", "--repair"]);
      assert.equal(fixed.code, 0, fixed.stdout);
      assert.equal(await committed(tsctr), 0);
      const runBroken = await tsctr(["run", "--rm", ref, "store-damage-run2", "true"]);
      assert.notEqual(runBroken.code, 0);
      ok(await tsctr(["pull", "-q", "--plain-http", ref]), "pull again");
      await assertClean(tsctr, ["--full"]);
      assert.equal(await run(), "2");
    });

    await t.test("leftovers of dead processes are reported and removed, live or recent ingests kept", async () => {
      const ingest = join(tsctr.root, "content", "ingest", "f".repeat(64));
      const { mkdir, utimes } = await import("node:fs/promises");
      await mkdir(ingest, { recursive: true });
      await writeFile(join(ingest, "ref"), "pull-old\n");
      await writeFile(join(ingest, "data"), "partial");
      await writeFile(join(ingest, "lock"), "999999999 1");
      await assertClean(tsctr); // a recent unlocked ingest may be resumed: not a leftover yet
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(join(ingest, "data"), old, old);
      await utimes(ingest, old, old);
      const staging = join(tsctr.root, "snapshots", "overlayfs", "tmp", "new-999999999.1-abcdef");
      await mkdir(join(staging, "fs"), { recursive: true });
      const r = await tsctr(["check"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^leftover: ingest pull-old: left by an interrupted operation$/m);
      assert.ok(!(await readdir(join(tsctr.root, "snapshots", "overlayfs", "tmp"))).includes("new-999999999.1-abcdef"), "a dead process's staging dir is removed when the snapshotter opens");
      ok(await tsctr(["check", "--repair"]), "repair");
      await assertClean(tsctr);
      assert.deepEqual(await readdir(join(tsctr.root, "content", "ingest")), []);
    });
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("--sync and config.json choose the level; a bad config.json is one clear error", async () => {
  const tsctr = await makeTsctr();
  try {
    const bad = await tsctr(["--sync", "sometimes", "images", "ls"]);
    assert.equal(bad.code, 2);
    ok(await tsctr(["images", "ls"]), "ls");
    await writeFile(join(tsctr.root, "config.json"), '{"sync": "often"}');
    const r = await tsctr(["images", "ls"]);
    assert.equal(r.code, ErrorKinds.InvalidArgument);
    assert.match(r.stderr, /^tsctr: read .*config\.json: "sync" must be one of none, metadata, full\n$/);
    await writeFile(join(tsctr.root, "config.json"), '{"sync": "none"}');
    ok(await tsctr(["images", "ls"]), "ls with sync none");
    assert.match(await readFile(join(tsctr.root, "config.json"), "utf8"), /none/);
  } finally {
    await tsctr.cleanup();
  }
});

/** Names of the threads of the tsctr process working on `root`, seen at any moment until `until` settles. */
async function threadNames(root: string, until: Promise<unknown>): Promise<Set<string>> {
  const seen = new Set<string>();
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    for (const pid of await readdir("/proc").catch(() => [])) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (!cmdline.split("\0").includes(root)) continue;
      for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
        seen.add((await readFile(`/proc/${pid}/task/${task}/comm`, "utf8").catch(() => "")).trim());
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return seen;
}

test("config.json's unpackWorkers puts big layers on a worker thread; --unpack-workers overrides it; a bad value is one clear error", async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    await pushLayeredImage(reg.host, "store-workers", "1", await randomLayers("workers", 2, 8 << 20));
    const ref = `${reg.host}/store-workers:1`;
    const pullSeeing = async (args: string[]) => {
      const pulling = tsctr(["pull", "-q", "--plain-http", ...args, ref]);
      const names = await threadNames(tsctr.root, pulling);
      ok(await pulling, "pull");
      ok(await tsctr(["images", "rm", ref]), "rm");
      ok(await tsctr(["prune"]), "prune");
      return names;
    };
    assert.ok((await pullSeeing([])).has("MainThread"), "the poller sees the pull's threads");
    assert.ok(!(await pullSeeing([])).has("WorkerThread"), "no worker by default");
    await writeFile(join(tsctr.root, "config.json"), '{"unpackWorkers": 1}');
    assert.ok((await pullSeeing([])).has("WorkerThread"), "a worker with unpackWorkers 1");
    assert.ok(!(await pullSeeing(["--unpack-workers", "0"])).has("WorkerThread"), "--unpack-workers 0 wins over the file");
    await writeFile(join(tsctr.root, "config.json"), '{"unpackWorkers": -1}');
    const bad = await tsctr(["images", "ls"]);
    assert.equal(bad.code, ErrorKinds.InvalidArgument);
    assert.match(bad.stderr, /^tsctr: read .*config\.json: "unpackWorkers" must be a whole number from 0 to 64\n$/);
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("a small layer above big ones starts at once, and is never committed without the layers below", async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const big = await randomLayers("big", 3, 5 << 20);
    const [small] = await randomLayers("small", 1, 1 << 10);
    // The config lies about the bottom layer's uncompressed digest: it fails only once wholly extracted.
    const lying = { ...big[0]!, diffId: `sha256:${"0".repeat(64)}` as const };
    await pushImage(reg.host, "store-order", "1", { layers: [lying, big[1]!, big[2]!, small!] });
    const r = await tsctr(["pull", "--plain-http", `${reg.host}/store-order:1`]);
    assert.equal(r.code, ErrorKinds.DataLoss, `${r.stderr}${r.stdout}`);
    assert.match(r.stderr, new RegExp(big[0]!.digest));
    // Three big layers fill the three download slots, yet the small one started with them (small layers
    // have slots of their own) ...
    const lines = r.stdout.split("\n");
    const line = (l: { digest: string }, what: string) => lines.findIndex((x) => x.startsWith(`layer-${l.digest.slice(7, 19)}: ${what}`));
    const smallStart = line(small!, "extracting");
    assert.ok(smallStart >= 0, r.stdout);
    for (const b of big) assert.ok(line(b, "done") === -1 || line(b, "done") > smallStart, r.stdout);
    // ... and, extracted long before the bottom layer failed, it waited for it and went with it.
    assert.ok(line(small!, "done") >= 0, r.stdout);
    assert.equal(await committed(tsctr), 0);
    assert.doesNotMatch(r.stdout, /unpacked/);
    // No damage and no half-made snapshot: what stays are verified blobs a later pull reuses.
    const check = await tsctr(["check"]);
    assert.equal(check.code, 0, check.stderr);
    for (const l of check.stdout.trim().split("\n")) assert.match(l, /^leftover: blob sha256:[0-9a-f]{64}: unreferenced/);
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("two tsctr processes on one store both finish correctly", async (t) => {
  const reg = await startRegistry();
  try {
    const img = await pushLayeredImage(reg.host, "store-two", "1", await randomLayers("two", 3, 4 << 20));
    const ref = `${reg.host}/store-two:1`;

    await t.test("two pulls of the same image: one download per blob, both succeed", async () => {
      const tsctr = await makeTsctr();
      try {
        const [p1, p2] = await Promise.all([tsctr(["pull", "--plain-http", ref]), tsctr(["pull", "--plain-http", ref])]);
        ok(p1, "pull 1");
        ok(p2, "pull 2");
        for (const l of img.manifest.layers) {
          const line = new RegExp(`^layer-${l.digest.slice(7, 19)}: done `, "gm");
          const downloads = (p1.stdout.match(line)?.length ?? 0) + (p2.stdout.match(line)?.length ?? 0);
          assert.equal(downloads, 1, `layer ${l.digest} downloaded ${downloads} times:\n${p1.stdout}\n${p2.stdout}`);
        }
        await assertClean(tsctr, ["--full"]);
        ok(await tsctr(["run", "--rm", ref, "store-two-run", "true"]), "run");
      } finally {
        await tsctr.cleanup();
      }
    });

    await t.test("a pull and an rm of the same image at once", async () => {
      const tsctr = await makeTsctr();
      try {
        ok(await tsctr(["pull", "-q", "--plain-http", ref]), "first pull");
        const [pull, rmr] = await Promise.all([tsctr(["pull", "-q", "--plain-http", ref]), tsctr(["images", "rm", ref])]);
        ok(pull, "pull");
        ok(rmr, "rm");
        const names = ok(await tsctr(["images", "ls", "-q"]), "ls");
        await assertClean(tsctr, ["--full"]);
        // either order is correct; whichever won, the store is whole and a pull makes the image runnable
        if (names === "") ok(await tsctr(["pull", "-q", "--plain-http", ref]), "pull after");
        ok(await tsctr(["run", "--rm", ref, "store-two-run2", "true"]), "run");
      } finally {
        await tsctr.cleanup();
      }
    });

    await t.test("a pull and a prune at once (GC during the pull keeps what the pull leased)", async () => {
      const tsctr = await makeTsctr();
      try {
        const pulling = tsctr(["pull", "-q", "--plain-http", ref]);
        await new Promise((r) => setTimeout(r, 300));
        const prunes = [];
        for (let i = 0; i < 3; i++) {
          prunes.push(ok(await tsctr(["prune"]), "prune"));
          await new Promise((r) => setTimeout(r, 100));
        }
        ok(await pulling, "pull");
        await assertClean(tsctr, ["--full"]);
        ok(await tsctr(["run", "--rm", ref, "store-two-run3", "true"]), "run");
      } finally {
        await tsctr.cleanup();
      }
    });
  } finally {
    await reg.stop();
  }
});
