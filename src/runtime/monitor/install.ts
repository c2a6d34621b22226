/**
 * Puts the embedded monitor executable on disk: `<stateDir>/bin/tsctr-monitor-<sha256 prefix>`, written
 * once per build of the monitor (atomically, mode 0755) and reused by every container after that.
 */
import { Buffer } from "node:buffer";
import { access, chmod, constants } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { errorOf } from "../../errdefs/mod.ts";
import { writeFileAtomic } from "../../platform/durable.ts";
import { MONITOR_BINARIES } from "./_binaries.generated.ts";

/**
 * Returns the path of the monitor for this machine's architecture under `stateDir`, writing it first when
 * it is not there yet. NotImplemented on an architecture the monitor is not built for.
 */
export async function installMonitor(stateDir: string): Promise<string> {
  const binary = MONITOR_BINARIES[process.arch];
  if (!binary) throw errorOf("NotImplemented", `start container: no monitor built for ${process.arch}`);
  const path = join(stateDir, "bin", `tsctr-monitor-${binary.sha256.slice(0, 12)}`);
  try {
    await access(path, constants.X_OK);
    return path;
  } catch {
    // not written yet (or not executable): write it
  }
  // The name carries the content's hash, so a complete file at this path is always the right one.
  await writeFileAtomic(path, Buffer.from(binary.base64, "base64"), { mode: 0o755, durable: false });
  await chmod(path, 0o755);
  return path;
}
