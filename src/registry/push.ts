/**
 * Uploading to an OCI Distribution registry: blob existence (HEAD), cross-repository mount, monolithic and
 * chunked uploads, and manifest PUTs. Blobs are streamed from a caller's source and hashed as they are sent;
 * a blob whose bytes do not hash to its descriptor is aborted before the registry can commit it.
 *
 *   const outcome = await pushBlob(client, ref, layerDesc, { open: () => content.readStream(layerDesc.digest), from: ["library/busybox"] });
 *   await putManifest(client, ref, "1.0", manifestDesc, manifestBytes);
 */
import { errorOf } from "../errdefs/mod.ts";
import { createHasher, type Digest, type Hasher } from "../digest/mod.ts";
import type { Descriptor } from "../images/types.ts";
import { pushScope } from "./auth.ts";
import type { RegistryClient } from "./client.ts";
import type { Reference } from "./reference.ts";
import { header, type HttpResponse } from "./transport.ts";

/** Blobs above this size are sent in PATCH chunks of this size (some proxies cap request bodies). */
export const DEFAULT_CHUNK_SIZE = 16 << 20;

/** What happened to a blob: already there, mounted from another repository, or uploaded. */
export type BlobOutcome = { status: "exists" } | { status: "mounted"; from: string } | { status: "uploaded"; chunks: number };

export interface PushBlobOptions {
  /** Opens the blob's bytes (called at most once, only when an upload is needed). */
  open: () => Promise<ReadableStream<Uint8Array>>;
  /** Repositories of the same registry that hold the blob; the first (other than the target) is mounted from. */
  from?: readonly string[];
  /** Blobs larger than this go in chunks of this size (default 16 MiB). */
  chunkSize?: number;
  /** Called as bytes are sent, with the count so far. */
  onProgress?: (offset: number) => void;
}

/**
 * Makes blob `desc` present in the repository of `ref`: skipped when a HEAD finds it, mounted from the first
 * of `opts.from` when the registry allows (else the session it opens is used), else uploaded (one PUT up to
 * chunkSize, PATCH chunks above). Guarantees the registry received exactly desc.size bytes hashing to
 * desc.digest, or throws (DataLoss when the local bytes are wrong; the upload session is then cancelled).
 */
export async function pushBlob(client: RegistryClient, ref: Reference, desc: Descriptor, opts: PushBlobOptions): Promise<BlobOutcome> {
  if (await blobExists(client, ref, desc)) return { status: "exists" };
  const from = opts.from?.find((repo) => repo !== ref.path);
  const started = await startUpload(client, ref, desc, from);
  if (started.mounted) return { status: "mounted", from: from! };
  return { status: "uploaded", chunks: await upload(client, ref, desc, started.location, opts) };
}

/** True when the repository of `ref` already holds blob `desc` (HEAD answers 200). */
export async function blobExists(client: RegistryClient, ref: Reference, desc: Descriptor): Promise<boolean> {
  const res = await client.send(ref, "HEAD", await client.apiUrl(ref, `blobs/${desc.digest}`), pushScope(ref.path));
  await res.body.dump();
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw await client.failure(res, ref, `blob ${desc.digest} of ${ref.name}`, `repository ${ref.name} not found`);
}

/**
 * PUTs a manifest or index under `reference` (a tag or its digest) with its own media type as Content-Type.
 * Guarantees the registry stored these exact bytes: a Docker-Content-Digest that differs is DataLoss.
 */
export async function putManifest(client: RegistryClient, ref: Reference, reference: string, desc: Descriptor, bytes: Uint8Array): Promise<void> {
  const what = `manifest ${desc.digest} to ${ref.name}:${reference}`;
  const res = await client.send(ref, "PUT", await client.apiUrl(ref, `manifests/${reference}`), pushScope(ref.path), {
    headers: { "content-type": desc.mediaType, "content-length": String(bytes.byteLength) },
    body: bytes,
  });
  if (res.status !== 201 && res.status !== 200) throw await client.failure(res, ref, `push of ${what}`, `repository ${ref.name} not found`);
  await res.body.dump();
  const stored = header(res, "docker-content-digest");
  if (stored && stored !== desc.digest) throw errorOf("DataLoss", `push of ${what}: registry ${ref.apiHost} stored it as ${stored}`);
}

