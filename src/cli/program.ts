/** The command tree. Each command parses its arguments, calls a service, and renders the result. */
import { Command, Option } from "commander";
import process from "node:process";
import { setDecompressEngine, setDigestEngine } from "../platform/engines.ts";
import { setDebug } from "./exit.ts";
import { versionCommand } from "./commands/version.ts";
import { pullCommand } from "./commands/pull.ts";
import { imagesCommand } from "./commands/images.ts";
import { runCommand } from "./commands/run.ts";
import { containersCommand } from "./commands/containers.ts";
import { volumeCommand } from "./commands/volume.ts";
import { statsCommand } from "./commands/stats.ts";

/** Builds the commander program with ctr-like global options. */
export function buildProgram(): Command {
  const program = new Command("tsctr")
    .description("a containerd-class container runtime in one executable")
    .option("--root <dir>", "root directory for persistent data", "/var/lib/tsctr")
    .option("--state <dir>", "state directory for runtime data", "/run/tsctr")
    .option("-n, --namespace <ns>", "namespace (tenant) to use", process.env.TSCTR_NAMESPACE ?? "default")
    .option("--debug", "print stack traces and debug output", false)
    .addOption(new Option("--digest-engine <engine>", "how SHA-256 digests are computed").choices(["native", "wasm"]).default(process.env.TSCTR_DIGEST_ENGINE === "wasm" ? "wasm" : "native"))
    .addOption(new Option("--decompress-engine <engine>", "how layers are decompressed").choices(["native", "wasm"]).default(process.env.TSCTR_DECOMPRESS_ENGINE === "native" ? "native" : "wasm"))
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    .hook("preAction", (cmd) => {
      setDebug(Boolean(cmd.opts().debug));
      setDigestEngine(cmd.opts().digestEngine === "wasm" ? "wasm" : "native");
      setDecompressEngine(cmd.opts().decompressEngine === "native" ? "native" : "wasm");
    });
  program.addCommand(versionCommand());
  program.addCommand(pullCommand());
  program.addCommand(imagesCommand());
  program.addCommand(runCommand());
  program.addCommand(containersCommand());
  program.addCommand(volumeCommand());
  program.addCommand(statsCommand());
  return program;
}
