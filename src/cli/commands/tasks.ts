/** `tsctr tasks ls|start|kill|ps|pause|resume|exec`, ctr's task group, on the same client functions as ps/exec/kill. */
import { Command } from "commander";
import process from "node:process";
import { contextFrom } from "../options.ts";
import { table } from "../render.ts";
import { execCommand, killCommand, startCommand } from "./lifecycle.ts";

/** A command taking one container ID that calls `fn` and prints nothing. */
function simple(name: string, description: string, fn: (mod: typeof import("../../client/tasks.ts"), ctx: ReturnType<typeof contextFrom>, id: string) => Promise<void>): Command {
  return new Command(name)
    .description(description)
    .argument("<id>", "container ID")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      await fn(await import("../../client/tasks.ts"), ctx, id);
      await ctx.close();
    });
}

/** The `tasks` group: ctr's task verbs on the same client functions as the top-level commands. */
export function tasksCommand(): Command {
  const t = new Command("tasks").alias("task").alias("t").description("manage tasks (the running processes of containers)").enablePositionalOptions();
  t.command("ls")
    .alias("list")
    .description("list tasks")
    .action(async (_o: unknown, cmd: Command) => {
      const { listContainerStatuses } = await import("../../client/tasks.ts");
      const rows = [["TASK", "PID", "STATUS"]];
      for (const s of await listContainerStatuses(contextFrom(cmd))) {
        if (s.status === "created") continue;
        rows.push([s.record.id, String(s.pid ?? 0), s.status.toUpperCase()]);
      }
      process.stdout.write(table(rows));
    });
  t.addCommand(startCommand().description("start a container's task again, detached"));
  t.addCommand(killCommand("TERM"));
  t.command("ps")
    .description("list the processes of a task (host PIDs)")
    .argument("<id>", "container ID")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { containerProcesses } = await import("../../client/tasks.ts");
      const rows = [["PID"]];
      for (const pid of await containerProcesses(contextFrom(cmd), id)) rows.push([String(pid)]);
      process.stdout.write(table(rows));
    });
  t.addCommand(simple("pause", "freeze every process of a task", (m, ctx, id) => m.pauseContainer(ctx, id, true)));
  t.addCommand(simple("resume", "thaw a paused task", (m, ctx, id) => m.pauseContainer(ctx, id, false)));
  t.addCommand(execCommand());
  return t;
}
