/**
 * The two parts of undici the registry client uses, a connection-pooling Agent and the request API, loaded
 * from their own modules. undici's index also builds fetch, WebSocket, EventSource, mocks and HTTP caches,
 * and its cookie helpers wake Node's internal copy of undici (globalThis.Headers): all of it paid at the
 * start of every pull and push.
 */
import AgentClass from "undici/lib/dispatcher/agent.js";
import requestApi from "undici/lib/api/api-request.js";
import type { Agent as UndiciAgent, Dispatcher } from "undici";

export type Agent = UndiciAgent;
export const Agent: typeof UndiciAgent = AgentClass;

export type RequestOptions = Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher };

/** Sends one request to `url` through `opts.dispatcher`, as undici's request(url, opts) does; resolves with the status, headers and a body stream. */
export function request(url: string, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return requestApi.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}` });
}
