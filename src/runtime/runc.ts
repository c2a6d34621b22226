/**
 * The runc driver: runs a bundle in the foreground and manages runc's state (state, kill, delete, list)
 * through the runc command line, with runc's errors mapped to errdefs kinds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants, rmSync } from "node:fs";
import { access, readdir, readFile, stat } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import { errorOf, isKind, type ErrorKind } from "../errdefs/mod.ts";
import { execFile } from "../platform/exec.ts";

/** Where runc keeps container state unless told otherwise; tsctr passes its own (under --state). */
export const DEFAULT_RUNC_ROOT = "/run/tsctr/runc";

/** How many `runc state` processes a list taken entry by entry runs at once. */
const STATES_AT_ONCE = 8;

/** Signals a foreground `run` forwards to runc, which forwards them to the container's init. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** Places searched after $PATH: runc lives in sbin, which a non-login PATH may lack. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The stdio of `runc run`: passed through ("inherit"), or per-stream choices for the caller to read. */
export type RuncStdio = "inherit" | "pipe" | readonly ("inherit" | "pipe" | "ignore")[];

/** How `Runc.run` connects the container to the caller. */
export interface RuncRunOptions {
  /** Default "inherit": the container reads and writes the caller's own stdin, stdout and stderr. */
  stdio?: RuncStdio;
  /** Must match the spec's process.terminal: runc then puts the caller's terminal in raw mode and proxies it. */
  tty?: boolean;
}

/** A foreground container: the runc process and its exit status (the container's, 128+n for a signal). */
export interface RunningContainer {
  child: ChildProcess;
  exited: Promise<number>;
}

