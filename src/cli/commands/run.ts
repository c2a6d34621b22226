/** `tsctr run [--rm] [-t] [--env K=V]… [--platform P] [container flags: run_flags.ts] IMAGE ID [CMD [ARG…]]`, like `ctr run`. */
import { Command } from "commander";
import { contextFrom } from "../options.ts";
import { keyValue } from "../parse.ts";
import { addRunFlags, runFlagsFrom, type RunFlagOptions } from "../run_flags.ts";

export function runCommand(): Command {
  const run = new Command("run")
    .description("run a container in the foreground")
    .argument("<image>", "image reference (pulled already)")
    .argument("<id>", "container ID")
    .argument("[cmd...]", "command and arguments (replace the image's Cmd)")
    .option("--rm", "remove the container and its snapshot after it exits", false)
    .option("-t, --tty", "allocate a terminal", false)
    .option("--env <K=V>", "set an environment variable (repeatable)", keyValue, [] as string[])
    .option("--platform <platform>", "platform of the image to run (default: this host's)");
  return addRunFlags(run)
    .passThroughOptions()
    .action(async (image: string, id: string, cmdArgs: string[], opts: { rm: boolean; tty: boolean; env: string[]; platform?: string } & RunFlagOptions, cmd: Command) => {
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
        flags: runFlagsFrom(opts),
      });
      await ctx.close();
      process.exitCode = status;
    });
}
