/**
 * An OCI Distribution v2 pull client: resolves a reference to a manifest or index descriptor, fetches
 * manifests verified against their descriptors, and streams blobs. Auth is negotiated per request from the
 * registry's challenge: anonymous, Bearer tokens (cached per host and scope), or Basic with credentials.
 * Requests go to the registry's hosts (hosts.ts) in order: mirrors whose capabilities allow the operation,
 * then the upstream; a host that is unreachable or answers 404, 429 or 5xx passes the request to the next.
 *
 *   const client = new RegistryClient({ plainHttp: true });
 *   const ref = parseReference("127.0.0.1:5000/busybox:1");
 *   const { descriptor, bytes } = await client.resolve(ref);
 *   const layer = await client.fetchBlob(ref, manifest.layers[0]); // ReadableStream<Uint8Array>
 *   await client.close();
 */
import { errorOf, isKind, TsctrError } from "../errdefs/mod.ts";
import { digestOf, isDigest, verifyBytes } from "../digest/mod.ts";
import type { Descriptor } from "../images/types.ts";
import { MediaTypes } from "../images/types.ts";
import { detectManifestKind, isIndexType, isManifestType } from "../images/parse.ts";
import { VERSION } from "../version.ts";
import { AuthCache, basicAuthorization, fetchToken, parseChallenges, pullScope } from "./auth.ts";
import type { Credentials } from "./auth.ts";
import { httpError } from "./errors.ts";
import { defaultHost } from "./hosts.ts";
import type { Capability, RegistryHost } from "./hosts.ts";
import { discard, header, headerAll, readCapped, readErrorBody, Transport } from "./transport.ts";
import { blobBody } from "./blob_body.ts";
import { parseRetryAfter, withRetryAfter } from "./retry.ts";
import type { HttpResponse } from "./transport.ts";
import type { Reference } from "./reference.ts";

/** Manifests and indexes larger than this are refused (containerd uses the same limit). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");

export interface RegistryClientOptions {
  /** Talk http:// instead of https:// (local registries); used when `hosts` is not given. */
  plainHttp?: boolean;
  /** Skip TLS certificate verification; used when `hosts` is not given. */
  skipVerify?: boolean;
  /**
   * The hosts to try for a registry domain, mirrors first (see registryHosts in hosts.ts). Default: the
   * registry itself.
   */
  hosts?: (domain: string) => Promise<RegistryHost[]>;
  /**
   * Credentials for a registry domain as written in references ("docker.io", "localhost:5000"), or for a
   * mirror's host:port.
   */
  credentials?: (host: string) => Credentials | undefined;
  userAgent?: string;
}

/** A response from one of the registry's hosts, which host answered, and what the mirrors before it did. */
interface HostResponse {
  res: HttpResponse;
  host: RegistryHost;
  /** "host answered 404", "host: connection refused"… for each mirror passed over. */
  passed: string[];
}

