/**
 * The container lifecycle end to end, from source, with real runc: detached containers under the monitor
 * (surviving the CLI), logs (both streams, --tail, -f, rotation), exec, stop/kill/start/rm, recorded exit
 * statuses, and the one-line errors for unknown IDs, duplicate IDs and stopped tasks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startRegistry } from "../helpers/registry.ts";
import { pushBusyboxImage } from "../helpers/oci_builder.ts";
import { makeTsctr, DENO_SOURCE, NODE_SOURCE, REPO, type Tsctr } from "../helpers/tsctr.ts";
import { spawn } from "node:child_process";
import type { Buffer } from "node:buffer";
import { execFile } from "../../src/platform/exec.ts";

import { assertError, type Result } from "../helpers/assert.ts";

interface PsEntry {
  ID: string;
  State: string;
  Status: string;
  Pid: number;
  ExitCode: number | null;
  ExitedAt: string | null;
  Command: string;
  Labels: Record<string, string>;
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
}

async function psEntry(tsctr: Tsctr, id: string): Promise<PsEntry | undefined> {
  const r = ok(await tsctr(["ps", "-a", "--format", "json"]));
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as PsEntry).find((e) => e.ID === id);
}

/** Polls `ps -a` until the container has an exit code (or the time is up). */
async function waitExited(tsctr: Tsctr, id: string, ms = 20_000): Promise<PsEntry> {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = await psEntry(tsctr, id);
    if (e && e.State === "stopped" && e.ExitCode !== null) return e;
    if (Date.now() > deadline) assert.fail(`container ${id} did not exit in ${ms} ms: ${JSON.stringify(e)}`);
    await sleep(200);
  }
}

/** Polls the log until `re` matches stdout (a detached container has started printing). */
async function waitLog(tsctr: Tsctr, id: string, re: RegExp, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test((await tsctr(["logs", id])).stdout)) {
    if (Date.now() > deadline) assert.fail(`log of ${id} never matched ${re}`);
    await sleep(200);
  }
}

/** cgroup directories of container `id` on any hierarchy (v1 controllers and the unified one). */
async function cgroupDirs(id: string): Promise<string[]> {
  const r = await execFile("find", ["/sys/fs/cgroup", "-maxdepth", "5", "-type", "d", "-path", `*/tsctr/default/${id}`]);
  return r.stdout.split("\n").filter(Boolean);
}

