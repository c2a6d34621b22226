/** `tsctr login [--username U] [--password-stdin] REGISTRY` and `tsctr logout REGISTRY`. */
import { Command } from "commander";
import process from "node:process";
import { contextFrom, warnSkipVerify } from "../options.ts";

export function loginCommand(): Command {
  return new Command("login")
    .description("check credentials against a registry and save them to Docker's config.json")
    .argument("<registry>", "registry host, e.g. docker.io or registry.example:5000")
    .option("-u, --username <user>", "user name (asked for when omitted)")
    .option("--password-stdin", "read the password from standard input", false)
    .option("--plain-http", "talk to the registry over HTTP instead of HTTPS", false)
    .option("--skip-verify", "do not verify the registry's TLS certificate (insecure)", false)
    .action(async (registry: string, opts: { username?: string; passwordStdin: boolean; plainHttp: boolean; skipVerify: boolean }, cmd: Command) => {
      const { login } = await import("../../client/login.ts");
      const { promptLine, readStdinSecret } = await import("../prompt.ts");
      const ctx = contextFrom(cmd);
      if (opts.skipVerify) warnSkipVerify();
      const username = opts.username ?? (await promptLine("Username: ", false));
      const password = opts.passwordStdin ? await readStdinSecret() : await promptLine("Password: ", true);
      try {
        const path = await login(ctx, registry, { username, password }, { plainHttp: opts.plainHttp, skipVerify: opts.skipVerify });
        process.stdout.write(`Login succeeded (credentials saved in ${path})\n`);
      } finally {
        await ctx.close();
      }
    });
}

export function logoutCommand(): Command {
  return new Command("logout")
    .description("remove a registry's credentials from Docker's config.json")
    .argument("<registry>", "registry host, e.g. docker.io")
    .action(async (registry: string) => {
      const { logout } = await import("../../client/login.ts");
      const removed = await logout(registry);
      process.stdout.write(removed ? `Removed the credentials for ${registry}\n` : `No credentials saved for ${registry}\n`);
    });
}
