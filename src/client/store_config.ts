/** `<root>/config.json`: settings of one store that every command on it uses ({"sync": "full", "unpackWorkers": 1}). */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { SYNC_LEVELS, setSyncLevel, type SyncLevel } from "../platform/durable.ts";

export interface StoreConfig {
  sync?: SyncLevel;
  /** Extraction threads a pull uses when --unpack-workers is not given (0: the least memory). */
  unpackWorkers?: number;
}

/** More extraction threads than this is a typo, not a machine. */
const MAX_UNPACK_WORKERS = 64;

/** Reads <root>/config.json; an absent file is an empty config, a malformed one InvalidArgument. */
export async function readStoreConfig(root: string): Promise<StoreConfig> {
  const path = join(root, "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (isErrno(e, "ENOENT")) return {};
    throw e;
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw errorOf("InvalidArgument", `read ${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw errorOf("InvalidArgument", `read ${path}: not a JSON object`);
  const { sync, unpackWorkers } = o as { sync?: unknown; unpackWorkers?: unknown };
  if (sync !== undefined && !SYNC_LEVELS.includes(sync as SyncLevel)) {
    throw errorOf("InvalidArgument", `read ${path}: "sync" must be one of ${SYNC_LEVELS.join(", ")}`);
  }
  if (unpackWorkers !== undefined && !(Number.isInteger(unpackWorkers) && (unpackWorkers as number) >= 0 && (unpackWorkers as number) <= MAX_UNPACK_WORKERS)) {
    throw errorOf("InvalidArgument", `read ${path}: "unpackWorkers" must be a whole number from 0 to ${MAX_UNPACK_WORKERS}`);
  }
  return {
    ...(sync === undefined ? {} : { sync: sync as SyncLevel }),
    ...(unpackWorkers === undefined ? {} : { unpackWorkers: unpackWorkers as number }),
  };
}

/** Applies the sync level: the command line's when given, else the store's config.json, else "full". */
export async function applySyncLevel(root: string, fromCommandLine: SyncLevel | undefined): Promise<void> {
  setSyncLevel(fromCommandLine ?? (await readStoreConfig(root)).sync ?? "full");
}
