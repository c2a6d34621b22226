/** `tsctr images export|import`: images to and from archives (OCI layout, Docker archive). */
import { Command, Option } from "commander";
import { errorOf } from "../../errdefs/mod.ts";
import { useStreamingMemoryProfile } from "../../platform/memory_profile.ts";
import { contextFrom } from "../options.ts";

interface PlatformOpts {
  platform?: string;
  allPlatforms: boolean;
}

async function platformOf(opts: PlatformOpts) {
  if (opts.platform && opts.allPlatforms) throw errorOf("InvalidArgument", "--platform and --all-platforms exclude each other");
  const { parsePlatform } = await import("../../images/platform.ts");
  return opts.platform ? parsePlatform(opts.platform) : undefined;
}

export function exportCommand(): Command {
  return new Command("export")
    .description("write images to an archive (OCI layout that docker load also reads, or Docker archive)")
    .argument("<file>", "archive to write ('-' for stdout)")
    .argument("<ref...>", "images to export")
    .option("--platform <platform>", "platform of multi-platform images to export (default: this host's)")
    .option("--all-platforms", "export every platform of multi-platform images", false)
    .addOption(new Option("--format <format>", "archive format").choices(["oci", "docker"]).default("oci"))
    .action(async (file: string, refs: string[], opts: PlatformOpts & { format: "oci" | "docker" }, cmd: Command) => {
      useStreamingMemoryProfile();
      const { exportImages } = await import("../../client/export.ts");
      const ctx = contextFrom(cmd);
      try {
        const names = await exportImages(ctx, file, refs, { platform: await platformOf(opts), allPlatforms: opts.allPlatforms, format: opts.format });
        if (file !== "-") process.stdout.write(names.map((n) => `exported ${n}\n`).join(""));
      } finally {
        await ctx.close();
      }
    });
}

export function importCommand(): Command {
  return new Command("import")
    .description("import images from an archive (OCI layout, docker save, skopeo docker-archive; gzip too) and unpack them")
    .argument("<file>", "archive to read ('-' for stdin)")
    .option("--platform <platform>", "platform to unpack (default: this host's)")
    .option("--all-platforms", "require every platform of multi-platform images", false)
    .option("--base-name <name>", "name for images named only by a tag (name:tag) or not at all")
    .option("--digests", "also name every image by digest (<base-name or import>@sha256:…)", false)
    .action(async (file: string, opts: PlatformOpts & { baseName?: string; digests: boolean }, cmd: Command) => {
      useStreamingMemoryProfile();
      const { importImages } = await import("../../client/import.ts");
      const ctx = contextFrom(cmd);
      try {
        const imported = await importImages(ctx, file, { platform: await platformOf(opts), allPlatforms: opts.allPlatforms, baseName: opts.baseName, digests: opts.digests });
        for (const img of imported) {
          const unpacked = img.unpacked ? ` (unpacked ${img.unpacked})` : " (not unpacked: no platform matches this host)";
          process.stdout.write(img.names.map((n) => `imported ${n} ${img.target.digest}${unpacked}\n`).join(""));
          if (img.missing.length > 0) process.stdout.write(`note: the archive lacks ${img.missing.join(", ")} of ${img.names[0]}; imported what it holds\n`);
        }
      } finally {
        await ctx.close();
      }
    });
}
