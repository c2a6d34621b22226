export { OverlaySnapshotter } from "./overlay.ts";
export { diskUsage, removeLeftover, removeSnapshotDir, scanOverlay, snapshotDir, snapshotDirs, type OverlayScan, type ScannedSnapshot, type Usage } from "./maintenance.ts";
