export { openLocalStore } from "./local.ts";
export type { BlobInfo, ContentStore, ContentWriter, Expected, WriterOptions } from "./types.ts";
