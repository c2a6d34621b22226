/**
 * Named volumes: directories under `<root>/volumes/<name>/_data` that outlive containers, like Docker's
 * local volumes. A volume appears whole or not at all (made beside, then renamed into place); containers
 * that use one carry its name in the `tsctr/volumes` label, which keeps `volume rm` from removing it.
 */
import { mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import process from "node:process";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { fsyncDir } from "../platform/durable.ts";
import { resolveInRoot, VOLUME_NAME_RE } from "../runtime/mod.ts";
import { execFile } from "../platform/exec.ts";

/** The container label listing the volumes a container mounts (comma-separated names). */
export const VOLUMES_LABEL = "tsctr/volumes";

/** One volume and the containers (namespace/id) that use it. */
export interface VolumeInfo {
  name: string;
  mountpoint: string;
  usedBy: string[];
}

function volumesDir(ctx: Context): string {
  return join(ctx.root, "volumes");
}

function checkName(name: string): void {
  if (!VOLUME_NAME_RE.test(name)) throw errorOf("InvalidArgument", `invalid volume name "${name}": use a letter or digit, then letters, digits, '_', '.' or '-'`);
}

/** The host directory holding a volume's data. */
export function volumeDataDir(ctx: Context, name: string): string {
  return join(volumesDir(ctx), name, "_data");
}

/**
 * Makes volume `name` if it does not exist (idempotent); resolves whether this call created it. The
 * directory is prepared under a temporary name and renamed into place, so it exists fully or not at all.
 */
export async function createVolume(ctx: Context, name: string): Promise<{ mountpoint: string; created: boolean }> {
  checkName(name);
  const dir = volumesDir(ctx);
  const mountpoint = volumeDataDir(ctx, name);
  if (await exists(mountpoint)) return { mountpoint, created: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = await mkdtemp(join(dir, ".tmp-"));
  try {
    await mkdir(join(tmp, "_data"), { mode: 0o755 });
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // another tsctr made it first: that is the same outcome
    if (isErrno(err, "EEXIST") || isErrno(err, "ENOTEMPTY")) return { mountpoint, created: false };
    throw err;
  }
  await fsyncDir(dir);
  return { mountpoint, created: true };
}

/** Every volume, by name, with the containers of any namespace that use it. */
export async function listVolumes(ctx: Context): Promise<VolumeInfo[]> {
  const names = (await readdir(volumesDir(ctx)).catch(() => [] as string[])).filter((n) => !n.startsWith(".")).sort();
  const users = await volumeUsers(ctx);
  return names.map((name) => ({ name, mountpoint: volumeDataDir(ctx, name), usedBy: users.get(name) ?? [] }));
}

/**
 * Removes volume `name` and its data. NotFound when there is none; FailedPrecondition naming the
 * containers (running or stopped) that still use it. The name disappears first (a rename), then the data.
 */
export async function removeVolume(ctx: Context, name: string): Promise<void> {
  checkName(name);
  const dir = join(volumesDir(ctx), name);
  if (!(await exists(dir))) throw errorOf("NotFound", `volume "${name}": not found`);
  const users = (await volumeUsers(ctx)).get(name) ?? [];
  if (users.length > 0) throw errorOf("FailedPrecondition", `volume "${name}": in use by container ${users.join(", ")}; remove the container first`);
  const doomed = join(volumesDir(ctx), `.rm-${name}-${process.pid}`);
  await rename(dir, doomed);
  await fsyncDir(volumesDir(ctx));
  await rm(doomed, { recursive: true, force: true });
}

/**
 * Fills a volume's empty data directory from the image's directory at `destination` inside `rootfs`
 * (Docker's copy-up on first use; owners, modes and links kept). Nothing happens when the image has no
 * directory there or the volume already holds files.
 */
export async function populateVolume(mountpoint: string, rootfs: string, destination: string): Promise<void> {
  const source = await resolveInRoot(rootfs, destination);
  const st = await stat(source).catch(() => undefined);
  if (!st?.isDirectory() || (await readdir(mountpoint)).length > 0 || (await readdir(source)).length === 0) return;
  const r = await execFile("cp", ["-a", "--", `${source}/.`, `${mountpoint}/`]);
  if (r.code !== 0) {
    // leave the volume empty rather than half-filled
    for (const entry of await readdir(mountpoint)) await rm(join(mountpoint, entry), { recursive: true, force: true });
    throw errorOf("Internal", `populate volume at ${mountpoint} from ${destination}: ${r.stderr.trim().split("\n").pop() || `cp exit status ${r.code}`}`);
  }
}

/** Volume name → "namespace/id" of each container record whose label lists it. */
async function volumeUsers(ctx: Context): Promise<Map<string, string[]>> {
  const md = await ctx.metadata();
  const namespaces = new Set([ctx.namespace, ...md.listSnapshots().map((s) => s.namespace)]);
  const users = new Map<string, string[]>();
  for (const ns of namespaces) {
    for (const c of md.listContainers(ns)) {
      for (const v of (c.labels[VOLUMES_LABEL] ?? "").split(",").filter((n) => n !== "")) users.set(v, [...(users.get(v) ?? []), `${ns}/${c.id}`]);
    }
  }
  return users;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
