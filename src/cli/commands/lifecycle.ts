/**
 * Docker's habits at the top level: `ps`, `logs`, `exec`, `start`, `stop`, `kill`, `rm`. Each parses its
 * arguments, calls client/tasks.ts (or logs.ts, containers.ts) and renders the result.
 */
import { Command, Option } from "commander";
import process from "node:process";
import { once } from "node:events";
import { contextFrom } from "../options.ts";
import { keyValue, nonNegativeInteger } from "../parse.ts";
import { table } from "../render.ts";
import { commandText, statusText } from "../status.ts";

/** `ps [-a] [-q] [--format table|json]`. */
export function psCommand(): Command {
  return new Command("ps")
    .description("list running containers (all with -a)")
    .option("-a, --all", "show every container, not only running ones", false)
    .option("-q, --quiet", "print only the IDs", false)
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (opts: { all: boolean; quiet: boolean; format: string }, cmd: Command) => {
      const { listContainerStatuses } = await import("../../client/tasks.ts");
      const list = (await listContainerStatuses(contextFrom(cmd))).filter((s) => opts.all || s.status === "running" || s.status === "paused");
      if (opts.quiet) return void process.stdout.write(list.map((s) => `${s.record.id}\n`).join(""));
      if (opts.format === "json") {
        const lines = list.map((s) =>
          JSON.stringify({
            ID: s.record.id,
            Image: s.record.image,
            Command: s.command.join(" "),
            CreatedAt: s.record.createdAt,
            State: s.status,
            Status: statusText(s),
            Pid: s.pid ?? 0,
            StartedAt: s.startedAt ?? null,
            ExitCode: s.exit?.status ?? null,
            ExitedAt: s.exit?.exitedAt ?? null,
            Labels: s.record.labels,
            RestartCount: s.restarts,
          }),
        );
        return void process.stdout.write(lines.map((l) => `${l}\n`).join(""));
      }
      const rows = [["CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "PID", "RESTARTS"]];
      for (const s of list) rows.push([s.record.id, s.record.image, commandText(s.command), statusText(s), s.pid ? String(s.pid) : "-", String(s.restarts)]);
      process.stdout.write(table(rows));
    });
}

/** Writes to a stream, waiting when its buffer is full (a slow reader of `logs` holds the pace). */
async function writeOut(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}

/** `logs [-f] [--tail N] [-t] ID`. */
export function logsCommand(): Command {
  return new Command("logs")
    .description("print a detached container's output (stdout to stdout, stderr to stderr)")
    .argument("<id>", "container ID")
    .option("-f, --follow", "keep printing new output until the container ends", false)
    .option("-n, --tail <N>", "only the last N lines", nonNegativeInteger)
    .option("-t, --timestamps", "prefix each line with its time (RFC 3339, UTC)", false)
    .action(async (id: string, opts: { follow: boolean; tail?: number; timestamps: boolean }, cmd: Command) => {
      const { containerLogs } = await import("../../client/logs.ts");
      for await (const r of await containerLogs(contextFrom(cmd), id, { follow: opts.follow, tail: opts.tail })) {
        const text = `${opts.timestamps ? `${r.time} ` : ""}${r.text}${r.partial ? "" : "\n"}`;
        await writeOut(r.stream === "stderr" ? process.stderr : process.stdout, text);
      }
    });
}

/** `exec [-t] [-i] [--env K=V]… [--cwd DIR] [--user U] ID CMD [ARG…]`: exits with the process's status. */
export function execCommand(): Command {
  return new Command("exec")
    .description("run a command in a running container")
    .argument("<id>", "container ID")
    .argument("<cmd...>", "command and arguments")
    .option("-t, --tty", "allocate a terminal", false)
    .option("-i, --interactive", "keep stdin attached", false)
    .option("-e, --env <K=V>", "set an environment variable (repeatable)", keyValue, [] as string[])
    .option("-w, --cwd <dir>", "working directory inside the container")
    .option("-u, --user <user>", "uid[:gid] or user name from the container's /etc/passwd")
    .passThroughOptions()
    .action(async (id: string, args: string[], opts: { tty: boolean; interactive: boolean; env: string[]; cwd?: string; user?: string }, cmd: Command) => {
      const { execInContainer } = await import("../../client/tasks.ts");
      const ctx = contextFrom(cmd);
      process.exitCode = await execInContainer(ctx, id, { args, tty: opts.tty, interactive: opts.interactive, env: opts.env, cwd: opts.cwd, user: opts.user });
      await ctx.close();
    });
}

/** Runs `fn` for each ID in turn and prints each ID once done (Docker's output for stop/kill/rm/start). */
async function eachId(cmd: Command, ids: string[], fn: (ctx: ReturnType<typeof contextFrom>, id: string) => Promise<void>): Promise<void> {
  const ctx = contextFrom(cmd);
  for (const id of ids) {
    await fn(ctx, id);
    process.stdout.write(`${id}\n`);
  }
  await ctx.close();
}

/** `start ID…`: starts stopped containers again, detached. */
export function startCommand(): Command {
  return new Command("start")
    .description("start stopped containers again, detached")
    .argument("<id...>", "container IDs")
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      const { startContainer } = await import("../../client/tasks.ts");
      await eachId(cmd, ids, async (ctx, id) => void (await startContainer(ctx, id)));
    });
}

