/** `tsctr images ls|rm`: list and remove images in the namespace. */
import { Command } from "commander";
import { contextFrom } from "../options.ts";
import { formatOption, humanSize, json, table, type OutputFormat } from "../render.ts";
import { exportCommand, importCommand } from "./transfer.ts";

export function imagesCommand(): Command {
  const images = new Command("images").alias("image").alias("i").description("manage images");
  images
    .command("ls")
    .alias("list")
    .description("list images")
    .option("-q, --quiet", "print only the image refs", false)
    .addOption(formatOption())
    .action(async (opts: { quiet: boolean; format: OutputFormat }, cmd: Command) => {
      const { listImages } = await import("../../client/images.ts");
      const ctx = contextFrom(cmd);
      const list = await listImages(ctx);
      if (opts.format === "json") return void process.stdout.write(json(list));
      if (opts.quiet) {
        process.stdout.write(list.map((i) => `${i.name}\n`).join(""));
        return;
      }
      const rows = [["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS"]];
      for (const i of list) rows.push([i.name, i.mediaType, i.digest, humanSize(i.size), i.platforms.join(",")]);
      process.stdout.write(table(rows));
    });
  images
    .command("rm")
    .alias("remove")
    .description("remove one or more images by reference")
    .argument("<ref...>", "image references")
    .action(async (refs: string[], _opts: unknown, cmd: Command) => {
      const { removeImages } = await import("../../client/images.ts");
      const removed = await removeImages(contextFrom(cmd), refs);
      process.stdout.write(removed.map((r) => `${r}\n`).join(""));
    });
  images
    .command("tag")
    .description("give an image a new name for the same content")
    .argument("<src>", "the stored image")
    .argument("<dst>", "the new name")
    .option("--force", "replace <dst> when it names another image", false)
    .action(async (src: string, dst: string, opts: { force: boolean }, cmd: Command) => {
      const { tagImage } = await import("../../client/images.ts");
      const ctx = contextFrom(cmd);
      process.stdout.write(`${await tagImage(ctx, src, dst, { force: opts.force })}\n`);
      await ctx.close();
    });
  images.addCommand(exportCommand());
  images.addCommand(importCommand());
  return images;
}
