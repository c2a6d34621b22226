/**
 * Puts the embedded monitor executable on disk: `<stateDir>/bin/tsctr-monitor-<sha256 prefix>`, written
 * once per build of the monitor (atomically, mode 0755) and reused by every container after that. Where
 * --state is on a noexec mount (/run is, on Ubuntu), it goes under the fallback directory (--root) instead.
 */
import { Buffer } from "node:buffer";
import { access, chmod, constants, realpath } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { errorOf } from "../../errdefs/mod.ts";
import { writeFileAtomic } from "../../platform/durable.ts";
import { MONITOR_BINARIES } from "./_binaries.generated.ts";
import { mountInfo } from "../bundle.ts";

/** True when `dir` (or the nearest existing parent) lies on a mount with the noexec option. */
async function onNoexecMount(dir: string): Promise<boolean> {
  let real = resolve(dir);
  while (real !== "/" && !(await realpath(real).then((r) => ((real = r), true), () => false))) real = dirname(real);
  const mount = (await mountInfo())
    .filter((m) => real === m.mountPoint || real.startsWith(m.mountPoint === "/" ? "/" : `${m.mountPoint}/`))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  return mount?.options.includes("noexec") ?? false;
}

/**
 * Returns the path of the monitor for this machine's architecture under `stateDir` (or `fallbackDir` when
 * `stateDir` is mounted noexec), writing it first when it is not there yet. NotImplemented on an
 * architecture the monitor is not built for.
 */
export async function installMonitor(stateDir: string, fallbackDir: string = stateDir): Promise<string> {
  const binary = MONITOR_BINARIES[process.arch];
  if (!binary) throw errorOf("NotImplemented", `start container: no monitor built for ${process.arch}`);
  const dir = (await onNoexecMount(stateDir)) ? fallbackDir : stateDir;
  const path = join(dir, "bin", `tsctr-monitor-${binary.sha256.slice(0, 12)}`);
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
