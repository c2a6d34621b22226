/**
 * An OCI Distribution v2 pull client: resolves a reference to a manifest or index descriptor, fetches
 * manifests verified against their descriptors, and streams blobs. Auth is negotiated per request from the
 * registry's challenge: anonymous, Bearer tokens (cached per host and scope), or Basic with credentials.
 *
 *   const client = new RegistryClient({ plainHttp: true });
 *   const ref = parseReference("127.0.0.1:5000/busybox:1");
 *   const { descriptor, bytes } = await client.resolve(ref);
 *   const layer = await client.fetchBlob(ref, manifest.layers[0]); // ReadableStream<Uint8Array>
 *   await client.close();
 */
import { errorOf } from "../errdefs/mod.ts";
import type { TsctrError } from "../errdefs/mod.ts";
import { digestOf, isDigest, verifyBytes } from "../digest/mod.ts";
import type { Descriptor } from "../images/types.ts";
import { MediaTypes } from "../images/types.ts";
import { detectManifestKind, isIndexType, isManifestType } from "../images/parse.ts";
import { VERSION } from "../version.ts";
import { AuthCache, basicAuthorization, fetchToken, parseChallenges, pullScope } from "./auth.ts";
import type { Credentials } from "./auth.ts";
import { httpError } from "./errors.ts";
import { discard, header, headerAll, readCapped, readErrorBody, Transport } from "./transport.ts";
import { blobBody } from "./blob_body.ts";
import { parseRetryAfter, withRetryAfter } from "./retry.ts";
import type { HttpResponse } from "./transport.ts";
import type { Reference } from "./reference.ts";

/** Manifests and indexes larger than this are refused (containerd uses the same limit). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");

export interface RegistryClientOptions {
  /** Talk http:// instead of https:// (local registries). */
  plainHttp?: boolean;
  /** Credentials for a registry domain as written in references ("docker.io", "localhost:5000"). */
  credentials?: (host: string) => Credentials | undefined;
  userAgent?: string;
}

