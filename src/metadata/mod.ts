export { MetadataStore, openMetadata } from "./db.ts";
export type { ContainerRecord, ImageRecord, SnapshotRecord } from "./types.ts";
