/**
 * A fault-injecting HTTP proxy for tests, on 127.0.0.1 in front of a real registry: each GET of a chosen
 * blob takes the next fault from a script (then passes through), and the proxy counts the blob bytes it
 * really sent, so tests can compare what a pull cost with what a restart from zero would.
 *
 *   const proxy = await startFaultProxy(reg.host);
 *   proxy.script(layer.digest, [{ kind: "cut", after: 1 << 20 }, { kind: "status", status: 503 }]);
 *   await tsctr(["pull", "--plain-http", `${proxy.host}/repo:1`]);
 *   proxy.sent(layer.digest); // body bytes of that blob that left the proxy
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { forward, listenLocal } from "./forward.ts";

export type Fault =
  /** Sends `after` bytes of the body, then closes the connection (the client gets all of them, then EOF). */
  | { kind: "cut"; after: number }
  /** Sends `after` bytes of the body, then nothing more until the client gives up. */
  | { kind: "stall"; after: number }
  /** Announces Content-Length `length` (less than the real body), sends that many bytes and ends cleanly. */
  | { kind: "short-length"; length: number }
  /** Answers `status` (500, 503, 429…) with a small JSON error and an optional Retry-After. */
  | { kind: "status"; status: number; retryAfter?: string }
  /** Forwards without the Range header (the upstream answers 200 with the whole blob), then applies `then`. */
  | { kind: "ignore-range"; then?: Fault };

export interface BlobRequest {
  digest: string;
  range?: string;
  fault?: Fault["kind"];
  status: number;
}

export interface FaultProxy {
  /** "127.0.0.1:PORT" */
  host: string;
  /** Faults for the next GETs of blob `digest`, one per request in order; `always` answers every later one. */
  script(digest: string, faults: Fault[], always?: Fault): void;
  /** Body bytes of blob `digest` sent so far. */
  sent(digest: string): number;
  /** Every blob GET seen, in order. */
  readonly requests: BlobRequest[];
  /** Calls `fn` whenever bytes of blob `digest` are sent, with the running total. */
  onSent(digest: string, fn: (total: number) => void): void;
  /** Forgets scripts, counters and listeners. */
  reset(): void;
  close(): Promise<void>;
}

/** Starts a proxy to the plain-HTTP registry `upstream` ("127.0.0.1:PORT"). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const scripts = new Map<string, { faults: Fault[]; always?: Fault }>();
  const counts = new Map<string, number>();
  const listeners = new Map<string, (total: number) => void>();
  const requests: BlobRequest[] = [];
  const open = new Set<ServerResponse>();

  const count = (digest: string, n: number) => {
    const total = (counts.get(digest) ?? 0) + n;
    counts.set(digest, total);
    listeners.get(digest)?.(total);
  };

  const server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    const digest = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? "")?.[1];
    const s = digest && req.method === "GET" ? scripts.get(digest) : undefined;
    const fault = s ? (s.faults.shift() ?? s.always) : undefined;
    if (digest && req.method === "GET") requests.push({ digest, range: req.headers.range, fault: fault?.kind, status: fault?.kind === "status" ? fault.status : 0 });
    if (fault?.kind === "status") {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (fault.retryAfter) headers["retry-after"] = fault.retryAfter;
      res.writeHead(fault.status, headers).end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected fault" }] }));
      return;
    }
    relay(req, res, digest, fault);
  });

  const relay = (req: IncomingMessage, res: ServerResponse, digest: string | undefined, fault: Fault | undefined) => {
    const headers = { ...req.headers, host: upstream };
    let bodyFault = fault;
    if (fault?.kind === "ignore-range") {
      delete headers.range;
      bodyFault = fault.then;
    }
    forward(req, res, upstream, headers, (upRes) => {
      const h = { ...upRes.headers };
      if (bodyFault?.kind === "short-length") h["content-length"] = String(bodyFault.length);
      res.writeHead(upRes.statusCode ?? 502, h);
      if (!digest || req.method !== "GET" || (upRes.statusCode !== 200 && upRes.statusCode !== 206)) {
        upRes.pipe(res);
        return;
      }
      const limit = bodyFault?.kind === "cut" || bodyFault?.kind === "stall" ? bodyFault.after : bodyFault?.kind === "short-length" ? bodyFault.length : Infinity;
      let sent = 0;
      let stopped = false;
      upRes.on("data", (chunk: Buffer) => {
        if (stopped) return;
        const part = chunk.subarray(0, Math.max(0, limit - sent));
        sent += part.byteLength;
        const atLimit = sent >= limit;
        if (atLimit) {
          stopped = true;
          upRes.pause();
        }
        const ok = res.write(part, () => {
          count(digest, part.byteLength);
          if (!atLimit) return;
          if (bodyFault?.kind === "cut") res.socket?.end();
          else if (bodyFault?.kind === "short-length") res.end();
          // "stall": keep the connection open and silent; the client's close ends it
        });
        if (!ok && !stopped) {
          upRes.pause();
          res.once("drain", () => upRes.resume());
        }
      });
      upRes.on("end", () => {
        if (!stopped) res.end();
      });
      res.on("close", () => upRes.destroy());
    });
  };

  return {
    host: await listenLocal(server),
    requests,
    script(digest, faults, always) {
      scripts.set(digest, { faults: [...faults], always });
    },
    sent: (digest) => counts.get(digest) ?? 0,
    onSent(digest, fn) {
      listeners.set(digest, fn);
    },
    reset() {
      scripts.clear();
      counts.clear();
      listeners.clear();
      requests.length = 0;
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