/** `stop [-t SECONDS] ID…`: SIGTERM, then SIGKILL after the timeout. */
export function stopCommand(): Command {
  return new Command("stop")
    .description("stop running containers (SIGTERM, then SIGKILL after the timeout)")
    .argument("<id...>", "container IDs")
    .option("-t, --time <seconds>", "seconds to wait before SIGKILL", nonNegativeInteger, 10)
    .action(async (ids: string[], opts: { time: number }, cmd: Command) => {
      const { stopContainer } = await import("../../client/tasks.ts");
      await eachId(cmd, ids, (ctx, id) => stopContainer(ctx, id, opts.time));
    });
}

/** `kill [-s SIG] [--all] ID…`; `defaultSignal` is KILL for Docker's `kill`, TERM for ctr's `tasks kill`. */
export function killCommand(defaultSignal = "KILL"): Command {
  return new Command("kill")
    .description("send a signal to running containers")
    .argument("<id...>", "container IDs")
    .option("-s, --signal <signal>", "signal name or number", defaultSignal)
    .option("-a, --all", "signal every process in the container, not only its init", false)
    .action(async (ids: string[], opts: { signal: string; all: boolean }, cmd: Command) => {
      const { killContainer } = await import("../../client/tasks.ts");
      await eachId(cmd, ids, (ctx, id) => killContainer(ctx, id, opts.signal, { all: opts.all }));
    });
}

/** `rm [-f] ID…`: removes stopped containers (running ones too with -f). */
export function rmCommand(): Command {
  return new Command("rm")
    .description("remove containers (with -f also running ones, killed first)")
    .argument("<id...>", "container IDs")
    .option("-f, --force", "kill a running container before removing it", false)
    .action(async (ids: string[], opts: { force: boolean }, cmd: Command) => {
      const { removeContainer } = await import("../../client/containers.ts");
      await eachId(cmd, ids, (ctx, id) => removeContainer(ctx, id, { force: opts.force }));
    });
}

/** `events [--past]`: one JSON line per container event (create, start, exit, delete) until interrupted. */
export function eventsCommand(): Command {
  return new Command("events")
    .description("print container events as JSON lines as they happen (every namespace)")
    .option("--past", "print the recorded events first", false)
    .action(async (opts: { past: boolean }, cmd: Command) => {
      const { watchEvents } = await import("../../client/events.ts");
      for await (const e of watchEvents(contextFrom(cmd), { past: opts.past })) await writeOut(process.stdout, JSON.stringify(e) + "\n");
    });
}
