/**
 * Crash safety, proven rather than argued:
 * - SIGKILL at a random instant of a pull, an `images rm` and a `prune --all` of a multi-layer image (N
 *   rounds, default 21; TSCTR_FAULT_RUNS=200 for more, or `node test/bench/store_faults.ts`): after every
 *   kill `check` reports no damage (never a named but broken image), `check --repair` leaves it clean, and
 *   the next pull and run succeed.
 * - fsync order under strace: every committed blob's data is fsynced before its rename into blobs/, and the
 *   directory after it; every layer is synced (syncfs) before its rename into committed/, and the directory
 *   after it. With --sync none nothing is flushed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startRegistry } from "../helpers/registry.ts";
import { makeTsctr, NODE_SOURCE, type Tsctr } from "../helpers/tsctr.ts";
import { pushLayeredImage, randomLayers } from "../helpers/store_images.ts";
import { execFile } from "../../src/platform/exec.ts";

const RUNS = Number(process.env.TSCTR_FAULT_RUNS ?? 21);

/** Starts the CLI on `t`'s store and SIGKILLs it after `delayMs` (if still running); resolves with its exit and how long it ran. */
function killAfter(t: Tsctr, args: string[], delayMs: number): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const start = Date.now();
  const child = spawn(NODE_SOURCE[0]!, [NODE_SOURCE[1]!, "--root", t.root, "--state", t.state, ...args], { stdio: "ignore" });
  const timer = setTimeout(() => child.kill("SIGKILL"), delayMs);
  return new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - start });
    }),
  );
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = Date.now();
  await fn();
  return Date.now() - start;
}

/** check must never find damage; after --repair it must find nothing at all. */
async function assertNoDamageThenRepair(t: Tsctr, what: string): Promise<void> {
  const check = await t(["check"]);
  assert.equal(check.code, 0, `${what}: check found damage:\n${check.stdout}${check.stderr}`);
  assert.doesNotMatch(check.stdout, /^damaged:/m, what);
  const repair = await t(["check", "--repair"]);
  assert.equal(repair.code, 0, `${what}: repair: ${repair.stdout}${repair.stderr}`);
  assert.doesNotMatch(repair.stdout, /^(damaged|marked):/m, `${what}: repair had to repair damage:\n${repair.stdout}`);
  const after = await t(["check"]);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stdout, "", `${what}: not clean after repair`);
}

