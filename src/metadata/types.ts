/** Records kept per namespace in the metadata store. */
import type { Digest } from "../digest/mod.ts";

export interface ImageRecord {
  namespace: string;
  name: string;
  target: { mediaType: string; digest: Digest; size: number };
  createdAt: string;
  updatedAt: string;
}

export interface ContainerRecord {
  namespace: string;
  id: string;
  image: string;
  snapshotter: string;
  snapshotKey: string;
  runtime: string;
  labels: Record<string, string>;
  createdAt: string;
}

export interface SnapshotRecord {
  namespace: string;
  key: string;
  parent?: string;
  kind: "active" | "view" | "committed";
  createdAt: string;
}
