/**
 * The event log: one JSON object per line in `<state>/events.log`, appended by tsctr (create, delete, and
 * start and exit of a foreground run) and by the monitors (start and exit of a detached container):
 * `{"type":"exit","namespace":"default","id":"web","status":0,"time":"2026-01-02T03:04:05.000000000Z"}`.
 * Each line is one O_APPEND write, so concurrent writers never mix lines. tsctr moves a log past 1 MiB
 * to `events.log.1` before appending to it. `tsctr daemon` appends `restart` when a restart policy starts a
 * container again.
 */
import { appendFile, mkdir, rename, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { LineCursor, followLines } from "./container_log.ts";

/** What happened to a container, or (pull) to an image: then `id` is the image's name. */
export type EventType = "create" | "start" | "exit" | "delete" | "restart" | "pull";

/** One line of the event log. */
export interface TsctrEvent {
  type: EventType;
  namespace: string;
  id: string;
  /** exit only: the exit code, or 128+n for signal n (255 when unknown). */
  status?: number;
  time: string;
}

/** The size past which the event log is moved aside before the next append. */
export const EVENTS_MAX_SIZE = 1024 * 1024;

/** The members naming a container in its events, for the monitor: "namespace":"…","id":"…". */
export function eventFields(namespace: string, id: string): string {
  return JSON.stringify({ namespace, id }).slice(1, -1);
}

/** Appends one event to the log at `file` (rotating it first when it is past EVENTS_MAX_SIZE). */
export async function appendEvent(file: string, event: Omit<TsctrEvent, "time">): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const size = await stat(file).then((s) => s.size, () => 0);
  if (size > EVENTS_MAX_SIZE) await rename(file, `${file}.1`).catch(() => {});
  const { type, namespace, id, status } = event;
  const line = JSON.stringify({ type, namespace, id, ...(status === undefined ? {} : { status }), time: new Date().toISOString() });
  await appendFile(file, line + "\n");
}

/**
 * The events appended to `file` from now on (with `past`, also those it holds already), oldest first, until
 * `done()` resolves true. Lines that are not events are skipped.
 */
export async function* readEvents(file: string, opts: { past?: boolean; done?: () => Promise<boolean>; pollMs?: number } = {}): AsyncGenerator<TsctrEvent> {
  await mkdir(dirname(file), { recursive: true });
  await appendFile(file, ""); // exists from now on, so "from now" has a position
  const cursor = await LineCursor.open(file, !opts.past);
  for await (const line of followLines(file, cursor, opts)) {
    try {
      const e = JSON.parse(line) as TsctrEvent;
      if (typeof e.type === "string" && typeof e.id === "string") yield e;
    } catch {
      // a line cut by a crash: skip it
    }
  }
}