export interface Resolved {
  /** mediaType (manifest or index), digest and size of the bytes below. */
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export class RegistryClient {
  readonly #transport: Transport;
  readonly #auth = new AuthCache();
  readonly #hosts: (domain: string) => Promise<RegistryHost[]>;
  readonly #hostsByDomain = new Map<string, Promise<RegistryHost[]>>();
  /** Mirrors that could not be reached: skipped for the rest of this client's life (a pull's many requests). */
  readonly #unreachable = new Set<string>();
  readonly #credentials: (host: string) => Credentials | undefined;

  constructor(opts: RegistryClientOptions = {}) {
    this.#hosts = opts.hosts ?? ((domain) => Promise.resolve([defaultHost(domain, opts)]));
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
    const { res, host: from, passed } = await this.#get(ref, `manifests/${ref.locator}`, MANIFEST_ACCEPT, "resolve");
    const apiHost = from.host;
    if (res.status !== 200) throw await this.#failure(res, ref, from, `manifest ${ref}`, `image not found: ${ref}`, passed);
    const length = Number(header(res, "content-length"));
    const tooBig = () => errorOf("ResourceExhausted", `manifest ${ref}: larger than the ${MAX_MANIFEST_SIZE} byte limit`);
    if (length > MAX_MANIFEST_SIZE) {
      discard(res.body);
      throw tooBig();
    }
    const bytes = await readCapped(res.body, MAX_MANIFEST_SIZE, tooBig, apiHost);
    const contentType = header(res, "content-type");
    if (looksLikeHtml(contentType, bytes)) {
      throw errorOf("Unavailable", `manifest ${ref}: registry ${apiHost} sent an HTML page (${contentType ?? "no content type"}), not a manifest; a proxy or captive portal in the way?`);
    }
    const kind = detectManifestKind(contentType, bytes);
    const digest = await digestOf(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw errorOf("DataLoss", `manifest ${ref}: content has digest ${digest}, not the one in the reference`);
    }
    const claimed = header(res, "docker-content-digest");
    if (claimed && isDigest(claimed) && claimed !== digest) {
      throw errorOf("DataLoss", `manifest ${ref}: registry ${apiHost} announced digest ${claimed} but the content has ${digest}`);
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
    const { res, host: from, passed } = isManifest ? await this.#get(ref, `manifests/${desc.digest}`, MANIFEST_ACCEPT, "pull") : await this.#get(ref, `blobs/${desc.digest}`, "*/*", "pull");
    const notFound = isManifest ? `image not found: ${ref.name}@${desc.digest}` : `blob ${desc.digest} not found in ${ref.name}`;
    if (res.status !== 200) throw await this.#failure(res, ref, from, what, notFound, passed);
    const bytes = await readCapped(res.body, desc.size, () => errorOf("DataLoss", `${what}: larger than the expected ${desc.size} bytes`), from.host);
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
    const { res, host: from, passed } = await this.#get(ref, `blobs/${desc.digest}`, "*/*", "pull", offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (res.status === 416) {
      await res.body.dump();
      throw errorOf("DataLoss", `${what}: registry ${from.host} has no bytes from ${offset} on (416): the blob is shorter than the expected ${desc.size} bytes`);
    }
    if (res.status !== 200 && res.status !== 206) {
      const retryAfter = parseRetryAfter(header(res, "retry-after"));
      throw withRetryAfter(await this.#failure(res, ref, from, what, `blob ${desc.digest} not found in ${ref.name}`, passed), retryAfter);
    }
    return blobBody(res, desc, offset, what, from.host);
  }

  /** The URL of `/v2/<repository>/<sub>` on the registry of `ref`. */
  async apiUrl(ref: Reference, sub: string): Promise<string> {
    const host = await this.#pushHost(ref);
    return `${host.scheme}://${host.host}${host.path}/${ref.path}/${sub}`;
  }

  /**
   * Sends `method url` (an apiUrl, or a Location the registry answered) with authorization for `scope`
   * (see pushScope): the cached value first, then one round of the server's challenge, which is only
   * possible when `body` is absent or bytes; a streamed body gets the 401 back. Authorization goes only to
   * the registry's own origin. The caller must consume or dump the body.
   */
  async send(ref: Reference, method: string, url: string, scope: string, opts: { headers?: Record<string, string>; body?: Uint8Array | AsyncIterable<Uint8Array> } = {}): Promise<HttpResponse> {
    const host = await this.#pushHost(ref);
    const sameOrigin = new URL(url).origin === new URL(await this.apiUrl(ref, "")).origin;
    let authorization = sameOrigin ? this.#auth.get(host.host, scope) : undefined;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string | string[]> = sameOrigin ? { ...host.headers, ...opts.headers } : { ...opts.headers };
      if (authorization) headers.authorization = authorization;
      const res = await this.#transport.send(method, url, headers, host.host, opts.body);
      const replayable = opts.body === undefined || opts.body instanceof Uint8Array;
      if (res.status !== 401 || attempt === 1 || !sameOrigin || !replayable) return res;
      this.#auth.delete(host.host, scope);
      const challenges = parseChallenges(headerAll(res, "www-authenticate"));
      await res.body.dump();
      authorization = await this.#authorize(host, ref, challenges, scope);
    }
  }

  /** The error for a failed answer `res` about `what` (NotFound carries `notFound`); reads the body. */
  async failure(res: HttpResponse, ref: Reference, what: string, notFound: string): Promise<TsctrError> {
    return this.#failure(res, ref, await this.#pushHost(ref), what, notFound, []);
  }

  /** The host pushes go to: the first of the registry's hosts with the "push" capability (the upstream by default). */
  async #pushHost(ref: Reference): Promise<RegistryHost> {
    const host = (await this.#hostsFor(ref.domain)).find((h) => h.capabilities.has("push"));
    if (!host) throw errorOf("FailedPrecondition", `registry ${ref.domain}: no host in its hosts.toml has the "push" capability`);
    return host;
  }

  /** Closes pooled connections; in-flight streams are aborted. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /**
   * Checks `creds` against registry `domain` the way a pull would authenticate: GET /v2/ on its upstream,
   * answering a Bearer challenge with a token fetched with the credentials (no scope) or a Basic challenge
   * with them. Resolves when the registry accepts; throws Unauthorized when it refuses.
   */
  async checkLogin(domain: string, creds: Credentials): Promise<void> {
    const host = (await this.#hostsFor(domain)).find((h) => h.upstream)!;
    const url = `${host.scheme}://${host.host}${host.path}/`;
    const first = await this.#transport.get(url, { ...host.headers }, host.host);
    if (first.status === 200) return void (await first.body.dump());
    if (first.status !== 401) throw httpError(host.host, first.status, "/v2/", `registry ${host.host} has no distribution API at ${host.path}/ (404)`, await readErrorBody(first.body));
    const challenges = parseChallenges(headerAll(first, "www-authenticate"));
    await first.body.dump();
    const bearer = challenges.find((c) => c.scheme === "bearer");
    let authorization: string;
    if (bearer) authorization = (await fetchToken(this.#transport, host.host, bearer, "", creds)).authorization;
    else if (challenges.some((c) => c.scheme === "basic")) authorization = basicAuthorization(creds);
    else throw errorOf("Unauthorized", `registry ${host.host} asks for an unsupported kind of authentication`);
    const res = await this.#transport.get(url, { ...host.headers, authorization }, host.host);
    const body = await readErrorBody(res.body);
    if (res.status === 401 || res.status === 403) throw errorOf("Unauthorized", `registry ${host.host} refused the credentials`);
    if (res.status !== 200) throw httpError(host.host, res.status, "/v2/", `registry ${host.host} has no distribution API at ${host.path}/ (404)`, body);
  }

  /** The hosts of `domain` (looked up once per client), with their TLS settings given to the transport. */
  #hostsFor(domain: string): Promise<RegistryHost[]> {
    let hosts = this.#hostsByDomain.get(domain);
    if (!hosts) {
      hosts = this.#hosts(domain).then((list) => {
        for (const h of list) if (h.scheme === "https" && hasOwnTls(h)) this.#transport.useTls(h.host, h.tls);
        return list;
      });
      this.#hostsByDomain.set(domain, hosts);
    }
    return hosts;
  }

  /**
   * GET <host>/v2/<path>/<sub> on the first of the registry's hosts allowed to `capability` that answers:
   * a host that is unreachable or answers 404, 429 or 5xx passes to the next; the last host's answer or
   * error is the caller's, and its message then says what the mirrors did. A mirror found unreachable is
   * not asked again by this client.
   */
  async #get(ref: Reference, sub: string, accept: string, capability: Capability, extra: Record<string, string> = {}): Promise<HostResponse> {
    const hosts = (await this.#hostsFor(ref.domain)).filter((h, i, all) => h.capabilities.has(capability) && (i === all.length - 1 || !this.#unreachable.has(h.host)));
    if (hosts.length === 0) throw errorOf("FailedPrecondition", `registry ${ref.domain}: no host in its hosts.toml has the "${capability}" capability`);
    const passed: string[] = [];
    for (const [i, host] of hosts.entries()) {
      const last = i === hosts.length - 1;
      try {
        const res = await this.#getFrom(host, ref, sub, accept, undefined, extra);
        if (last || !(res.status === 404 || res.status === 429 || res.status >= 500)) return { res, host, passed };
        await res.body.dump();
        passed.push(`${host.host} answered ${res.status}`);
      } catch (e) {
        if (last && e instanceof TsctrError && passed.length) throw errorOf(e.kind, `${e.message}${passedNote(passed)}`, e.cause);
        if (last || !isKind(e, "Unavailable")) throw e;
        if (!host.upstream) this.#unreachable.add(host.host);
        passed.push((e as Error).message.replace(/^cannot reach registry /, ""));
      }
    }
    throw errorOf("Internal", "unreachable: the host loop returns on its last host");
  }

  /**
   * One host: the cached Authorization for `scope` first, then one round of the host's challenge. Push
   * passes a push scope (repositoryScope in auth.ts), plus the source repository's pull scope to mount.
   */
  async #getFrom(host: RegistryHost, ref: Reference, sub: string, accept: string, scope = pullScope(ref.path), extra: Record<string, string> = {}): Promise<HttpResponse> {
    const url = `${host.scheme}://${host.host}${host.path}/${ref.path}/${sub}`;
    let authorization = this.#auth.get(host.host, scope);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string | string[]> = { ...host.headers, ...extra, accept };
      if (authorization) headers.authorization = authorization;
      const res = await this.#transport.get(url, headers, host.host);
      if (res.status !== 401 || attempt === 1) return res;
      this.#auth.delete(host.host, scope);
      const challenges = parseChallenges(headerAll(res, "www-authenticate"));
      await res.body.dump();
      authorization = await this.#authorize(host, ref, challenges, scope);
    }
  }

  /** The credentials for a host: the reference's domain for the upstream, the mirror's own host otherwise. */
  #credentialsFor(host: RegistryHost, ref: Reference): Credentials | undefined {
    return this.#credentials(host.upstream ? ref.domain : host.host);
  }

  /** Answers a 401 challenge: Bearer token (anonymous or with credentials) or Basic credentials. */
  async #authorize(host: RegistryHost, ref: Reference, challenges: ReturnType<typeof parseChallenges>, scope: string): Promise<string> {
    const creds = this.#credentialsFor(host, ref);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      const { authorization, ttlSeconds } = await fetchToken(this.#transport, host.host, bearer, scope, creds);
      this.#auth.set(host.host, scope, authorization, ttlSeconds);
      return authorization;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (!creds) throw errorOf("Unauthorized", `registry ${host.host} requires credentials to ${scope.includes(",push") ? "push to" : "pull"} ${ref.name}`);
      const authorization = basicAuthorization(creds);
      this.#auth.set(host.host, scope, authorization);
      return authorization;
    }
    throw errorOf("Unauthorized", `registry ${host.host} refused access to ${ref.name} without a supported auth challenge`);
  }

  async #failure(res: HttpResponse, ref: Reference, host: RegistryHost, what: string, notFound: string, passed: string[]): Promise<TsctrError> {
    const body = await readErrorBody(res.body);
    if (res.status === 401 && this.#credentialsFor(host, ref)) {
      return errorOf("Unauthorized", `registry ${host.host} refused the credentials for ${ref.name}${passedNote(passed)}`);
    }
    const err = httpError(host.host, res.status, what, notFound, body);
    return passed.length ? errorOf(err.kind, `${err.message}${passedNote(passed)}`) : err;
  }
}

/** True when a host's TLS differs from the default (verified against the trusted roots, no client certificate). */
function hasOwnTls(h: RegistryHost): boolean {
  return h.tls.skipVerify || h.tls.ca.length > 0 || h.tls.clients.length > 0;
}

/** " (mirrors before it: a answered 404; b: connection refused)", or "" when no mirror was passed over. */
function passedNote(passed: readonly string[]): string {
  return passed.length ? ` (mirrors before it: ${passed.join("; ")})` : "";
}

/** True when a manifest answer is an HTML page (a proxy's or captive portal's), judged by type or first byte. */
function looksLikeHtml(contentType: string | undefined, bytes: Uint8Array): boolean {
  if (/^\s*text\/html/i.test(contentType ?? "")) return true;
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return bytes[i] === 0x3c; // "<"
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
