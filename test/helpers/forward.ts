/**
 * What the test proxies share (counting_proxy.ts, fault_proxy.ts): a server on a free loopback port, and one
 * request forwarded to the real registry behind it.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Starts `server` on a free 127.0.0.1 port and returns its "127.0.0.1:PORT". */
export async function listenLocal(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * Sends `req` (its method, path and body, with `headers`) to `upstream` ("host:port") and hands the answer to
 * `onResponse`, which writes it to `res`. A failing upstream drops the client's connection; a client that
 * goes away drops the upstream request.
 */
export function forward(req: IncomingMessage, res: ServerResponse, upstream: string, headers: IncomingHttpHeaders, onResponse: (upRes: IncomingMessage) => void): void {
  const [host, port] = upstream.split(":");
  const up = request({ host, port: Number(port), method: req.method, path: req.url, headers }, onResponse);
  up.on("error", () => res.destroy());
  req.on("aborted", () => up.destroy());
  req.pipe(up);
}
