/** The content store: blobs addressed by digest, visible only after their digest and size are verified. */
import type { Digest } from "../digest/mod.ts";

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** What a blob must turn out to be; a writer refuses to commit anything else. */
export interface Expected {
  digest: Digest;
  size: number;
}

/**
 * Writes one blob into an ingest file; nothing is visible until `commit` has verified the digest and size,
 * fsynced the data and renamed it into place. `abort` removes the ingest; `suspend` keeps it for a later
 * writer opened with `resume` (in this process or another), which starts at `offset` > 0.
 */
export interface ContentWriter {
  /** Bytes in the ingest so far (those kept from an earlier writer included). */
  readonly offset: number;
  /**
   * The bytes kept from an earlier writer, read back from disk and hashed as they are read (no hash state is
   * stored); it must be read to its end before the first `write`. Empty for a fresh ingest.
   */
  replay(): ReadableStream<Uint8Array>;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<BlobInfo>;
  abort(): Promise<void>;
  /** Fsyncs and records what was written, closes the writer and releases the ingest for a later resume. */
  suspend(): Promise<void>;
}

export interface ContentStore {
  /** Size of a committed blob, or undefined when absent. */
  info(digest: Digest): Promise<BlobInfo | undefined>;
  /** The whole blob (for manifests and configs); throws NotFound when absent, ResourceExhausted past maxSize. */
  readBytes(digest: Digest, maxSize?: number): Promise<Uint8Array>;
  /** A stream of a committed blob's bytes; throws NotFound when absent. */
  readStream(digest: Digest): Promise<ReadableStream<Uint8Array>>;
  /**
   * Opens a writer for `expected` under ingest name `ref` (one writer per ref at a time). With `resume`, an
   * earlier interrupted ingest of the same ref, digest and size is kept, as far as it is known durable.
   */
  writer(ref: string, expected: Expected, opts?: { resume?: boolean }): Promise<ContentWriter>;
  /** Stores small bytes (manifests, configs) after verifying them against `expected`. */
  writeBytes(bytes: Uint8Array, expected: Expected): Promise<BlobInfo>;
  /** Removes a committed blob; no error when absent. */
  delete(digest: Digest): Promise<void>;
  /** Every committed blob. */
  list(): AsyncIterable<BlobInfo>;
}
