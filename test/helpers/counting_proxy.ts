/**
 * An HTTP proxy for tests that forwards every request unchanged to a registry and records what it saw
 * (method, path, query, Content-Range, body bytes, status), so a test can count HEADs, PATCHes and uploads.
 *
 *   const proxy = await startCountingProxy(reg.host);   // proxy.host = "127.0.0.1:PORT"
 *   await tsctr(["push", "--plain-http", `${proxy.host}/app:1`]);
 *   proxy.requests.filter((r) => r.method === "PATCH").length;
 *   await proxy.stop();
 */
import { createServer } from "node:http";
import { forward, listenLocal } from "./forward.ts";

export interface SeenRequest {
  method: string;
  path: string;
  search: string;
  contentRange?: string;
  /** Request body bytes forwarded. */
  bytes: number;
  status?: number;
}

export interface CountingProxy {
  host: string;
  requests: SeenRequest[];
  /** Forgets what was recorded so far. */
  reset(): void;
  stop(): Promise<void>;
}

/**
 * Starts the proxy on a free 127.0.0.1 port in front of `target` ("127.0.0.1:5000"). With
 * `relativeLocations` it strips scheme and host from Location headers (as some registries send them).
 */
export async function startCountingProxy(target: string, opts: { relativeLocations?: boolean } = {}): Promise<CountingProxy> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const seen: SeenRequest = { method: req.method ?? "", path: url.pathname, search: url.search, bytes: 0 };
    const range = req.headers["content-range"];
    if (typeof range === "string") seen.contentRange = range;
    requests.push(seen);
    req.on("data", (c: Uint8Array) => (seen.bytes += c.byteLength));
    forward(req, res, target, req.headers, (upRes) => {
      seen.status = upRes.statusCode;
      const headers = { ...upRes.headers };
      if (opts.relativeLocations && headers.location) headers.location = headers.location.replace(/^https?:\/\/[^/]+/, "");
      res.writeHead(upRes.statusCode ?? 502, headers);
      upRes.pipe(res);
    });
  });
  return {
    host: await listenLocal(server),
    requests,
    reset: () => void requests.splice(0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