test("container lifecycle with the monitor", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  const ref = `${reg.host}/busybox:lc`;
  const started: string[] = [];
  const runD = async (id: string, ...args: string[]) => {
    started.push(id);
    return tsctr(["run", "-d", ...args.slice(0, args.indexOf("--")), ref, id, ...args.slice(args.indexOf("--") + 1)]);
  };
  try {
    await pushBusyboxImage(reg.host, "busybox", "lc", "amd64");
    ok(await tsctr(["pull", "--plain-http", ref]));

    await t.test("run -d prints the ID and returns; the container outlives the CLI under its monitor", async () => {
      const before = Date.now();
      const r = ok(await runD("lc-sleeper", "--", "sh", "-c", "echo started; exec sleep 1000"));
      assert.equal(r.stdout, "lc-sleeper\n");
      assert.ok(Date.now() - before < 20_000);
      await waitLog(tsctr, "lc-sleeper", /started/);
      const e = await psEntry(tsctr, "lc-sleeper");
      assert.equal(e?.State, "running");
      assert.match(e!.Status, /^Up (Less than a second|\d+ seconds?)$/);
      assert.ok(e!.Pid > 0 && existsSync(`/proc/${e!.Pid}`), "the init process exists");
      // Its parent is the monitor, a small static program (not node), detached from every tsctr process.
      const ppid = Number(/PPid:\s+(\d+)/.exec(await readFile(`/proc/${e!.Pid}/status`, "utf8"))![1]);
      assert.match(await readFile(`/proc/${ppid}/comm`, "utf8"), /^tsctr-monitor/);
      const table = ok(await tsctr(["ps"])).stdout;
      assert.match(table, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+STATUS\s+PID\s+RESTARTS\n/);
      assert.match(table, /lc-sleeper\s+\S+busybox:lc\s+"sh -c echo started;…"\s+Up /);
      assert.match(ok(await tsctr(["tasks", "ls"])).stdout, new RegExp(`lc-sleeper\\s+${e!.Pid}\\s+RUNNING`));
      assert.ok(ok(await tsctr(["tasks", "ps", "lc-sleeper"])).stdout.includes(String(e!.Pid)));
    });

    await t.test("a second container with the same ID is AlreadyExists (12)", async () => {
      assertError(await tsctr(["run", "-d", ref, "lc-sleeper", "true"]), "AlreadyExists", /container "lc-sleeper": already exists/);
    });

    await t.test("exec runs inside (hostname, PID namespace), with --env, --cwd, --user, and returns its status", async () => {
      const r = await tsctr(["exec", "lc-sleeper", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 3"]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, "lc-sleeper\nsleep 1000 \n");
      const u = ok(await tsctr(["exec", "--env", "GREETING=hi", "--cwd", "/tmp", "--user", "65534:65534", "lc-sleeper", "sh", "-c", 'echo "$GREETING $(id -u):$(id -g) $PWD"']));
      assert.equal(u.stdout, "hi 65534:65534 /tmp\n");
      const viaTasks = await tsctr(["tasks", "exec", "lc-sleeper", "sh", "-c", "exit 4"]);
      assert.equal(viaTasks.code, 4);
    });

    await t.test("pause and resume freeze and thaw the task", async () => {
      ok(await tsctr(["tasks", "pause", "lc-sleeper"]));
      assert.equal((await psEntry(tsctr, "lc-sleeper"))?.State, "paused");
      ok(await tsctr(["tasks", "resume", "lc-sleeper"]));
      assert.equal((await psEntry(tsctr, "lc-sleeper"))?.State, "running");
    });

    await t.test("logs keep stdout and stderr apart; --tail and --timestamps", async () => {
      ok(await runD("lc-logs", "--", "sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; printf partial"));
      await waitExited(tsctr, "lc-logs");
      const all = ok(await tsctr(["logs", "lc-logs"]));
      assert.equal(all.stdout, "out1\nout2\npartial");
      assert.equal(all.stderr, "err1\n");
      const tail = ok(await tsctr(["logs", "--tail", "2", "lc-logs"]));
      assert.equal(tail.stdout, "out2\npartial");
      assert.equal(tail.stderr, "");
      const ts = ok(await tsctr(["logs", "--timestamps", "--tail", "3", "lc-logs"]));
      assert.match(ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err1\n$/);
    });

    await t.test("logs -f prints new lines as they come and returns when the container ends", async () => {
      ok(await runD("lc-follow", "--", "sh", "-c", "for i in 1 2 3 4; do echo tick$i; sleep 0.5; done; exit 2"));
      const began = Date.now();
      const r = await Promise.race([tsctr(["logs", "-f", "lc-follow"]), sleep(30_000).then(() => assert.fail("logs -f did not return"))]);
      assert.equal(ok(r).stdout, "tick1\ntick2\ntick3\ntick4\n");
      assert.ok(Date.now() - began >= 1000, "it waited for the later lines");
      assert.equal((await waitExited(tsctr, "lc-follow")).ExitCode, 2);
    });

    await t.test("rotation caps the log: --log-max-size 4k keeps 3 files of at most 4 KiB, newest lines last", async () => {
      ok(await runD("lc-rotate", "--log-max-size", "4k", "--", "sh", "-c", "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done"));
      await waitExited(tsctr, "lc-rotate");
      const dir = join(tsctr.root, "tasks", "default", "lc-rotate");
      const logs = (await readdir(dir)).filter((n) => n.startsWith("container.log")).sort();
      assert.deepEqual(logs, ["container.log", "container.log.1", "container.log.2"]);
      for (const n of logs) assert.ok((await stat(join(dir, n))).size <= 4096, `${n} is at most 4 KiB`);
      const lines = ok(await tsctr(["logs", "lc-rotate"])).stdout.trim().split("\n");
      assert.ok(lines.length > 50 && lines.length < 200, `kept ${lines.length} lines`);
      assert.equal(lines.at(-1), "line-2000-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
      const first = Number(lines[0]!.split("-")[1]);
      lines.forEach((l, i) => assert.equal(l, `line-${first + i}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`));
    });

    await t.test("the exit status is recorded when the container ends by itself; start runs it again", async () => {
      ok(await runD("lc-exit", "--restart", "on-failure:3", "--", "sh", "-c", "echo run; sleep 0.5; exit 7"));
      const e = await waitExited(tsctr, "lc-exit");
      assert.equal(e.ExitCode, 7);
      assert.match(e.Status, /^Exited \(7\) (Less than a second|\d+ seconds?) ago$/);
      assert.equal(e.Labels["tsctr.restart"], "on-failure:3");
      assertError(await tsctr(["exec", "lc-exit", "true"]), "FailedPrecondition", /exec in container "lc-exit": not running \(stopped\)/);
      assertError(await tsctr(["kill", "lc-exit"]), "FailedPrecondition", /not running/);
      assert.equal(ok(await tsctr(["start", "lc-exit"])).stdout, "lc-exit\n");
      const deadline = Date.now() + 20_000;
      let again = await waitExited(tsctr, "lc-exit");
      while (again.ExitedAt === e.ExitedAt && Date.now() < deadline) again = await waitExited(tsctr, "lc-exit");
      assert.ok(again.ExitedAt! > e.ExitedAt!, "a second exit was recorded");
      assert.equal(again.ExitCode, 7);
      assert.equal(ok(await tsctr(["logs", "lc-exit"])).stdout, "run\nrun\n");
    });

    await t.test("stop escalates to SIGKILL for a process that ignores SIGTERM (137), and is quick when it exits", async () => {
      ok(await runD("lc-stubborn", "--", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"));
      await waitLog(tsctr, "lc-stubborn", /ready/);
      const began = Date.now();
      assert.equal(ok(await tsctr(["stop", "-t", "1", "lc-stubborn"])).stdout, "lc-stubborn\n");
      const took = Date.now() - began;
      assert.ok(took >= 1000 && took < 15_000, `stop took ${took} ms`);
      const e = (await psEntry(tsctr, "lc-stubborn"))!;
      assert.equal(e.ExitCode, 137);
      assert.match(e.Status, /^Exited \(137\)/);
      assert.ok(existsSync(join(tsctr.root, "tasks", "default", "lc-stubborn", "stopped")), "recorded as an explicit stop");

      ok(await runD("lc-polite", "--", "sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done"));
      await waitLog(tsctr, "lc-polite", /ready/);
      ok(await tsctr(["stop", "-t", "20", "lc-polite"]));
      assert.equal((await psEntry(tsctr, "lc-polite"))?.ExitCode, 0);
      assert.equal(ok(await tsctr(["logs", "lc-polite"])).stdout, "ready\nbye\n");
    });

    await t.test("kill -s delivers the named signal", async () => {
      ok(await runD("lc-signal", "--", "sh", "-c", "trap 'echo got-usr1; exit 5' USR1; echo ready; while true; do sleep 0.1; done"));
      await waitLog(tsctr, "lc-signal", /ready/);
      assert.equal(ok(await tsctr(["kill", "-s", "USR1", "lc-signal"])).stdout, "lc-signal\n");
      assert.equal((await waitExited(tsctr, "lc-signal")).ExitCode, 5);
      assert.match(ok(await tsctr(["logs", "lc-signal"])).stdout, /got-usr1/);
      assertError(await tsctr(["kill", "-s", "NOPE", "lc-signal"]), "InvalidArgument", /invalid signal "NOPE"/);
    });

    await t.test("rm of a running container fails 13 without -f; with -f it leaves no bundle, mount, cgroup or record", async () => {
      const pid = (await psEntry(tsctr, "lc-sleeper"))!.Pid;
      assert.ok((await cgroupDirs("lc-sleeper")).length > 0, "the running container has a cgroup");
      assertError(await tsctr(["rm", "lc-sleeper"]), "FailedPrecondition", /container "lc-sleeper": still running; stop it first or use rm -f/);
      assert.equal((await psEntry(tsctr, "lc-sleeper"))?.State, "running");
      assert.equal(ok(await tsctr(["rm", "-f", "lc-sleeper"])).stdout, "lc-sleeper\n");
      assert.equal(await psEntry(tsctr, "lc-sleeper"), undefined);
      assert.ok(!existsSync(`/proc/${pid}`), "the process is gone");
      assert.ok(!existsSync(join(tsctr.state, "default", "lc-sleeper")), "no bundle");
      assert.ok(!existsSync(join(tsctr.root, "tasks", "default", "lc-sleeper")), "no task directory");
      assert.ok(!(await execFile("findmnt", ["-rn", "-o", "TARGET"])).stdout.includes(join(tsctr.state, "default", "lc-sleeper")), "no mount");
      assert.deepEqual(await cgroupDirs("lc-sleeper"), [], "no cgroup");
      assert.notEqual((await execFile("runc", ["--root", join(tsctr.state, "runc", "default"), "state", "lc-sleeper"])).code, 0, "no runc state");
    });

    await t.test("unknown IDs are NotFound (11) for every command", async () => {
      for (const args of [["logs", "lc-nope"], ["exec", "lc-nope", "true"], ["stop", "lc-nope"], ["kill", "lc-nope"], ["rm", "lc-nope"], ["start", "lc-nope"], ["tasks", "ps", "lc-nope"], ["containers", "info", "lc-nope"]]) {
        assertError(await tsctr(args), "NotFound", /container "lc-nope": not found/);
      }
    });

    await t.test("bad run -d options are one-line errors that leave nothing behind", async () => {
      assertError(await tsctr(["run", "-d", "--restart", "sometimes", ref, "lc-bad", "true"]), "InvalidArgument", /invalid restart policy "sometimes"/);
      assertError(await tsctr(["run", "-d", "--log-max-size", "lots", ref, "lc-bad", "true"]), "InvalidArgument", /invalid size "lots"/);
      assertError(await tsctr(["run", "-d", ref, "lc-bad", "/no/such/program"]), "FailedPrecondition", /start container lc-bad: .*no such file/i);
      assert.equal(await psEntry(tsctr, "lc-bad"), undefined);
      assert.ok(!existsSync(join(tsctr.state, "default", "lc-bad")));
      assert.ok(!existsSync(join(tsctr.root, "tasks", "default", "lc-bad")));
    });

    await t.test("containers info shows the record, state and spec; containers rm -f removes", async () => {
      const info = JSON.parse(ok(await tsctr(["containers", "info", "lc-exit"])).stdout) as { status: string; exit: { status: number }; exits: { status: number }[]; stoppedExplicitly: boolean; record: { labels: Record<string, string> }; spec: { process: { args: string[] } } };
      assert.equal(info.status, "stopped");
      assert.equal(info.exit.status, 7);
      assert.deepEqual(info.exits.map((e) => e.status), [7, 7], "the exit history of both runs");
      assert.equal(info.stoppedExplicitly, false);
      assert.equal(info.record.labels["tsctr.restart"], "on-failure:3");
      assert.deepEqual(info.spec.process.args, ["sh", "-c", "echo run; sleep 0.5; exit 7"]);
    });

    await t.test("events: create, start, exit (with status) and delete, recorded and followed, one JSON line each", async () => {
      ok(await runD("lc-ev", "--", "sh", "-c", "exit 3"));
      await waitExited(tsctr, "lc-ev");
      ok(await tsctr(["rm", "lc-ev"]));
      const child = spawn(NODE_SOURCE[0]!, [NODE_SOURCE[1]!, "--root", tsctr.root, "--state", tsctr.state, "events", "--past"], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.on("data", (b: Buffer) => (text += b.toString()));
      const seen = (id: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; id: string; namespace: string; status?: number; time: string }).filter((e) => e.id === id);
      const until = async (id: string, n: number) => {
        const deadline = Date.now() + 20_000;
        while (seen(id).length < n && Date.now() < deadline) await sleep(100);
      };
      try {
        await until("lc-ev", 4);
        assert.deepEqual(seen("lc-ev").map((e) => [e.type, e.status]), [["create", undefined], ["start", undefined], ["exit", 3], ["delete", undefined]]);
        assert.ok(seen("lc-ev").every((e) => e.namespace === "default" && !Number.isNaN(Date.parse(e.time))));
        ok(await tsctr(["run", "--rm", ref, "lc-ev2", "sh", "-c", "exit 4"]).then((r) => ({ ...r, code: r.code === 4 ? 0 : r.code })));
        await until("lc-ev2", 4);
        assert.deepEqual(seen("lc-ev2").map((e) => [e.type, e.status]).sort(), [["create", undefined], ["delete", undefined], ["exit", 4], ["start", undefined]].sort());
      } finally {
        child.kill();
      }
    });

    await t.test("the same commands work on Deno", async () => {
      const deno = (args: string[]) => execFile(DENO_SOURCE[0]!, [...DENO_SOURCE.slice(1), "--root", tsctr.root, "--state", tsctr.state, ...args]);
      started.push("lc-deno");
      assert.equal(ok(await deno(["run", "-d", ref, "lc-deno", "sh", "-c", "echo from-deno; exec sleep 1000"])).stdout, "lc-deno\n");
      await waitLog(tsctr, "lc-deno", /from-deno/);
      assert.equal(ok(await deno(["exec", "lc-deno", "hostname"])).stdout, "lc-deno\n");
      ok(await deno(["stop", "-t", "0", "lc-deno"]));
      assert.equal((await psEntry(tsctr, "lc-deno"))?.ExitCode, 137);
    });
  } finally {
    for (const id of started) await tsctr(["rm", "-f", id]);
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("the monitor is written once under --state, or under --root when --state is mounted noexec", async () => {
  const { installMonitor } = await import("../../src/runtime/monitor/install.ts");
  const { mkdtemp, rm: remove } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const base = await mkdtemp(join(tmpdir(), "tsctr-lc-noexec-"));
  const state = join(base, "state");
  try {
    const first = await installMonitor(state, join(base, "root"));
    assert.match(first, new RegExp(`^${state}/bin/tsctr-monitor-[0-9a-f]{12}$`));
    assert.equal((await stat(first)).mode & 0o777, 0o755);
    assert.equal(await installMonitor(state, join(base, "root")), first, "reused");
    const usage = await execFile(first, []);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^usage: tsctr-monitor TASKDIR/);
    await execFile("mkdir", ["-p", join(base, "noexec")]);
    assert.equal((await execFile("mount", ["-t", "tmpfs", "-o", "noexec", "tmpfs", join(base, "noexec")])).code, 0);
    try {
      const placed = await installMonitor(join(base, "noexec", "state"), join(base, "root"));
      assert.ok(placed.startsWith(join(base, "root", "bin") + "/"), placed);
    } finally {
      await execFile("umount", [join(base, "noexec")]);
    }
  } finally {
    await remove(base, { recursive: true, force: true });
  }
});

const DIST = join(REPO, "dist", "tsctr-linux-amd64");

test("the single executable carries the monitor: run -d, logs, exec, rm -f", { skip: existsSync(DIST) ? false : "needs npm run build" }, async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr([DIST]);
  const ref = `${reg.host}/busybox:lc-exe`;
  try {
    await pushBusyboxImage(reg.host, "busybox", "lc-exe", "amd64");
    ok(await tsctr(["pull", "-q", "--plain-http", ref]));
    assert.equal(ok(await tsctr(["run", "-d", ref, "lc-exe", "sh", "-c", "echo from-sea; exec sleep 1000"])).stdout, "lc-exe\n");
    await waitLog(tsctr, "lc-exe", /from-sea/);
    assert.equal(ok(await tsctr(["exec", "lc-exe", "hostname"])).stdout, "lc-exe\n");
    assert.ok((await readdir(join(tsctr.state, "bin"))).some((n) => n.startsWith("tsctr-monitor-")));
    ok(await tsctr(["rm", "-f", "lc-exe"]));
    assert.equal(await psEntry(tsctr, "lc-exe"), undefined);
  } finally {
    await tsctr(["rm", "-f", "lc-exe"]);
    await tsctr.cleanup();
    await reg.stop();
  }
});