export interface Resolved {
  /** mediaType (manifest or index), digest and size of the bytes below. */
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export class RegistryClient {
  readonly #transport: Transport;
  readonly #auth = new AuthCache();
  readonly #scheme: string;
  readonly #credentials: (host: string) => Credentials | undefined;

  constructor(opts: RegistryClientOptions = {}) {
    this.#scheme = opts.plainHttp ? "http" : "https";
    this.#credentials = opts.credentials ?? (() => undefined);
    this.#transport = new Transport({ userAgent: opts.userAgent ?? `tsctr/${VERSION}` });
  }

  /**
   * Fetches the manifest or index `ref` names (by digest when it has one, else by tag). Guarantees: the
   * bytes are at most 4 MiB (else ResourceExhausted), hash to the reference's digest when it has one and to
   * the server's Docker-Content-Digest when sent (else DataLoss), and are a manifest or index of a known
   * media type (else NotImplemented). A missing image is NotFound "image not found: <ref>".
   */
  async resolve(ref: Reference): Promise<Resolved> {
    const res = await this.#get(ref, `manifests/${ref.locator}`, MANIFEST_ACCEPT);
    if (res.status !== 200) throw await this.#failure(res, ref, `manifest ${ref}`, `image not found: ${ref}`);
    const length = Number(header(res, "content-length"));
    const tooBig = () => errorOf("ResourceExhausted", `manifest ${ref}: larger than the ${MAX_MANIFEST_SIZE} byte limit`);
    if (length > MAX_MANIFEST_SIZE) {
      discard(res.body);
      throw tooBig();
    }
    const bytes = await readCapped(res.body, MAX_MANIFEST_SIZE, tooBig, ref.apiHost);
    const contentType = header(res, "content-type");
    const kind = detectManifestKind(contentType, bytes);
    const digest = await digestOf(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw errorOf("DataLoss", `manifest ${ref}: content has digest ${digest}, not the one in the reference`);
    }
    const claimed = header(res, "docker-content-digest");
    if (claimed && isDigest(claimed) && claimed !== digest) {
      throw errorOf("DataLoss", `manifest ${ref}: registry ${ref.apiHost} announced digest ${claimed} but the content has ${digest}`);
    }
    return { descriptor: { mediaType: manifestMediaType(contentType, bytes, kind), digest, size: bytes.byteLength }, bytes };
  }

  /**
   * Fetches the small document `desc` describes from the repository of `ref`: a manifest or index (from
   * /manifests/) or anything else, such as an image config (from /blobs/). Guarantees the bytes match
   * desc.digest and desc.size (else DataLoss); refuses descriptors over 4 MiB (ResourceExhausted).
   */
  async fetchManifest(ref: Reference, desc: Descriptor): Promise<Uint8Array> {
    const isManifest = isManifestType(desc.mediaType) || isIndexType(desc.mediaType);
    const what = `${isManifest ? "manifest" : "blob"} ${desc.digest} of ${ref.name}`;
    if (desc.size > MAX_MANIFEST_SIZE) throw errorOf("ResourceExhausted", `${what}: ${desc.size} bytes is over the ${MAX_MANIFEST_SIZE} byte limit`);
    const res = isManifest ? await this.#get(ref, `manifests/${desc.digest}`, MANIFEST_ACCEPT) : await this.#get(ref, `blobs/${desc.digest}`, "*/*");
    const notFound = isManifest ? `image not found: ${ref.name}@${desc.digest}` : `blob ${desc.digest} not found in ${ref.name}`;
    if (res.status !== 200) throw await this.#failure(res, ref, what, notFound);
    const bytes = await readCapped(res.body, desc.size, () => errorOf("DataLoss", `${what}: larger than the expected ${desc.size} bytes`), ref.apiHost);
    await verifyBytes(bytes, desc, what);
    return bytes;
  }

  /**
   * Streams the blob `desc` describes, from byte `offset` on (a `Range` request; a server that ignores it
   * has the first bytes skipped). Redirects (e.g. to object storage) are followed without sending
   * Authorization to another origin. The stream ends after exactly the blob's remaining bytes; it errors
   * with Unavailable when the transfer breaks or ends early (see resumableBlob to continue it) and with
   * DataLoss when the registry sends more. The digest is for the caller to verify while storing. A missing
   * blob is NotFound; a 429 or 503 error carries the server's Retry-After (see retryAfterOf).
   */
  async fetchBlob(ref: Reference, desc: Descriptor, opts: { offset?: number } = {}): Promise<ReadableStream<Uint8Array>> {
    const what = `blob ${desc.digest} of ${ref.name}`;
    const offset = opts.offset ?? 0;
    const res = await this.#get(ref, `blobs/${desc.digest}`, "*/*", offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (res.status === 416) {
      await res.body.dump();
      throw errorOf("DataLoss", `${what}: registry ${ref.apiHost} has no bytes from ${offset} on (416): the blob is shorter than the expected ${desc.size} bytes`);
    }
    if (res.status !== 200 && res.status !== 206) {
      const retryAfter = parseRetryAfter(header(res, "retry-after"));
      throw withRetryAfter(await this.#failure(res, ref, what, `blob ${desc.digest} not found in ${ref.name}`), retryAfter);
    }
    return blobBody(res, desc, offset, what, ref.apiHost);
  }

  /** Closes pooled connections; in-flight streams are aborted. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** GET /v2/<path>/<sub> with authentication: cached value first, then one round of the server's challenge. */
  async #get(ref: Reference, sub: string, accept: string, extra: Record<string, string> = {}): Promise<HttpResponse> {
    const host = ref.apiHost;
    const scope = pullScope(ref.path);
    const url = `${this.#scheme}://${host}/v2/${ref.path}/${sub}`;
    let authorization = this.#auth.get(host, scope);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...extra, accept };
      if (authorization) headers.authorization = authorization;
      const res = await this.#transport.get(url, headers, host);
      if (res.status !== 401 || attempt === 1) return res;
      this.#auth.delete(host, scope);
      const challenges = parseChallenges(headerAll(res, "www-authenticate"));
      await res.body.dump();
      authorization = await this.#authorize(ref, challenges);
    }
  }

  /** Answers a 401 challenge: Bearer token (anonymous or with credentials) or Basic credentials. */
  async #authorize(ref: Reference, challenges: ReturnType<typeof parseChallenges>): Promise<string> {
    const host = ref.apiHost;
    const scope = pullScope(ref.path);
    const creds = this.#credentials(ref.domain);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      const { authorization, ttlSeconds } = await fetchToken(this.#transport, host, bearer, scope, creds);
      this.#auth.set(host, scope, authorization, ttlSeconds);
      return authorization;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (!creds) throw errorOf("Unauthorized", `registry ${host} requires credentials to pull ${ref.name}`);
      const authorization = basicAuthorization(creds);
      this.#auth.set(host, scope, authorization);
      return authorization;
    }
    throw errorOf("Unauthorized", `registry ${host} refused access to ${ref.name} without a supported auth challenge`);
  }

  async #failure(res: HttpResponse, ref: Reference, what: string, notFound: string): Promise<TsctrError> {
    const body = await readErrorBody(res.body);
    if (res.status === 401 && this.#credentials(ref.domain)) {
      return errorOf("Unauthorized", `registry ${ref.apiHost} refused the credentials for ${ref.name}`);
    }
    return httpError(ref.apiHost, res.status, what, notFound, body);
  }
}

/** The media type to record for resolved bytes: the server's if specific, else the document's, else by kind (OCI). */
function manifestMediaType(contentType: string | undefined, bytes: Uint8Array, kind: "manifest" | "index"): string {
  const ct = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (isManifestType(ct) || isIndexType(ct)) return ct;
  try {
    const mt = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown }).mediaType;
    if (typeof mt === "string" && (isManifestType(mt) || isIndexType(mt))) return mt;
  } catch {
    // detectManifestKind has already rejected invalid JSON
  }
  return kind === "index" ? MediaTypes.ociIndex : MediaTypes.ociManifest;
}
