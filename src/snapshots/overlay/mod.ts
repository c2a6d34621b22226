export { OverlaySnapshotter } from "./overlay.ts";
