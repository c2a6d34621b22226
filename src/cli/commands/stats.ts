/** `tsctr stats [--no-stream] [--format json] ID…`: CPU, memory and pids of running containers. */
import { Command, Option } from "commander";
import { contextFrom } from "../options.ts";
import { humanSize, table } from "../render.ts";

export function statsCommand(): Command {
  return new Command("stats")
    .description("show CPU, memory and process counts of running containers (from their cgroups)")
    .argument("<id...>", "container IDs")
    .option("--no-stream", "print one reading and exit")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(async (ids: string[], opts: { stream: boolean; format: "table" | "json" }, cmd: Command) => {
      const { containerStats } = await import("../../client/stats.ts");
      const ctx = contextFrom(cmd);
      const clear = opts.stream && opts.format === "table" && process.stdout.isTTY;
      for await (const sample of containerStats(ctx, ids, { stream: opts.stream })) {
        if (opts.format === "json") {
          process.stdout.write(sample.map((s) => JSON.stringify(s) + "\n").join(""));
          continue;
        }
        const rows = [["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]];
        for (const s of sample) {
          rows.push([s.id, `${s.cpuPercent.toFixed(2)}%`, `${humanSize(s.memoryUsage)} / ${humanSize(s.memoryLimit)}`, `${s.memoryPercent.toFixed(2)}%`, s.pidsLimit === undefined ? `${s.pids}` : `${s.pids} / ${s.pidsLimit}`]);
        }
        process.stdout.write((clear ? "\x1b[2J\x1b[H" : "") + table(rows));
      }
      await ctx.close();
    });
}
