/**
 * Multi-layer test images for the store tests: busybox plus layers of random (incompressible) data, so a
 * pull takes long enough to be interrupted and every layer is a distinct blob.
 */
import { randomBytes } from "node:crypto";
import { layerFromFiles, pushBusyboxImage, type Layer, type PushedImage } from "./oci_builder.ts";

/** `count` layers of one `bytes`-sized random file each, named /data/<tag>-<i>. */
export async function randomLayers(tag: string, count: number, bytes: number): Promise<Layer[]> {
  const layers: Layer[] = [];
  for (let i = 0; i < count; i++) {
    layers.push(await layerFromFiles([{ type: "dir", path: "data" }, { type: "file", path: `data/${tag}-${i}`, content: randomBytes(bytes) }]));
  }
  return layers;
}

/** Pushes busybox (amd64) with `extra` layers on top as host/repo:tag. */
export function pushLayeredImage(host: string, repo: string, tag: string, extra: Layer[]): Promise<PushedImage> {
  return pushBusyboxImage(host, repo, tag, "amd64", { extraLayers: extra });
}