/** POST /blobs/uploads/ (with ?mount=&from= when `from` is given): mounted (201), or a session Location (202). */
async function startUpload(client: RegistryClient, ref: Reference, desc: Descriptor, from?: string): Promise<{ mounted: true } | { mounted: false; location: string }> {
  const query = from ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}` : "";
  const url = await client.apiUrl(ref, `blobs/uploads/${query}`);
  const res = await client.send(ref, "POST", url, pushScope(ref.path, from), { headers: { "content-length": "0" } });
  if (from && res.status === 201) {
    await res.body.dump();
    return { mounted: true };
  }
  if (res.status !== 202) throw await client.failure(res, ref, `upload of blob ${desc.digest} to ${ref.name}`, `repository ${ref.name} not found`);
  await res.body.dump();
  return { mounted: false, location: nextLocation(res, ref) };
}

/**
 * Sends the blob into the session at `location` and commits it with PUT ?digest=; returns the number of
 * requests that carried it. On any failure the session is cancelled (DELETE, best effort).
 */
async function upload(client: RegistryClient, ref: Reference, desc: Descriptor, location: string, opts: PushBlobOptions): Promise<number> {
  const what = `upload of blob ${desc.digest} to ${ref.name}`;
  const scope = pushScope(ref.path);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const source = new VerifiedSource(await opts.open(), desc, opts.onProgress ?? (() => {}));
  let url = location;
  let requests = 0;
  try {
    if (desc.size > chunkSize) {
      while (source.offset < desc.size) {
        const start = source.offset;
        const length = Math.min(chunkSize, desc.size - start);
        const res = await client.send(ref, "PATCH", url, scope, {
          headers: { "content-type": "application/octet-stream", "content-length": String(length), "content-range": `${start}-${start + length - 1}` },
          body: source.take(length),
        });
        requests++;
        if (res.status !== 202) throw await client.failure(res, ref, what, `upload session for ${desc.digest} not found`);
        await res.body.dump();
        url = nextLocation(res, ref, url);
      }
    }
    const single = desc.size <= chunkSize;
    const res = await client.send(ref, "PUT", withDigest(url, desc.digest), scope, {
      headers: single ? { "content-type": "application/octet-stream", "content-length": String(desc.size) } : { "content-length": "0" },
      body: single ? source.take(desc.size) : undefined,
    });
    requests++;
    if (res.status !== 201) throw await client.failure(res, ref, what, `upload session for ${desc.digest} not found`);
    await res.body.dump();
    return requests;
  } catch (e) {
    await source.cancel();
    await client.send(ref, "DELETE", url, scope).then((r) => r.body.dump(), () => {});
    throw e;
  }
}

/** The Location of an upload answer, resolved against `base` (it may be relative or absolute). */
function nextLocation(res: HttpResponse, ref: Reference, base?: string): string {
  const loc = header(res, "location");
  if (!loc) throw errorOf("Unavailable", `registry ${ref.apiHost} answered ${res.status} without a Location for an upload to ${ref.name}`);
  return new URL(loc, base ?? res.url).toString();
}

function withDigest(url: string, digest: Digest): string {
  const u = new URL(url);
  u.searchParams.set("digest", digest);
  return u.toString();
}

/**
 * A blob's bytes, handed out in consecutive pieces (`take`) while a hash and a count run over them. The last
 * chunk is held back until the digest and size are checked, so a wrong blob errors the request body (and
 * the registry, short of its Content-Length, commits nothing).
 */
class VerifiedSource {
  offset = 0;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #desc: Descriptor;
  readonly #onProgress: (offset: number) => void;
  #hasher?: Hasher;
  #pending?: Uint8Array;

  constructor(stream: ReadableStream<Uint8Array>, desc: Descriptor, onProgress: (offset: number) => void) {
    this.#reader = stream.getReader();
    this.#desc = desc;
    this.#onProgress = onProgress;
  }

  /** The next `length` bytes as a stream of chunks; throws DataLoss when the blob is short, long or wrong. */
  async *take(length: number): AsyncGenerator<Uint8Array> {
    this.#hasher ??= await createHasher();
    if (this.#desc.size === 0) await this.#verify();
    let left = length;
    while (left > 0) {
      const chunk = this.#pending ?? (await this.#read());
      const piece = chunk.byteLength > left ? chunk.subarray(0, left) : chunk;
      this.#pending = chunk.byteLength > left ? chunk.subarray(left) : undefined;
      this.#hasher.update(piece);
      this.offset += piece.byteLength;
      left -= piece.byteLength;
      if (this.offset === this.#desc.size) await this.#verify();
      this.#onProgress(this.offset);
      yield piece;
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  async #read(): Promise<Uint8Array> {
    const r = await this.#reader.read();
    if (r.done) throw errorOf("DataLoss", `blob ${this.#desc.digest}: the local copy ends after ${this.offset} of ${this.#desc.size} bytes`);
    return r.value;
  }

  async #verify(): Promise<void> {
    const extra = this.#pending ?? (await this.#reader.read()).value;
    if (extra && extra.byteLength > 0) throw errorOf("DataLoss", `blob ${this.#desc.digest}: the local copy is longer than ${this.#desc.size} bytes`);
    const got = this.#hasher!.digest();
    if (got !== this.#desc.digest) throw errorOf("DataLoss", `blob ${this.#desc.digest}: the local copy hashes to ${got}; pull the image again`);
  }
}
