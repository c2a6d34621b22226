/**
 * What part of an ingest's data file a later process may trust. A process that dies (even by SIGKILL)
 * leaves every byte it wrote in the page cache, so within one boot the whole file is good; after a reboot
 * (power loss) only the bytes fsynced before the last checkpoint are. The `state` file beside the data
 * records the boot ID of the writer and that fsynced length; it is replaced atomically (rename), and a
 * missing or torn one trusts nothing.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

interface IngestState {
  boot: string;
  synced: number;
}

let bootIdCache: Promise<string> | undefined;

/** This boot's ID (Linux /proc/sys/kernel/random/boot_id), or "" when unknown. */
export function bootId(): Promise<string> {
  bootIdCache ??= readFile("/proc/sys/kernel/random/boot_id", "utf8").then((s) => s.trim(), () => "");
  return bootIdCache;
}

/** Records that the first `synced` bytes of the ingest's data are fsynced, written during this boot. */
export async function recordSynced(ingestDir: string, synced: number): Promise<void> {
  const state: IngestState = { boot: await bootId(), synced };
  const tmp = join(ingestDir, "state.tmp");
  await writeFile(tmp, JSON.stringify(state));
  await rename(tmp, join(ingestDir, "state"));
}

/**
 * How many leading bytes of a data file of `fileSize` bytes can be trusted: all of them when the writer
 * ran in this boot, else only those fsynced at its last checkpoint (0 without a readable state).
 */
export async function trustedLength(ingestDir: string, fileSize: number): Promise<number> {
  let state: IngestState;
  try {
    state = JSON.parse(await readFile(join(ingestDir, "state"), "utf8")) as IngestState;
  } catch {
    return 0;
  }
  if (typeof state.synced !== "number" || typeof state.boot !== "string") return 0;
  const boot = await bootId();
  if (boot !== "" && state.boot === boot) return fileSize;
  return Math.min(fileSize, Math.max(0, Math.floor(state.synced)));
}
