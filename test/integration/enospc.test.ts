/**
 * A disk that fills up in the middle of a pull or an import: the store lives on a small tmpfs (real
 * overlay snapshots on it), the image's layers are random data larger than it. Each run must end in one
 * line with ResourceExhausted (exit 19) and leave the store exactly as before: `check` clean, no image,
 * no blob or snapshot, no ingest or staging left; with room enough, the same pull or import then works.
 * Also: an import holds a lease, so a prune running meanwhile never removes its blobs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry } from "../helpers/registry.ts";
import { makeTsctr, type Tsctr } from "../helpers/tsctr.ts";
import { pushLayeredImage, randomLayers } from "../helpers/store_images.ts";
import { execFile } from "../../src/platform/exec.ts";
import { ErrorKinds } from "../../src/errdefs/mod.ts";

const MB = 1 << 20;

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Mounts a fresh tmpfs of `mb` MiB as the store root of `t`. */
async function mountRoot(t: Tsctr, mb: number): Promise<void> {
  await mkdir(t.root, { recursive: true });
  ok(await execFile("mount", ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", t.root]), "mount tmpfs");
}

/** Resizes the tmpfs under `t`'s root in place, keeping its files. */
async function growRoot(t: Tsctr, mb: number): Promise<void> {
  ok(await execFile("mount", ["-o", `remount,size=${mb}m`, t.root]), "remount tmpfs");
}

async function unmountRoot(t: Tsctr): Promise<void> {
  await execFile("umount", [t.root]);
}

/** Every file left under `dir` (relative paths), or [] when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [] as string[])).map(String).sort();
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The failure is one line, "tsctr: <action>: no space left on device under <root> (…)", with exit 19. */
function assertDiskFull(r: { code: number; stdout: string; stderr: string }, action: RegExp, t: Tsctr): void {
  assert.equal(r.code, ErrorKinds.ResourceExhausted, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, new RegExp(`^tsctr: ${action.source}: no space left on device under ${escapeRe(t.root)} \\(\\d+ MB free; needed about \\d+ MB more\\)$`));
}

/** The store holds nothing: check finds nothing, no image, blob, snapshot, ingest or staging entry. */
async function assertEmptyStore(t: Tsctr): Promise<void> {
  const check = await t(["check"]);
  assert.equal(check.code, 0, `check: ${check.stdout}${check.stderr}`);
  assert.equal(check.stdout, "", "check reports nothing");
  assert.equal(ok(await t(["images", "ls", "-q"]), "images ls").trim(), "");
  assert.deepEqual(await filesUnder(join(t.root, "content", "blobs", "sha256")), []);
  assert.deepEqual(await filesUnder(join(t.root, "content", "ingest")), []);
  assert.deepEqual(await filesUnder(join(t.root, "tmp")), []);
  for (const d of ["committed", "active", "tmp"]) assert.deepEqual(await filesUnder(join(t.root, "snapshots", "overlayfs", d)), [], `snapshots/${d}`);
}

test("a full disk during pull and import", { timeout: 600_000 }, async (t) => {
  const reg = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "enospc-"));
  const stores: Tsctr[] = [];
  const store = async () => {
    const s = await makeTsctr();
    stores.push(s);
    return s;
  };
  try {
    // 3 × 12 MiB of random data: 36 MiB compressed, as much again unpacked, on a 24 MiB disk.
    await pushLayeredImage(reg.host, "enospc", "1", await randomLayers("enospc", 3, 12 * MB));
    const ref = `${reg.host}/enospc:1`;

    const variants: Array<[string, string[]]> = [
      ["in the main thread", ["--unpack-workers", "0"]],
      ["on an extraction worker", ["--unpack-workers", "1"]],
      // No compressed copy: the disk fills while files are extracted, never in the content store.
      ["with --discard-blobs", ["--discard-blobs", "--unpack-workers", "0"]],
    ];
    for (const [how, workers] of variants) {
      await t.test(`pull ${how}: exit 19, store as before; then it fits`, async () => {
        const s = await store();
        await mountRoot(s, 24);
        try {
          const r = await s(["pull", "-q", "--plain-http", ...workers, ref]);
          assertDiskFull(r, /pull [^:]+:\d+\/enospc:1/, s);
          await assertEmptyStore(s);
          // The same store, on a disk grown in place: the pull succeeds.
          await growRoot(s, 160);
          ok(await s(["pull", "-q", "--plain-http", ...workers, ref]), "pull with room");
          const check = await s(["check", "--full"]);
          assert.equal(check.stdout, "", `check: ${check.stdout}${check.stderr}`);
        } finally {
          await unmountRoot(s);
        }
      });
    }

    const archive = join(work, "enospc.tar");
    await t.test("images import of an archive larger than the disk: exit 19, store as before; then it fits", async () => {
      const src = await store();
      ok(await src(["pull", "-q", "--plain-http", ref]), "pull");
      ok(await src(["images", "export", archive, ref]), "export");
      assert.ok((await stat(archive)).size > 36 * MB);
      const s = await store();
      await mountRoot(s, 24);
      try {
        assertDiskFull(await s(["images", "import", archive]), new RegExp(`import ${escapeRe(archive)}`), s);
        await assertEmptyStore(s);
        await growRoot(s, 160);
        ok(await s(["images", "import", archive]), "import with room");
        assert.equal(ok(await s(["images", "ls", "-q"]), "images ls").trim(), ref);
        const check = await s(["check", "--full"]);
        assert.equal(check.stdout, "", `check: ${check.stdout}${check.stderr}`);
      } finally {
        await unmountRoot(s);
      }
    });

    await t.test("a prune running all through an import removes none of its blobs", async () => {
      const s = await store();
      const importing = s(["images", "import", archive]);
      let done = false;
      void importing.finally(() => (done = true));
      let prunes = 0;
      while (!done) {
        ok(await s(["prune"]), "prune");
        prunes++;
      }
      ok(await importing, "import during prunes");
      assert.ok(prunes >= 2, `prune ran ${prunes} times`);
      const out = ok(await s(["run", "--rm", ref, "enospc-prune", "sh", "-c", "cat /data/enospc-0 /data/enospc-1 /data/enospc-2 | wc -c"]), "run");
      assert.equal(out.trim(), String(36 * MB));
      const check = await s(["check", "--full"]);
      assert.equal(check.stdout, "", `check: ${check.stdout}${check.stderr}`);
    });
  } finally {
    for (const s of stores) {
      await execFile("umount", [s.root]).catch(() => {});
      await s.cleanup();
    }
    await rm(work, { recursive: true, force: true });
    await reg.stop();
  }
});
