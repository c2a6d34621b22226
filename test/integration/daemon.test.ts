/**
 * `tsctr daemon` with real runc and the real monitor: restart policies with back-off (on-failure:N, always),
 * explicit stop/kill never undone, a crash restarted, containers brought back after a simulated reboot
 * (daemon stopped, every process killed, rootfs unmounted, <state> wiped), one daemon per root; and
 * `tsctr system install-unit`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startRegistry } from "../helpers/registry.ts";
import { pushBusyboxImage } from "../helpers/oci_builder.ts";
import { makeTsctr, NODE_SOURCE, REPO, type Tsctr } from "../helpers/tsctr.ts";
import { execFile } from "../../src/platform/exec.ts";
import { unmount } from "../../src/mount/mod.ts";
import type { Result } from "../helpers/assert.ts";

interface PsEntry {
  ID: string;
  State: string;
  Pid: number;
  ExitCode: number | null;
  RestartCount: number;
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
}

async function psAll(tsctr: Tsctr): Promise<Map<string, PsEntry>> {
  const r = ok(await tsctr(["ps", "-a", "--format", "json"]));
  return new Map(r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as PsEntry).map((e) => [e.ID, e]));
}

async function psEntry(tsctr: Tsctr, id: string): Promise<PsEntry> {
  const e = (await psAll(tsctr)).get(id);
  assert.ok(e, `container ${id} not listed`);
  return e;
}

/** Polls `ps -a` until `pred` holds for the container (or fails with its last state). */
async function waitFor(tsctr: Tsctr, id: string, pred: (e: PsEntry) => boolean, ms = 20_000): Promise<PsEntry> {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = await psEntry(tsctr, id);
    if (pred(e)) return e;
    if (Date.now() > deadline) assert.fail(`container ${id} never reached the state: ${JSON.stringify(e)}`);
    await sleep(150);
  }
}

const running = (e: PsEntry) => e.State === "running";

