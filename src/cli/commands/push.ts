/** `tsctr push [--platform P | --all-platforms] [--plain-http] REF [LOCAL_REF]`: upload an image to a registry. */
import { Command } from "commander";
import { useStreamingMemoryProfile } from "../../platform/memory_profile.ts";
import { contextFrom } from "../options.ts";
import { positiveInteger } from "../parse.ts";
import { errorOf } from "../../errdefs/mod.ts";

export function pushCommand(): Command {
  return new Command("push")
    .description("push an image to a registry")
    .argument("<ref>", "where to push, e.g. registry.example:5000/app:1")
    .argument("[local]", "the stored image to push (default: <ref>)")
    .option("--platform <platform>", "push only this platform's manifest of an index")
    .option("--all-platforms", "push every platform of an index (all must be stored locally)", false)
    .option("--plain-http", "talk to the registry over HTTP instead of HTTPS", false)
    .option("--chunk-size <bytes>", "upload blobs larger than this in chunks of this size (default 16 MiB)", positiveInteger)
    .option("-q, --quiet", "print nothing but errors", false)
    .action(async (ref: string, local: string | undefined, opts: { platform?: string; allPlatforms: boolean; plainHttp: boolean; chunkSize?: number; quiet: boolean }, cmd: Command) => {
      useStreamingMemoryProfile();
      if (opts.platform && opts.allPlatforms) throw errorOf("InvalidArgument", "push: --platform and --all-platforms exclude each other");
      const { push } = await import("../../client/push.ts");
      const { parsePlatform } = await import("../../images/platform.ts");
      const { pushProgress } = await import("../progress.ts");
      const ctx = contextFrom(cmd);
      try {
        await push(ctx, ref, local, {
          platform: opts.platform ? parsePlatform(opts.platform) : undefined,
          allPlatforms: opts.allPlatforms,
          plainHttp: opts.plainHttp,
          chunkSize: opts.chunkSize,
          onEvent: pushProgress(process.stdout, opts.quiet),
        });
      } finally {
        await ctx.close();
      }
    });
}
