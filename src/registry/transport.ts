/**
 * The HTTP layer under the registry client: one undici Agent (connection pools per origin), GET requests
 * that follow redirects without carrying Authorization to another origin, and body readers that cap the
 * size (manifests, tokens); blob bodies are streamed by blob_body.ts.
 */
import { Agent, request } from "undici";
import type { Dispatcher } from "undici";
import { errorOf } from "../errdefs/mod.ts";
import type { TsctrError } from "../errdefs/mod.ts";
import { unreachable } from "./errors.ts";

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

export class Transport {
  readonly #agent: Agent;
  readonly #userAgent: string;

  constructor(opts: { userAgent: string }) {
    this.#userAgent = opts.userAgent;
    this.#agent = new Agent({ connectTimeout: 30_000, headersTimeout: 60_000, bodyTimeout: 300_000, keepAliveTimeout: 4_000 });
  }

  /**
   * GETs `url`, following up to 10 redirects. Authorization is sent only to the origin of `url`: a redirect
   * to another origin (e.g. blob storage) drops it. Connection failures throw Unavailable naming `host`.
   * The caller must consume or dump the returned body.
   */
  async get(url: string, headers: Record<string, string>, host: string): Promise<HttpResponse> {
    const origin = new URL(url).origin;
    let current = url;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { "user-agent": this.#userAgent, ...headers };
      if (new URL(current).origin !== origin) delete h.authorization;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, { method: "GET", headers: h, dispatcher: this.#agent });
      } catch (e) {
        const u = new URL(current);
        throw unreachable(hop === 0 ? host : u.host, e, u.protocol === "https:");
      }
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode) || typeof location !== "string") {
        return { status: res.statusCode, url: current, headers: res.headers, body: res.body };
      }
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw errorOf("Unavailable", `registry ${host}: more than ${MAX_REDIRECTS} redirects for ${url}`);
      current = new URL(location, current).toString();
    }
  }

  /** Closes every pooled connection; the transport cannot be used afterwards. */
  async close(): Promise<void> {
    await this.#agent.close();
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
