/** `tsctr pull [--platform P] [--plain-http] REF`: fetch an image and unpack it. */
import { Command } from "commander";
import { useStreamingMemoryProfile } from "../../platform/memory_profile.ts";
import { contextFrom, warnSkipVerify } from "../options.ts";
import { nonNegativeInteger, positiveInteger } from "../parse.ts";

export function pullCommand(): Command {
  return new Command("pull")
    .description("pull an image from a registry and unpack it")
    .argument("<ref>", "image reference, e.g. docker.io/library/alpine:latest")
    .option("--platform <platform>", "os/arch[/variant] to pull (default: this host's)")
    .option("--plain-http", "talk to the registry over HTTP instead of HTTPS", false)
    .option("--discard-blobs", "keep no compressed copy of the layers (saves disk; export and push then need a re-pull)", false)
    .option("--max-layer-size <bytes>", "refuse a layer that decompresses past this many bytes (default 64 GiB)", positiveInteger)
    .option("--max-layer-ratio <n>", "refuse a layer that decompresses more than n times its size (default 1100)", positiveInteger)
    .option("--unpack-workers <n>", "extraction threads besides the main thread (default: config.json's unpackWorkers, else 0: the least memory; each worker takes big layers' hashing, parsing and file writes: faster on several cores, ~25 MB more)", nonNegativeInteger)
    .option("--stall-timeout <seconds>", "resume a download that receives nothing for this long (default 30)", positiveInteger)
    .option("-q, --quiet", "print nothing but errors", false)
    .option("--skip-verify", "do not verify the registry's TLS certificate (insecure)", false)
    .option("-u, --user <user:password>", "credentials for the registry (instead of config.json's)")
    .action(async (ref: string, opts: { platform?: string; plainHttp: boolean; quiet: boolean; skipVerify: boolean; user?: string; discardBlobs: boolean; maxLayerSize?: number; maxLayerRatio?: number; unpackWorkers?: number; stallTimeout?: number }, cmd: Command) => {
      useStreamingMemoryProfile();
      const { pull } = await import("../../client/pull.ts");
      const { hostPlatform, parsePlatform } = await import("../../images/platform.ts");
      const { pullProgress } = await import("../progress.ts");
      const ctx = contextFrom(cmd);
      if (opts.skipVerify) warnSkipVerify();
      const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
      const progress = pullProgress(process.stdout, opts.quiet);
      try {
        await pull(ctx, ref, { platform, plainHttp: opts.plainHttp, skipVerify: opts.skipVerify, user: opts.user, discardBlobs: opts.discardBlobs,
          limits: { ...(opts.maxLayerSize ? { maxBytes: opts.maxLayerSize } : {}), ...(opts.maxLayerRatio ? { maxRatio: opts.maxLayerRatio } : {}) },
          workers: opts.unpackWorkers,
          retry: opts.stallTimeout ? { stallMs: opts.stallTimeout * 1000 } : undefined,
          onEvent: progress.onEvent });
      } finally {
        progress.finish();
        await ctx.close();
      }
    });
}
