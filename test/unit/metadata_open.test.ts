import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { openMetadata } from "../../src/metadata/mod.ts";
import { TsctrError } from "../../src/errdefs/mod.ts";

const DB_MODULE = new URL("../../src/metadata/mod.ts", import.meta.url).href;

interface Opener {
  /** Resolves once the process has loaded the module and waits for `go`. */
  ready: Promise<void>;
  go(): void;
  done: Promise<{ code: number | null; stderr: string }>;
}

/**
 * A separate Node process that, on `go`, opens the store at `path`, reads it, records an image and closes it.
 * Loading the module first and starting on a signal makes the openings collide as closely as they can.
 */
function opener(path: string, name: string): Opener {
  const script = `const { openMetadata } = await import(${JSON.stringify(DB_MODULE)});
process.stdout.write("ready\\n");
await new Promise((r) => process.stdin.once("data", r));
const m = await openMetadata(${JSON.stringify(path)});
m.listImages("default");
m.putImage("default", ${JSON.stringify(name)}, { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:${"a".repeat(64)}", size: 1 });
m.close();
process.exit(0);`;
  const child = spawn(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return {
    ready: new Promise((resolve) => child.stdout.once("data", () => resolve())),
    go: () => child.stdin.write("go\n"),
    done: new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr }))),
  };
}

test("several processes opening one new store at once all succeed (the switch to WAL waits its turn)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-meta-"));
  try {
    // Before the switch to WAL waited, 4 runs of 4 failed here (in rounds 0, 4, 22 and one more) with "database is locked".
    for (let round = 0; round < 25; round++) {
      const path = join(dir, `r${round}`, "metadata.db");
      const openers = [0, 1, 2].map((i) => opener(path, `img${i}`));
      await Promise.race([Promise.all(openers.map((o) => o.ready)), ...openers.map((o) => o.done)]);
      for (const o of openers) o.go();
      const results = await Promise.all(openers.map((o) => o.done));
      for (const r of results) assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
      const m = await openMetadata(path);
      try {
        assert.deepEqual(m.listImages("default").map((i) => i.name), ["img0", "img1", "img2"]);
      } finally {
        m.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a new store held locked past the busy timeout is Unavailable naming it, in one line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-meta-"));
  const path = join(dir, "metadata.db");
  const holder = new DatabaseSync(path);
  try {
    holder.exec("BEGIN EXCLUSIVE; CREATE TABLE t (x); ");
    await assert.rejects(openMetadata(path), (e: unknown) =>
      e instanceof TsctrError && e.kind === "Unavailable" && e.message === `open metadata ${path}: another process kept it locked for 10 s`);
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
    await rm(dir, { recursive: true, force: true });
  }
});
