/**
 * Reads an image archive (an OCI layout or Docker archive tar, optionally gzip- or zstd-compressed: the
 * magic bytes decide) entry by entry, in whatever order the writer chose. Every name is cleaned and must stay
 * inside the archive; each entry goes to one of the caller's handlers, which must consume its body before
 * returning. Nothing is buffered here beyond the tar reader's one chunk.
 */
import { decompress } from "../archive/decompress.ts";
import { readTar } from "../archive/tar_reader.ts";
import type { Digest } from "../digest/mod.ts";
import { errorOf } from "../errdefs/mod.ts";
import { cleanArchivePath, digestOfBlobPath, printable, resolveLink } from "./paths.ts";

export interface ArchiveHandlers {
  /** A `blobs/sha256/<hex>` file: its bytes must have that digest. */
  blob(path: string, digest: Digest, size: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** Any other regular file. */
  file(path: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** A symbolic or hard link, its target already resolved to a path inside the archive. */
  link(path: string, target: string): void;
}

/**
 * Reads every entry of the archive `input` into `handlers`. Throws InvalidArgument for a name that is
 * absolute or climbs out of the archive and for devices or FIFOs, DataLoss for a truncated or corrupt
 * archive (tar or compression).
 */
export async function readImageArchive(input: ReadableStream<Uint8Array>, what: string, handlers: ArchiveHandlers): Promise<void> {
  const tar = await decompress(input, { what });
  for await (const entry of readTar(tar, { what })) {
    const at = `${what}: entry "${printable(entry.path)}"`;
    const path = cleanArchivePath(entry.path, at);
    switch (entry.type) {
      case "dir":
        break;
      case "file": {
        const digest = digestOfBlobPath(path);
        if (digest) await handlers.blob(path, digest, entry.size, entry.body);
        else await handlers.file(path, entry.size, entry.body);
        break;
      }
      case "symlink":
        handlers.link(path, resolveLink(path, entry.linkname, at));
        break;
      case "hardlink":
        handlers.link(path, cleanArchivePath(entry.linkname, `${at} (link target)`));
        break;
      default:
        throw errorOf("InvalidArgument", `${at}: a ${entry.type} entry has no place in an image archive`);
    }
  }
}
