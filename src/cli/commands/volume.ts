/** `tsctr volume ls|create|rm`: named volumes under --root, shared by the containers that mount them. */
import { Command } from "commander";
import { withContext } from "../options.ts";
import { table } from "../render.ts";

export function volumeCommand(): Command {
  const c = new Command("volume").alias("volumes").description("manage named volumes");
  c.command("ls")
    .alias("list")
    .description("list volumes and the containers that use them")
    .option("-q, --quiet", "print only the names", false)
    .action(async (opts: { quiet: boolean }, cmd: Command) => {
      const { listVolumes } = await import("../../client/volumes.ts");
      const list = await withContext(cmd, (ctx) => listVolumes(ctx));
      if (opts.quiet) return void process.stdout.write(list.map((v) => `${v.name}\n`).join(""));
      const rows = [["VOLUME", "MOUNTPOINT", "USED BY"]];
      for (const v of list) rows.push([v.name, v.mountpoint, v.usedBy.join(",")]);
      process.stdout.write(table(rows));
    });
  c.command("create")
    .description("create volumes (an existing one is left as it is)")
    .argument("<name...>", "volume names")
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      const { createVolume } = await import("../../client/volumes.ts");
      await withContext(cmd, async (ctx) => {
        for (const name of names) {
          await createVolume(ctx, name);
          process.stdout.write(`${name}\n`);
        }
      });
    });
  c.command("rm")
    .alias("remove")
    .description("remove volumes and their data (refused while a container uses one)")
    .argument("<name...>", "volume names")
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      const { removeVolume } = await import("../../client/volumes.ts");
      await withContext(cmd, async (ctx) => {
        for (const name of names) {
          await removeVolume(ctx, name);
          process.stdout.write(`${name}\n`);
        }
      });
    });
  return c;
}
