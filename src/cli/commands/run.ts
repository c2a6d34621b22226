/** `tsctr run [--rm] [-t] [-d] [--env K=V]… [--platform P] [--net M] [-p P]… [container flags: run_flags.ts] IMAGE ID [CMD [ARG…]]`, like `ctr run`. */
import { Command, Option } from "commander";
import { contextFrom } from "../options.ts";
import { byteSize, keyValue } from "../parse.ts";
import { addRunFlags, runFlagsFrom, type RunFlagOptions } from "../run_flags.ts";
import { parseNetworkMode, parsePublish } from "../../network/parse.ts";
import type { NetworkMode, PortMapping } from "../../network/types.ts";

export function runCommand(): Command {
  const run = new Command("run")
    .description("run a container in the foreground, or detached with -d")
    .argument("<image>", "image reference (pulled already)")
    .argument("<id>", "container ID")
    .argument("[cmd...]", "command and arguments (replace the image's Cmd)")
    .option("--rm", "remove the container and its snapshot after it exits", false)
    .option("-t, --tty", "allocate a terminal", false)
    .option("--env <K=V>", "set an environment variable (repeatable)", keyValue, [] as string[])
    .option("--platform <platform>", "platform of the image to run (default: this host's)");
  return addRunFlags(run)
    .addOption(new Option("--net <mode>", "network: bridge (tsctr0, NAT), none (loopback only) or host").env("TSCTR_NET").default("bridge").argParser(parseNetworkMode))
    .option("-p, --publish <[hostip:]hostport:port[/proto]>", "publish a container port on the host (repeatable)", (v: string, prev: PortMapping[]) => [...prev, parsePublish(v)], [] as PortMapping[])
    .option("-d, --detach", "run in the background under a monitor; print the ID once it runs", false)
    .option("--log-max-size <size>", "with -d: rotate the log past this size (3 files kept; default 10m)", byteSize)
    .option("--restart <policy>", "restart policy recorded with the container: no, always, on-failure[:N], unless-stopped")
    .passThroughOptions()
    .action(async (image: string, id: string, cmdArgs: string[], opts: { rm: boolean; tty: boolean; env: string[]; platform?: string; net: NetworkMode; publish: PortMapping[]; detach: boolean; logMaxSize?: number; restart?: string } & RunFlagOptions, cmd: Command) => {
      const { run } = await import("../../client/run.ts");
      const { hostPlatform, parsePlatform } = await import("../../images/platform.ts");
      const ctx = contextFrom(cmd);
      const status = await run(ctx, {
        image,
        id,
        args: cmdArgs.length > 0 ? cmdArgs : undefined,
        env: opts.env,
        tty: opts.tty,
        rm: opts.rm,
        platform: opts.platform ? parsePlatform(opts.platform) : hostPlatform(),
        network: { mode: opts.net, ports: opts.publish },
        detach: opts.detach,
        logMaxSize: opts.logMaxSize,
        restart: opts.restart,
        flags: runFlagsFrom(opts),
      });
      await ctx.close();
      if (opts.detach) process.stdout.write(`${id}\n`);
      process.exitCode = status;
    });
}
