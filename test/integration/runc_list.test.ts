/**
 * runc list while containers come and go: runc reads the root's directory, then stats each entry, and fails
 * as a whole when one is removed in between (seen in a test run: `tsctr ps` failed while the daemon brought
 * containers back). Runc.list then takes the list entry by entry; a real container in the same root must
 * be in every list, whichever way it was taken.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Runc, findRunc, generateSpec, writeBundle } from "../../src/runtime/mod.ts";
import type { ImageConfig } from "../../src/images/types.ts";

const BUSYBOX = "/bin/busybox";
const skip = process.getuid?.() !== 0 ? "needs root" : !existsSync(BUSYBOX) ? `needs a static busybox at ${BUSYBOX}` : false;

test("runc list succeeds while container directories appear and vanish under its root", { skip, timeout: 120_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), "tsctr-runc-list-"));
  const runcRoot = join(root, "runc");
  await mkdir(runcRoot);
  const binary = await findRunc();
  const runc = new Runc({ binary, root: runcRoot });
  // One real container, created (its init waits to be started), in the root that churns.
  const bundle = join(root, "bundle");
  await mkdir(join(bundle, "rootfs", "bin"), { recursive: true });
  await copyFile(BUSYBOX, join(bundle, "rootfs", "bin", "busybox"));
  await chmod(join(bundle, "rootfs", "bin", "busybox"), 0o755);
  await symlink("busybox", join(bundle, "rootfs", "bin", "sleep"));
  const id = `list-real-${process.pid}`;
  const image: ImageConfig = { architecture: "amd64", os: "linux", config: { Cmd: ["sleep", "100"] }, rootfs: { type: "layers", diff_ids: [] } };
  await writeBundle(bundle, generateSpec({ id, namespace: "runc-list-test", image }));
  // runc's init keeps the stdio it is given until it is started: nothing to read, so nothing to wait on.
  const creating = spawn(binary, ["--root", runcRoot, "create", "--bundle", bundle, id], { stdio: "ignore" });
  const [code] = (await once(creating, "exit")) as [number | null];
  assert.equal(code, 0, "runc create");
  // Another process creates and removes directories in the root as fast as it can (as runc does for
  // containers being created and deleted); against plain `runc list` this fails about 1 call in 12 here.
  const churn = spawn(process.execPath, [
    "-e",
    `const fs = require("node:fs"); for (let i = 0; ; i++) { const d = ${JSON.stringify(runcRoot)} + "/c" + (i % 8); try { fs.mkdirSync(d); fs.rmdirSync(d); } catch {} }`,
  ], { stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 100; i++) {
      const list = await runc.list();
      assert.deepEqual(list.map((e) => [e.id, e.status, e.bundle]), [[id, "created", bundle]], `list ${i}`);
      assert.ok(list[0]!.pid > 0, `list ${i}: the init's pid`);
    }
  } finally {
    churn.kill("SIGKILL");
    await new Promise((r) => churn.once("close", r));
    await runc.delete(id, { force: true }).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
});
