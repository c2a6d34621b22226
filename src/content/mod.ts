export { openLocalStore } from "./local.ts";
export type { BlobInfo, ContentStore, ContentWriter, Expected } from "./types.ts";