/** The restart events recorded for `id`. */
async function restartEvents(tsctr: Tsctr, id: string): Promise<number> {
  const text = await readFile(join(tsctr.state, "events.log"), "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.includes('"type":"restart"') && l.includes(`"id":"${id}"`)).length;
}

interface Daemon {
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then waits for it to exit; resolves with its exit code. */
  stop(): Promise<number | null>;
}

function startDaemon(tsctr: Tsctr, ...flags: string[]): Daemon {
  const child = spawn(NODE_SOURCE[0]!, [NODE_SOURCE[1]!, "--root", tsctr.root, "--state", tsctr.state, "daemon", ...flags], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Waits until the daemon has logged `re` (it has started supervising). */
async function waitDaemonLog(d: Daemon, re: RegExp, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(d.stderr())) {
    if (Date.now() > deadline) assert.fail(`daemon never logged ${re}: ${d.stderr()}`);
    await sleep(100);
  }
}

/**
 * What a reboot leaves: every monitor and container process SIGKILLed (monitors first, so no exit is
 * recorded), runc state deleted, rootfs mounts gone, <state> empty; <root> as it was.
 */
async function simulateReboot(tsctr: Tsctr, ids: string[]): Promise<void> {
  for (const id of ids) {
    const info = JSON.parse(await readFile(join(tsctr.root, "tasks", "default", id, "task.json"), "utf8").catch(() => "{}")) as { monitorPid?: number };
    if (info.monitorPid) {
      try {
        process.kill(info.monitorPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  const runcRoot = join(tsctr.state, "runc", "default");
  for (const id of ids) {
    await execFile("runc", ["--root", runcRoot, "kill", "--all", id, "KILL"]);
    await sleep(100);
    await execFile("runc", ["--root", runcRoot, "delete", "--force", id]);
  }
  const mounts = (await execFile("findmnt", ["-rn", "-o", "TARGET"])).stdout.split("\n").filter((m) => m.startsWith(tsctr.state + "/"));
  for (const m of mounts.reverse()) await unmount(m);
  await rm(tsctr.state, { recursive: true, force: true });
}

test("tsctr daemon supervises restart policies and brings containers back after a reboot", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  const ref = `${reg.host}/busybox:dm`;
  const ids: string[] = [];
  const daemons: Daemon[] = [];
  const runD = async (id: string, restart: string, ...cmd: string[]) => {
    ids.push(id);
    ok(await tsctr(["run", "-d", "--restart", restart, ref, id, ...cmd]));
  };
  const daemon = async () => {
    const d = startDaemon(tsctr);
    daemons.push(d);
    await waitDaemonLog(d, /supervising/);
    return d;
  };
  try {
    await pushBusyboxImage(reg.host, "busybox", "dm", "amd64");
    ok(await tsctr(["pull", "--plain-http", ref]));
    let d = await daemon();

    await t.test("on-failure:2 restarts a failing container exactly twice, then leaves it exited", async () => {
      await runD("dm-fail", "on-failure:2", "sh", "-c", "echo try; exit 1");
      await waitFor(tsctr, "dm-fail", (e) => e.RestartCount === 2 && e.State === "stopped" && e.ExitCode === 1);
      await sleep(1500); // the back-off would have been 400 ms: a third restart would have happened by now
      const e = await psEntry(tsctr, "dm-fail");
      assert.equal(e.RestartCount, 2);
      assert.equal(e.State, "stopped");
      const info = JSON.parse(ok(await tsctr(["containers", "info", "dm-fail"])).stdout) as { restartPolicy: string; restarts: number; exits: unknown[] };
      assert.equal(info.restartPolicy, "on-failure:2");
      assert.equal(info.restarts, 2);
      assert.equal(info.exits.length, 3, "three runs, three recorded exits");
      assert.equal(await restartEvents(tsctr, "dm-fail"), 2);
      assert.equal(ok(await tsctr(["logs", "dm-fail"])).stdout.split("\n").filter((l) => l === "try").length, 3);
      assert.match(ok(await tsctr(["ps", "-a"])).stdout, /^dm-fail\s.*\s2\n/m, "ps shows the restart count");
    });

    await t.test("always restarts a container that exits 0, with a growing back-off", async () => {
      await runD("dm-always0", "always", "sh", "-c", "echo ran; exit 0");
      const e = await waitFor(tsctr, "dm-always0", (x) => x.RestartCount >= 3);
      assert.ok(e.RestartCount >= 3);
      // Stopping it between two runs cancels the pending restart.
      ok(await tsctr(["stop", "dm-always0"]));
      await waitFor(tsctr, "dm-always0", (x) => x.State === "stopped");
      const count = (await psEntry(tsctr, "dm-always0")).RestartCount;
      await sleep(3000);
      const after = await psEntry(tsctr, "dm-always0");
      assert.equal(after.State, "stopped", "an explicit stop between restarts is not undone");
      assert.ok(after.RestartCount <= count + 1, `restarts went on after the stop: ${count} → ${after.RestartCount}`);
    });

    await t.test("an explicit stop or kill is not undone; a crash is restarted", async () => {
      await runD("dm-stop", "unless-stopped", "sleep", "1000");
      await runD("dm-kill", "always", "sleep", "1000");
      await runD("dm-crash", "always", "sleep", "1000");
      ok(await tsctr(["stop", "-t", "1", "dm-stop"]));
      ok(await tsctr(["kill", "dm-kill"]));
      const crashed = await psEntry(tsctr, "dm-crash");
      process.kill(crashed.Pid, "SIGKILL"); // dies without tsctr: a crash
      const back = await waitFor(tsctr, "dm-crash", (e) => running(e) && e.RestartCount === 1);
      assert.notEqual(back.Pid, crashed.Pid);
      await sleep(2000);
      for (const id of ["dm-stop", "dm-kill"]) {
        const e = await psEntry(tsctr, id);
        assert.equal(e.State, "stopped", `${id} was started again`);
        assert.equal(e.RestartCount, 0);
      }
    });

    await t.test("a second daemon on the same root fails with a clear error", async () => {
      const second = await tsctr(["daemon"]);
      assert.equal(second.code, 13, second.stderr);
      assert.match(second.stderr, new RegExp(`another tsctr daemon \\(pid ${d.child.pid}\\) supervises `));
      assert.equal(second.stderr.trim().split("\n").filter((l) => l.startsWith("tsctr: ")).length, 1, second.stderr);
    });

    await t.test("after a reboot: always and unless-stopped run again, no and an explicitly stopped unless-stopped stay down", async () => {
      await runD("dm-rb-always", "always", "sleep", "1000");
      await runD("dm-rb-unless", "unless-stopped", "sleep", "1000");
      await runD("dm-rb-no", "no", "sleep", "1000");
      await runD("dm-rb-stopped", "unless-stopped", "sleep", "1000");
      ok(await tsctr(["stop", "-t", "1", "dm-rb-stopped"]));
      assert.equal(await d.stop(), 0, d.stderr());
      // The daemon's end stops no container.
      for (const id of ["dm-rb-always", "dm-rb-unless", "dm-rb-no", "dm-crash"]) assert.equal((await psEntry(tsctr, id)).State, "running", id);

      await simulateReboot(tsctr, ids);
      const down = await psAll(tsctr);
      for (const id of ["dm-rb-always", "dm-rb-unless", "dm-rb-no"]) assert.notEqual(down.get(id)?.State, "running", id);

      d = await daemon();
      const restarted = d;
      for (const id of ["dm-rb-always", "dm-rb-unless", "dm-crash"]) await waitFor(tsctr, id, running).catch((e: Error) => assert.fail(`${e.message}\ndaemon: ${restarted.stderr()}`));
      // `always` comes back at daemon start even after an explicit stop (Docker's rule); unless-stopped does not.
      await waitFor(tsctr, "dm-kill", running);
      await sleep(2000);
      const after = await psAll(tsctr);
      for (const id of ["dm-rb-no", "dm-rb-stopped", "dm-stop", "dm-fail"]) assert.notEqual(after.get(id)?.State, "running", `${id} should stay down`);
      assert.equal(after.get("dm-rb-always")?.RestartCount, 1);
      // The brought-back container works: exec runs inside it.
      assert.equal(ok(await tsctr(["exec", "dm-rb-unless", "cat", "/proc/1/cmdline"])).stdout.replaceAll("\0", " ").trim(), "sleep 1000");
      // And it is supervised again: a crash is restarted.
      process.kill(after.get("dm-rb-unless")!.Pid, "SIGKILL");
      await waitFor(tsctr, "dm-rb-unless", (e) => running(e) && e.RestartCount === 2);
    });
  } finally {
    for (const d of daemons) await d.stop();
    for (const id of ids) await tsctr(["rm", "-f", id]);
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("daemon --namespace-all supervises every namespace; without it only its own", async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  const ref = `${reg.host}/busybox:dm-ns`;
  const inNs = (ns: string, args: string[]) => tsctr(["--namespace", ns, ...args]);
  const daemons: Daemon[] = [];
  try {
    await pushBusyboxImage(reg.host, "busybox", "dm-ns", "amd64");
    for (const ns of ["dm-ns-a", "dm-ns-b"]) {
      ok(await inNs(ns, ["pull", "--plain-http", ref]));
      ok(await inNs(ns, ["run", "-d", "--restart", "always", ref, "dm-ns-c", "sleep", "1000"]));
    }
    const only = startDaemon(tsctr);
    daemons.push(only);
    await waitDaemonLog(only, /supervising namespace default/);
    const all = await tsctr(["daemon", "--namespace-all"]);
    assert.equal(all.code, 13, "one daemon per root, whatever the namespaces");
    await only.stop();
    const d = startDaemon(tsctr, "--namespace-all");
    daemons.push(d);
    await waitDaemonLog(d, /supervising every namespace/);
    const pids: number[] = [];
    for (const ns of ["dm-ns-a", "dm-ns-b"]) {
      const e = JSON.parse(ok(await inNs(ns, ["ps", "--format", "json"])).stdout) as PsEntry;
      pids.push(e.Pid);
      process.kill(e.Pid, "SIGKILL");
    }
    for (const ns of ["dm-ns-a", "dm-ns-b"]) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const out = ok(await inNs(ns, ["ps", "--format", "json"])).stdout.trim();
        const e = out ? (JSON.parse(out) as PsEntry) : undefined;
        if (e && e.RestartCount === 1 && !pids.includes(e.Pid)) break;
        if (Date.now() > deadline) assert.fail(`${ns}/dm-ns-c was not restarted: ${out} ${d.stderr()}`);
        await sleep(150);
      }
    }
  } finally {
    for (const d of daemons) await d.stop();
    for (const ns of ["dm-ns-a", "dm-ns-b"]) await inNs(ns, ["rm", "-f", "dm-ns-c"]);
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("system install-unit writes a unit that runs the daemon with the global options", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-dm-unit-"));
  const tsctr = await makeTsctr();
  try {
    const path = join(dir, "etc", "tsctr.service");
    const r = ok(await tsctr(["--namespace", "dm-edge", "system", "install-unit", "--path", path, "--namespace-all", "--now"]));
    const unit = await readFile(path, "utf8");
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1];
    assert.equal(exec, `${realpathSync(NODE_SOURCE[0]!)} ${join(REPO, "src", "cli", "main.ts")} --root ${tsctr.root} --state ${tsctr.state} --namespace dm-edge daemon --namespace-all`);
    for (const line of ["Type=simple", "Restart=always", "KillMode=process", "After=network-online.target local-fs.target", "WantedBy=multi-user.target"]) {
      assert.match(unit, new RegExp(`^${line}$`, "m"), line);
    }
    if (!existsSync("/run/systemd/system")) assert.match(r.stdout, /systemd is not running here; run:\n {2}systemctl daemon-reload\n {2}systemctl enable --now tsctr\.service\n/);
  } finally {
    await tsctr.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

const DIST = join(REPO, "dist", "tsctr-linux-amd64");

test("install-unit from the single executable names the executable alone", { skip: existsSync(DIST) ? false : "needs npm run build" }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-dm-unit-"));
  const tsctr = await makeTsctr([DIST]);
  try {
    const path = join(dir, "tsctr.service");
    ok(await tsctr(["system", "install-unit", "--path", path]));
    const exec = /^ExecStart=(.*)$/m.exec(await readFile(path, "utf8"))?.[1];
    assert.equal(exec, `${DIST} --root ${tsctr.root} --state ${tsctr.state} --namespace default daemon`);
  } finally {
    await tsctr.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
