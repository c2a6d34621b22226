/**
 * `run`: image → container record → writable snapshot → mounted rootfs → OCI bundle → runc in the
 * foreground. Whatever fails on the way is undone in reverse order, so a failed run leaves no record,
 * snapshot, mount or bundle behind. With `rm`, the same teardown runs after the container exits.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { getImage } from "./images.ts";
import { openSnapshotter } from "./snapshotter.ts";
import { recordForegroundExit, startDetached } from "./tasks.ts";
import { restartLabels } from "./restart_policy.ts";
import { networkLabels } from "./network.ts";
import { emitEvent } from "./events.ts";
import { errorOf } from "../errdefs/mod.ts";
import { readImage } from "../images/image.ts";
import { chainIds } from "../images/chainid.ts";
import type { Platform } from "../images/types.ts";
import { mountAll, unmount } from "../mount/mod.ts";
import { Runc, findRunc, forwardSignals, generateSpec, mergeEnv, resolveUser, writeBundle } from "../runtime/mod.ts";
import { checkRunFlags, containerSettings, runLabels, type RunFlags } from "./run_settings.ts";
import { isRoot } from "../platform/runtime.ts";
import { connectNetwork, disconnectNetwork } from "./network.ts";
import type { NetworkOptions } from "../network/mod.ts";
import process from "node:process";

export interface RunOptions {
  image: string;
  id: string;
  args?: string[];
  env?: string[];
  tty?: boolean;
  rm?: boolean;
  platform: Platform;
  /** Default: the bridge network, no published ports. */
  network?: NetworkOptions;
  /** Start the container under a monitor and return once it runs (it outlives tsctr). */
  detach?: boolean;
  /** With `detach`: the log's size cap per file, in bytes. */
  logMaxSize?: number;
  /** Recorded with the container: no | always | on-failure[:N] | unless-stopped (see restart_policy.ts). */
  restart?: string;
  /** Mounts, user, privileges, devices, seccomp and limits (see run_settings.ts). */
  flags?: RunFlags;
}

const ID_RE = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

