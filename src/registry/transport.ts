/**
 * The HTTP layer under the registry client: one undici Agent (connection pools per origin), GET requests
 * that follow redirects without carrying Authorization to another origin, and body readers that cap the
 * size (manifests, tokens); blob bodies are streamed by blob_body.ts.
 */
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { Agent, request } from "./undici_parts.ts";
import { errorOf } from "../errdefs/mod.ts";
import type { TsctrError } from "../errdefs/mod.ts";
import { errorCode, unreachable } from "./errors.ts";
import type { HostTls } from "./hosts.ts";
import { connectTls } from "./tls.ts";

export type Body = Dispatcher.ResponseData["body"];

export interface HttpResponse {
  status: number;
  /** The final URL after redirects. */
  url: string;
  headers: Dispatcher.ResponseData["headers"];
  body: Body;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** Drops a body without reading it and closes its connection (destroying undici's body emits an error). */
export function discard(body: Body): void {
  body.on("error", () => {});
  body.destroy();
}

/** The first value of a response header, or undefined. */
export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a response header (a header may be sent several times). */
export function headerAll(res: HttpResponse, name: string): string[] {
  const v = res.headers[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Certificate verification failures that a CA in the system's store (not Node's bundle) may resolve. */
const UNKNOWN_ISSUER = new Set(["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT"]);
const NO_TLS: HostTls = { skipVerify: false, ca: [], clients: [] };
const AGENT_OPTIONS = { connectTimeout: 30_000, headersTimeout: 60_000, bodyTimeout: 300_000, keepAliveTimeout: 4_000 };

export class Transport {
  readonly #userAgent: string;
  /** TLS settings by URL host (host[:port]), from hosts.toml or --skip-verify. */
  readonly #tls = new Map<string, HostTls>();
  /** One Agent for http, one for https with the default roots, one per host with its own TLS settings. */
  readonly #agents = new Map<string, Promise<Agent>>();

  constructor(opts: { userAgent: string }) {
    this.#userAgent = opts.userAgent;
  }

  /** Connects to `host` (host[:port] as in a URL) with TLS settings `tls` from now on (first call wins). */
  useTls(host: string, tls: HostTls): void {
    if (!this.#tls.has(host)) this.#tls.set(host, tls);
  }

  /**
   * The Agent for `u`, created on first use. Hosts without TLS settings of their own verify with Node's
   * bundled roots (free), or with `systemRoots` with those and the system's store too (loading it costs
   * 0.1–0.7 s, so only after the bundled roots did not know a certificate's issuer).
   */
  #agent(u: URL, systemRoots = false): Promise<Agent> {
    const own = this.#tls.get(u.host);
    const key = u.protocol !== "https:" ? "http" : own ? `https://${u.host}` : systemRoots ? "https+system" : "https";
    let agent = this.#agents.get(key);
    if (!agent) {
      const tls = own ?? (systemRoots ? NO_TLS : undefined);
      agent = tls ? connectTls(tls, u.host).then((connect) => new Agent({ ...AGENT_OPTIONS, connect })) : Promise.resolve(new Agent(AGENT_OPTIONS));
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /** One request; retried once with the system's roots when Node's bundled ones do not know the issuer. */
  async #request(url: string, headers: Record<string, string | string[]>): Promise<Dispatcher.ResponseData> {
    const u = new URL(url);
    try {
      return await request(url, { method: "GET", headers, dispatcher: await this.#agent(u) });
    } catch (e) {
      if (u.protocol !== "https:" || this.#tls.has(u.host) || !UNKNOWN_ISSUER.has(errorCode(e) ?? "")) throw e;
      return await request(url, { method: "GET", headers, dispatcher: await this.#agent(u, true) });
    }
  }

  /**
   * GETs `url`, following up to 10 redirects. Authorization is sent only to the origin of `url`: a redirect
   * to another origin (e.g. blob storage) drops it. Connection failures throw Unavailable naming `host`.
   * The caller must consume or dump the returned body.
   */
  async get(url: string, headers: Record<string, string | string[]>, host: string): Promise<HttpResponse> {
    const origin = new URL(url).origin;
    let current = url;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string | string[]> = { "user-agent": this.#userAgent, ...headers };
      if (new URL(current).origin !== origin) delete h.authorization;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.#request(current, h);
      } catch (e) {
        const u = new URL(current);
        throw unreachable(hop === 0 ? host : u.host, e, u.protocol === "https:");
      }
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode) || typeof location !== "string") {
        return { status: res.statusCode, url: current, headers: res.headers, body: res.body };
      }
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw errorOf("Unavailable", `registry ${host}: more than ${MAX_REDIRECTS} redirects (a redirect loop?) for ${url}`);
      current = new URL(location, current).toString();
    }
  }

  /**
   * Sends one request without following redirects (uploads answer 201/202 with a Location to follow by
   * hand). `body` is bytes or a stream of them, sent as it is read; set content-length in `headers` so an
   * aborted stream can never look complete. Connection failures throw Unavailable naming `host`.
   */
  async send(method: string, url: string, headers: Record<string, string | string[]>, host: string, body?: Uint8Array | AsyncIterable<Uint8Array>): Promise<HttpResponse> {
    let res: Dispatcher.ResponseData;
    try {
      const payload = body === undefined || body instanceof Uint8Array ? body : Readable.from(body, { objectMode: false });
      res = await request(url, { method: method as Dispatcher.HttpMethod, headers: { "user-agent": this.#userAgent, ...headers }, body: payload, dispatcher: await this.#agent(new URL(url)) });
    } catch (e) {
      throw unreachable(host, e, url.startsWith("https:"));
    }
    return { status: res.statusCode, url, headers: res.headers, body: res.body };
  }

  /** Closes every pooled connection; the transport cannot be used afterwards. */
  async close(): Promise<void> {
    const agents = await Promise.allSettled(this.#agents.values());
    await Promise.all(agents.map((a) => (a.status === "fulfilled" ? a.value.close() : undefined)));
  }
}

/**
 * Reads a whole body that must not exceed `max` bytes; past it the connection is dropped and `tooBig()` is
 * thrown. A broken transfer throws Unavailable naming `host`.
 */
export async function readCapped(body: Body, max: number, tooBig: () => TsctrError, host: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > max) {
        discard(body);
        throw tooBig();
      }
      chunks.push(chunk);
    }
  } catch (e) {
    throw unreachable(host, e);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Reads up to 64 KiB of a body as text (for error details); never throws. */
export async function readErrorBody(body: Body): Promise<string> {
  try {
    const bytes = await readCapped(body, 64 * 1024, () => errorOf("ResourceExhausted", "error body too large"), "");
    return new TextDecoder().decode(bytes);
  } catch {
    return "";
  }
}
