// tar-stream ships no type declarations; this is the part of its API tsctr uses (writing archives).
declare module "tar-stream" {
  import type { Readable, Writable } from "node:stream";
  export interface PackHeader {
    name: string;
    size?: number;
    mode?: number;
    mtime?: Date;
    type?: "file" | "directory";
  }
  export interface Pack extends Readable {
    entry(header: PackHeader, callback?: (err?: Error | null) => void): Writable;
    entry(header: PackHeader, buffer: Uint8Array | string, callback?: (err?: Error | null) => void): Writable;
    finalize(): void;
    destroy(err?: Error): this;
  }
  export function pack(): Pack;
  const tarStream: { pack: typeof pack };
  export default tarStream;
}