/** Runs a container in the foreground with stdio passed through; resolves with its exit status. */
export async function run(ctx: Context, opts: RunOptions): Promise<number> {
  if (!ID_RE.test(opts.id) || opts.id.length > 76) {
    throw errorOf("InvalidArgument", `invalid container ID "${opts.id}": use letters, digits and single '.', '_' or '-' between them`);
  }
  if (opts.detach && opts.rm) throw errorOf("InvalidArgument", "run: --rm cannot be combined with -d yet; remove the container with rm after it stops");
  const labels = { ...(opts.restart === undefined ? {} : restartLabels(opts.restart)), ...networkLabels(opts.network ?? { mode: "bridge" }) };
  if (!isRoot()) throw errorOf("PermissionDenied", "run: tsctr must run as root to create containers");
  // Independent look-ups run together: the runtime binary, the snapshotter, and the image.
  const [runcBinary, snapshotter, md, found, checked] = await Promise.all([
    findRunc(),
    openSnapshotter(ctx),
    ctx.metadata(),
    (async () => {
      const imageRecord = await getImage(ctx, opts.image);
      const image = await readImage(await ctx.content(), { ...imageRecord.target }, opts.platform, imageRecord.name);
      return { imageRecord, image, chain: await chainIds(image.config.rootfs.diff_ids) };
    })(),
    checkRunFlags(opts.flags ?? {}),
  ]);
  const { imageRecord, image, chain } = found;
  const top = chain[chain.length - 1];
  if (top && !(await snapshotter.stat(top))) {
    throw errorOf("NotFound", `image ${imageRecord.name} is not unpacked for ${image.config.architecture}: pull it again`);
  }

  const snapshotKey = `${ctx.namespace}/${opts.id}`;
  const bundle = ctx.bundleDir(opts.id);
  const rootfs = join(bundle, "rootfs");
  const made = { snapshot: false, bundle: false, mount: false, network: false };
  // Undoes what was made, in an order that an interrupted teardown can repeat: the mount first, then the
  // bundle and the snapshot together, and the record last (`containers rm` finishes a half-removed one).
  const teardown = async () => {
    if (made.network) await disconnectNetwork(ctx, opts.id).catch(() => {});
    if (made.mount) await unmount(rootfs).catch(() => {});
    await Promise.all([
      made.bundle ? rm(bundle, { recursive: true, force: true }).catch(() => {}) : undefined,
      made.snapshot ? snapshotter.remove(snapshotKey).catch(() => {}) : undefined,
    ]);
    md.transaction(() => {
      md.deleteContainer(ctx.namespace, opts.id);
      md.deleteSnapshot(ctx.namespace, snapshotKey);
    });
    await emitEvent(ctx, "delete", opts.id);
  };

  md.transaction(() => {
    md.createContainer({ namespace: ctx.namespace, id: opts.id, image: imageRecord.name, snapshotter: "overlayfs", snapshotKey, runtime: "io.containerd.runc.v2", labels: { ...runLabels(opts.flags ?? {}), ...labels } });
    md.putSnapshot({ namespace: ctx.namespace, key: snapshotKey, parent: top, kind: "active" });
  });
  await emitEvent(ctx, "create", opts.id);

  let status: number;
  try {
    const mounts = await snapshotter.prepare(snapshotKey, top);
    made.snapshot = true;
    await mkdir(rootfs, { recursive: true });
    made.bundle = true;
    await mountAll(mounts, rootfs);
    made.mount = true;
    const user = await resolveUser(rootfs, opts.flags?.user ?? image.config.config?.User ?? "");
    const settings = await containerSettings(ctx, checked, rootfs, runcBinary);
    const env = mergeEnv(checked.env, opts.env ?? []);
    const spec = generateSpec({ id: opts.id, namespace: ctx.namespace, image: image.config, args: opts.args, env, tty: opts.tty, user, hostname: opts.flags?.hostname, cwd: opts.flags?.cwd, settings });
    made.network = true;
    await connectNetwork(ctx, opts.id, bundle, spec, opts.network ?? { mode: "bridge" });
    await writeBundle(bundle, spec);
    const runc = new Runc({ binary: runcBinary, root: ctx.runcRoot() });
    if (opts.detach) {
      await startDetached(ctx, runc, opts.id, bundle, { logMaxSize: opts.logMaxSize });
      return 0;
    }
    const task = runc.run(opts.id, bundle, { stdio: "inherit", tty: opts.tty ?? false });
    void emitEvent(ctx, "start", opts.id);
    const stopForwarding = forwardSignals(task.child);
    const stopEscalation = killOnThirdInterrupt(runc, opts.id);
    try {
      status = await task.exited;
    } catch (e) {
      // `runc run` removes the container when it ends normally; after a failure, make sure.
      await runc.delete(opts.id, { force: true }).catch(() => {});
      throw e;
    } finally {
      stopForwarding();
      stopEscalation();
    }
  } catch (e) {
    await teardown();
    throw e;
  }
  await emitEvent(ctx, "exit", opts.id, status);
  if (opts.rm) {
    await teardown();
  } else {
    await disconnectNetwork(ctx, opts.id).catch(() => {});
    // keep the record and the snapshot (like ctr); the rootfs is unmounted until the container starts again
    await unmount(rootfs).catch(() => {});
    await recordForegroundExit(ctx, opts.id, status).catch(() => {});
  }
  return status;
}

/**
 * A process that is PID 1 in its namespace ignores SIGINT and SIGTERM unless it handles them, so Ctrl-C
 * alone may not stop a container; the third interrupt kills it with SIGKILL (Docker's habit).
 */
function killOnThirdInterrupt(runc: Runc, id: string): () => void {
  let count = 0;
  const handler = () => {
    if (++count === 3) {
      process.stderr.write(`tsctr: killing container ${id} (third interrupt)\n`);
      void runc.kill(id, "SIGKILL").catch(() => {});
    }
  };
  process.on("SIGINT", handler);
  return () => void process.off("SIGINT", handler);
}