/** `runc state` output (runtime-spec state plus runc's extras). */
export interface RuncState {
  ociVersion: string;
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "paused" | "stopped";
  bundle: string;
  rootfs: string;
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/** One `runc list --format json` entry. */
export interface RuncListEntry {
  id: string;
  pid: number;
  status: RuncState["status"];
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
}

/**
 * Finds an executable `runc` in `searchPath` (default: $PATH, then /usr/local/sbin, /usr/sbin, /sbin).
 * Throws FailedPrecondition with how to install it when there is none.
 */
export async function findRunc(searchPath: string = [process.env.PATH ?? "", ...SBIN_DIRS].join(delimiter)): Promise<string> {
  const explicit = process.env.TSCTR_RUNC;
  if (explicit) {
    try {
      await access(explicit, fsConstants.X_OK);
      return explicit;
    } catch {
      throw errorOf("FailedPrecondition", `runc not found at TSCTR_RUNC=${explicit}: install it (apt-get install runc) or fix the path`);
    }
  }
  for (const dir of searchPath.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "runc");
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw errorOf("FailedPrecondition", "runc not found: install it (apt-get install runc)");
}

/** A process's exit status as a shell reports it: its code, or 128+n when signal n ended it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}

/**
 * Forwards `signals` this process receives to `child` (runc, which passes them to the container's init)
 * until the returned function is called; while installed, those signals no longer end this process.
 * Note: a signal the terminal sends to the whole foreground process group (Ctrl-C without a tty) reaches
 * runc directly as well, so the container may see it twice.
 */
export function forwardSignals(child: ChildProcess, signals: readonly NodeJS.Signals[] = FORWARDED_SIGNALS): () => void {
  const handlers = signals.map((sig) => {
    const handler = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return () => {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  };
}

/** A runc binary plus the state directory (`runc --root`) its containers live in. */
export class Runc {
  readonly binary: string;
  readonly root: string;

  constructor(opts: { binary: string; root?: string }) {
    this.binary = opts.binary;
    this.root = opts.root ?? DEFAULT_RUNC_ROOT;
  }

  /**
   * Starts `runc run --bundle BUNDLE ID` in the foreground. `exited` resolves to the container's exit
   * status once runc ends (runc then removes the container itself). It rejects with FailedPrecondition and
   * runc's message when runc itself failed (cannot start, bad config, command not found in the image);
   * runc has then also printed that message on stderr. A tty needs inherited stdio (runc drives the
   * caller's terminal). runc's log goes to BUNDLE/runc.log.
   */
  run(id: string, bundle: string, opts: RuncRunOptions = {}): RunningContainer {
    const stdio = opts.stdio ?? "inherit";
    if (opts.tty && stdio !== "inherit") throw errorOf("InvalidArgument", `run container ${id}: a terminal needs inherited stdio`);
    const log = join(bundle, "runc.log");
    rmSync(log, { force: true });
    const child = spawn(this.binary, this.args("--log", log, "run", "--bundle", bundle, id), { stdio: stdio as "inherit" | "pipe" | ("inherit" | "pipe" | "ignore")[] });
    const exited = new Promise<number>((resolve, reject) => {
      child.once("error", (err: NodeJS.ErrnoException) => {
        reject(errorOf("FailedPrecondition", `run container ${id}: cannot start ${this.binary}: ${err.code ?? err.message}`, err));
      });
      child.once("close", (code, signal) => {
        const status = exitStatus(code, signal);
        if (status === 0) return resolve(status);
        readFile(log, "utf8").then(
          (text) => {
            const failure = lastMessage(text, true);
            if (failure) reject(errorOf("FailedPrecondition", `run container ${id}: ${failure}`));
            else resolve(status);
          },
          () => resolve(status),
        );
      });
    });
    return { child, exited };
  }

  /** Returns runc's state of container `id`; NotFound when runc has no such container. */
  async state(id: string): Promise<RuncState> {
    return JSON.parse(await this.exec(["state", id], id)) as RuncState;
  }

  /**
   * Lists the containers in this runc root (empty when the root does not exist yet). runc reads the root's
   * directory and then stats each entry, failing as a whole when a container is deleted in between; on that
   * failure the list is taken entry by entry instead (`runc state` of each directory, skipping those gone
   * by then), so a list taken while containers come and go always succeeds.
   */
  async list(): Promise<RuncListEntry[]> {
    try {
      return (JSON.parse(await this.exec(["list", "--format", "json"])) as RuncListEntry[] | null) ?? [];
    } catch (e) {
      if (!this.vanishedDuringList(e)) throw e;
      return await this.listEachEntry();
    }
  }

  /** `list` built from the root's directories by `runc state` of each; a container gone meanwhile is left out. */
  private async listEachEntry(): Promise<RuncListEntry[]> {
    const dirents = await readdir(this.root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [];
      throw e;
    });
    const names = dirents.filter((d) => d.isDirectory()).map((d) => d.name);
    const entries: RuncListEntry[] = [];
    // A few at a time: each is a runc process, and a device may hold many containers.
    for (let i = 0; i < names.length; i += STATES_AT_ONCE) {
      const states = await Promise.all(names.slice(i, i + STATES_AT_ONCE).map((name) =>
        this.state(name).catch((e: unknown) => {
          if (isKind(e, "NotFound")) return undefined;
          throw e;
        })
      ));
      for (const s of states) if (s) entries.push({ id: s.id, pid: s.pid, status: s.status, bundle: s.bundle, rootfs: s.rootfs, created: s.created, owner: s.owner ?? "" });
    }
    return entries;
  }

  /** Whether `err` is runc list tripping over a container directory removed while it listed. */
  private vanishedDuringList(err: unknown): boolean {
    const message = err instanceof Error ? err.message : "";
    return message.includes(`${this.root}/`) && /no such file or directory/i.test(message);
  }

  /**
   * Sends `signal` (name like "SIGTERM"/"TERM" or number) to the container's init, or with `all` to
   * every process in it. NotFound when the container does not exist.
   */
  async kill(id: string, signal: string | number = "SIGTERM", opts: { all?: boolean } = {}): Promise<void> {
    await this.exec(["kill", ...(opts.all ? ["--all"] : []), id, String(signal)], id);
  }

  /**
   * Deletes the container's runc state and cgroup. With `force` a running container is killed first and a
   * missing one is not an error; without it, NotFound for a missing container.
   */
  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.exec(["delete", ...(opts.force ? ["--force"] : []), id], id);
  }

  /**
   * The arguments (after the binary) of `runc run -d` for a monitor to run: the container starts detached
   * with the caller's stdio passed through, runc writes its init's PID to `pidFile`, and its log goes to
   * BUNDLE/runc.log (read back with `runFailure`).
   */
  detachedRunArgs(id: string, bundle: string, pidFile: string): string[] {
    return this.args("--log", join(bundle, "runc.log"), "run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id);
  }

  /** The error runc last logged in BUNDLE/runc.log ("" when there is none). */
  async runFailure(bundle: string): Promise<string> {
    return lastMessage(await readFile(join(bundle, "runc.log"), "utf8").catch(() => ""), true);
  }

  /**
   * Runs a process described by the runtime-spec Process JSON file `processFile` inside running container
   * `id`, in the foreground with inherited stdio (`tty`: on the caller's terminal, which needs inherited
   * stdin). Like `run`, `exited` resolves to the process's exit status.
   */
  execProcess(id: string, processFile: string, opts: { tty?: boolean; stdin?: boolean } = {}): RunningContainer {
    const args = this.args("exec", "--process", processFile, ...(opts.tty ? ["--tty"] : []), id);
    const child = spawn(this.binary, args, { stdio: [opts.stdin || opts.tty ? "inherit" : "ignore", "inherit", "inherit"] });
    const exited = new Promise<number>((resolve, reject) => {
      child.once("error", (err: NodeJS.ErrnoException) => reject(errorOf("FailedPrecondition", `exec in container ${id}: cannot start ${this.binary}: ${err.code ?? err.message}`, err)));
      child.once("close", (code, signal) => resolve(exitStatus(code, signal)));
    });
    return { child, exited };
  }

  /** The PIDs (host's view) of the processes in container `id`. */
  async ps(id: string): Promise<number[]> {
    return (JSON.parse(await this.exec(["ps", "--format", "json", id], id)) as number[] | null) ?? [];
  }

  /** Freezes every process of container `id` (cgroup freezer). */
  async pause(id: string): Promise<void> {
    await this.exec(["pause", id], id);
  }

  /** Thaws a paused container. */
  async resume(id: string): Promise<void> {
    await this.exec(["resume", id], id);
  }

  private args(...rest: string[]): string[] {
    return ["--root", this.root, "--log-format", "json", ...rest];
  }

  /** Runs a runc subcommand to completion; its last logged error becomes a typed error naming `id`. */
  private async exec(rest: string[], id?: string): Promise<string> {
    const r = await execFile(this.binary, this.args(...rest));
    if (r.code === 0) return r.stdout;
    const detail = lastMessage(r.stderr) || `exit status ${r.code}`;
    const kind: ErrorKind = /does not exist/.test(detail) ? "NotFound" : /not running|is paused|cannot delete|is stopped/.test(detail) ? "FailedPrecondition" : "Internal";
    throw errorOf(kind, `runc ${rest[0] ?? ""}${id === undefined ? "" : ` ${id}`}: ${detail}`);
  }
}

/** The last message in runc's log (JSON lines, or plain text); with `errorsOnly`, of level error or fatal. */
function lastMessage(log: string, errorsOnly = false): string {
  const lines = log.trim().split("\n").filter((l) => l.trim() !== "");
  for (const line of lines.reverse()) {
    let entry: { msg?: unknown; level?: unknown };
    try {
      entry = JSON.parse(line) as { msg?: unknown; level?: unknown };
    } catch {
      if (errorsOnly) continue;
      return line.trim();
    }
    if (typeof entry.msg !== "string") continue;
    if (!errorsOnly || entry.level === "error" || entry.level === "fatal") return entry.msg.replace(/^runc run failed: /, "");
  }
  return "";
}
