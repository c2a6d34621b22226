/** Opens the snapshotter a context uses (overlayfs today; the native one comes later). */
import type { Context } from "./context.ts";
import type { Snapshotter } from "../snapshots/types.ts";
import { OverlaySnapshotter } from "../snapshots/overlay/mod.ts";

/** The overlay snapshotter under --root; FailedPrecondition when overlayfs is unavailable. */
export function openSnapshotter(ctx: Context): Promise<Snapshotter> {
  return OverlaySnapshotter.open(ctx.snapshotsDir());
}
