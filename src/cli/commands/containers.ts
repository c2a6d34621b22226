/** `tsctr containers ls|rm`: container records in the namespace. */
import { Command } from "commander";
import { contextFrom } from "../options.ts";
import { formatOption, json, table, type OutputFormat } from "../render.ts";
import { rmCommand } from "./lifecycle.ts";

export function containersCommand(): Command {
  const c = new Command("containers").alias("container").alias("c").description("manage containers");
  c.command("ls")
    .alias("list")
    .description("list containers")
    .option("-q, --quiet", "print only the IDs", false)
    .addOption(formatOption())
    .action(async (opts: { quiet: boolean; format: OutputFormat }, cmd: Command) => {
      const { listContainers } = await import("../../client/containers.ts");
      const list = await listContainers(contextFrom(cmd));
      if (opts.format === "json") return void process.stdout.write(json(list));
      if (opts.quiet) return void process.stdout.write(list.map((r) => `${r.id}\n`).join(""));
      const rows = [["CONTAINER", "IMAGE", "RUNTIME"]];
      for (const r of list) rows.push([r.id, r.image, r.runtime]);
      process.stdout.write(table(rows));
    });
  c.addCommand(rmCommand().alias("delete"));
  c.command("info")
    .description("print a container's record, task state and spec as JSON")
    .argument("<id>", "container ID")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { containerInfo } = await import("../../client/tasks.ts");
      process.stdout.write(JSON.stringify(await containerInfo(contextFrom(cmd), id), null, 2) + "\n");
    });
  return c;
}
