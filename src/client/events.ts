/** Container events of every namespace, in `<state>/events.log` (see runtime/events.ts). */
import { join } from "node:path";
import type { Context } from "./context.ts";
import { appendEvent, readEvents, type EventType, type TsctrEvent } from "../runtime/mod.ts";

/** The event log of the context's --state. */
export function eventsFile(ctx: Context): string {
  return join(ctx.state, "events.log");
}

/** Records that `type` happened to container `id` of the context's namespace; never fails the caller. */
export async function emitEvent(ctx: Context, type: EventType, id: string, status?: number): Promise<void> {
  await appendEvent(eventsFile(ctx), { type, namespace: ctx.namespace, id, status }).catch(() => {});
}

/** Events from now on (with `past`, also the recorded ones), until the caller stops reading. */
export function watchEvents(ctx: Context, opts: { past?: boolean } = {}): AsyncGenerator<TsctrEvent> {
  return readEvents(eventsFile(ctx), opts);
}