test(`SIGKILL at random instants of pull, rm and prune (${RUNS} rounds): no damage, and the next pull and run succeed`, async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    await pushLayeredImage(reg.host, "store-fault", "1", await randomLayers("fault", 3, 2 << 20));
    const ref = `${reg.host}/store-fault:1`;
    const pull = () => tsctr(["pull", "-q", "--plain-http", ref]);
    // How long each operation takes here, so that kills land across its whole duration (plus start-up).
    const durations = {
      pull: await timed(async () => assert.equal((await pull()).code, 0)),
      rm: await timed(async () => assert.equal((await tsctr(["images", "rm", ref])).code, 0)),
      prune: 0,
    };
    assert.equal((await pull()).code, 0);
    durations.prune = await timed(async () => assert.equal((await tsctr(["prune", "--all"])).code, 0));
    const ops = [
      { name: "pull", args: ["pull", "-q", "--plain-http", ref], ms: durations.pull },
      { name: "rm", args: ["images", "rm", ref], ms: durations.rm },
      { name: "prune", args: ["prune", "--all"], ms: durations.prune },
    ];
    const outcomes: string[] = [];
    for (let round = 0; round < RUNS; round++) {
      const op = ops[round % ops.length]!;
      if (op.name !== "pull") assert.equal((await pull()).code, 0, `round ${round}: pull before ${op.name}`);
      const delay = Math.floor(Math.random() * op.ms * 1.1);
      const r = await killAfter(tsctr, op.args, delay);
      outcomes.push(`${op.name}@${delay}ms:${r.signal ?? r.code}`);
      // An operation that finished first ran shorter than its first, colder timing: later kills aim within
      // what it takes now, so that most still land midway.
      if (r.signal === null) op.ms = Math.min(op.ms, r.ms);
      await assertNoDamageThenRepair(tsctr, `round ${round} (${op.name} killed after ${delay} ms)`);
      if (round % 5 === 4 || round === RUNS - 1) {
        const p = await pull();
        assert.equal(p.code, 0, `round ${round}: pull after the kill: ${p.stderr}`);
        const run = await tsctr(["run", "--rm", ref, `store-fault-${round}`, "sh", "-c", "ls /data | wc -l"]);
        assert.equal(run.code, 0, `round ${round}: run: ${run.stderr}`);
        assert.equal(run.stdout.trim(), "3");
      }
    }
    const killed = outcomes.filter((o) => o.endsWith("SIGKILL")).length;
    assert.ok(killed >= RUNS / 2, `most rounds killed the operation midway: ${outcomes.join(" ")}`);
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

interface TraceLine {
  pid: string;
  call: string;
  args: string;
}

async function tracePull(t: Tsctr, ref: string, extra: string[]): Promise<TraceLine[]> {
  const out = join(t.root, "..", "strace.out");
  const r = await execFile("strace", ["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2", "-o", out, NODE_SOURCE[0]!, NODE_SOURCE[1]!, "--root", t.root, "--state", t.state, ...extra, "pull", "-q", "--plain-http", ref]);
  assert.equal(r.code, 0, r.stderr);
  return (await readFile(out, "utf8"))
    .split("\n")
    .map((l) => /^(\d+)\s+(\w+)\((.*)$/.exec(l))
    .flatMap((m) => (m ? [{ pid: m[1]!, call: m[2]!, args: m[3]! }] : []));
}

test("fsync order under strace: data before rename, directory after; --sync none flushes nothing", async (t) => {
  const reg = await startRegistry();
  try {
    const img = await pushLayeredImage(reg.host, "store-fsync", "1", await randomLayers("fsync", 2, 64 << 10));
    const ref = `${reg.host}/store-fsync:1`;

    await t.test("--sync full (default)", async () => {
      const tsctr = await makeTsctr();
      try {
        const lines = await tracePull(tsctr, ref, []);
        const blobsDir = join(tsctr.root, "content", "blobs", "sha256");
        const digests = [img.digest, img.configDescriptor.digest, ...img.manifest.layers.map((l) => l.digest)];
        for (const d of digests) {
          const target = join(blobsDir, d.slice(7));
          const at = lines.findIndex((l) => l.call.startsWith("rename") && l.args.includes(`"${target}"`));
          assert.ok(at >= 0, `a rename into ${target}`);
          const source = /"([^"]+\/ingest\/[0-9a-f]+\/data)"/.exec(lines[at]!.args)?.[1];
          assert.ok(source, `renamed from an ingest: ${lines[at]!.args}`);
          const dataSync = lines.findIndex((l) => /^f(data)?sync$/.test(l.call) && l.args.includes(`<${source}>`));
          assert.ok(dataSync >= 0 && dataSync < at, `fsync of ${source} before its rename (fsync at ${dataSync}, rename at ${at})`);
          const dirSync = lines.findIndex((l, i) => i > at && l.call === "fsync" && l.args.includes(`<${blobsDir}>`));
          assert.ok(dirSync > at, `fsync of ${blobsDir} after the rename of ${d}`);
        }
        const committedDir = join(tsctr.root, "snapshots", "overlayfs", "committed");
        const intoCommitted = new RegExp(`"${committedDir}/[0-9a-f]{64}"`);
        const commits = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.call.startsWith("rename") && intoCommitted.test(l.args));
        assert.equal(commits.length, img.manifest.layers.length, "one rename into committed/ per layer");
        for (const { i } of commits) {
          assert.ok(lines.slice(0, i).some((l) => l.call === "syncfs"), "the layer's filesystem is synced before it is committed");
          assert.ok(lines.slice(i + 1).some((l) => l.call === "fsync" && l.args.includes(`<${committedDir}>`)), "committed/ is fsynced after the rename");
        }
      } finally {
        await tsctr.cleanup();
      }
    });

    await t.test("--sync none", async () => {
      const tsctr = await makeTsctr();
      try {
        const lines = await tracePull(tsctr, ref, ["--sync", "none"]);
        const flushes = lines.filter((l) => /sync/.test(l.call) && l.args.includes(tsctr.root));
        assert.deepEqual(flushes, [], "no fsync of the store's files");
        assert.ok(lines.some((l) => l.call.startsWith("rename")), "renames still make changes atomic");
        const check = await tsctr(["check", "--full"]);
        assert.equal(check.code, 0, check.stdout);
      } finally {
        await tsctr.cleanup();
      }
    });
  } finally {
    await reg.stop();
  }
});
