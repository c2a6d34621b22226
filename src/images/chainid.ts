/**
 * Chain IDs name a stack of layers, per the OCI image spec (config.md, "Layer ChainID"):
 * ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 * Snapshots of unpacked layers are keyed by them, so equal stacks are shared between images.
 */
import { digestOf } from "../digest/mod.ts";
import type { Digest } from "../digest/mod.ts";

/** The chain ID of every prefix of `diffIds`: element i names layers 0..i applied in order. */
export async function chainIds(diffIds: readonly Digest[]): Promise<Digest[]> {
  const out: Digest[] = [];
  let prev: Digest | undefined;
  for (const diffId of diffIds) {
    prev = prev === undefined ? diffId : await digestOf(`${prev} ${diffId}`);
    out.push(prev);
  }
  return out;
}

/** The chain ID of the whole stack (the top layer's); undefined for an image without layers. */
export async function chainId(diffIds: readonly Digest[]): Promise<Digest | undefined> {
  return (await chainIds(diffIds)).at(-1);
}
