/** `tsctr version`: client version, git revision, runtime and architecture. */
import { Command } from "commander";
import { runtimeName, runtimeVersion, hostArchitecture } from "../../platform/runtime.ts";
import { VERSION, REVISION } from "../../version.ts";

export function versionCommand(): Command {
  return new Command("version").description("print the client version").action(() => {
    process.stdout.write(
      `Client:\n  Version:  ${VERSION}\n  Revision: ${REVISION}\n  Runtime:  ${runtimeName()} ${runtimeVersion()}\n  Arch:     linux/${hostArchitecture()}\n`,
    );
  });
}
