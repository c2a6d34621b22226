/**
 * Pull progress: on a TTY a live table per blob (like `ctr pull`), redrawn at most 10 times a second;
 * off a TTY one plain line per state change.
 */
import type { PullEvent } from "../client/pull.ts";
import type { PushEvent } from "../client/push.ts";
import { humanSize } from "./render.ts";

interface Row {
  label: string;
  status: string;
  offset: number;
  size: number;
  /** When the first bytes of this blob were seen, and how many had arrived then (for the speed column). */
  since?: { at: number; offset: number };
}

/** Returns an event handler and a `finish` that draws the final state. */
export function pullProgress(out: NodeJS.WriteStream, quiet: boolean): { onEvent: (e: PullEvent) => void; finish: () => void } {
  if (quiet) return { onEvent: () => {}, finish: () => {} };
  return out.isTTY ? ttyProgress(out) : lineProgress(out);
}

function lineProgress(out: NodeJS.WriteStream) {
  const last = new Map<string, string>();
  const onEvent = (e: PullEvent) => {
    switch (e.type) {
      case "resolved":
        out.write(`${e.ref}: resolved ${e.digest} (${e.platform})\n`);
        break;
      case "blob":
        if (e.status === "waiting" || last.get(`b${e.digest}`) === e.status) return;
        last.set(`b${e.digest}`, e.status);
        out.write(`layer-${short(e.digest)}: ${e.status} ${humanSize(e.size)}\n`);
        break;
      case "unpack":
        out.write(`layer-${short(e.digest)}: ${e.status === "done" ? "unpacked" : e.status === "exists" ? "already unpacked" : "extracting"}\n`);
        break;
      case "resume":
      case "retry":
        out.write(`layer-${short(e.digest)}: ${resumeText(e)}\n`);
        break;
      case "done":
        out.write(`${e.ref}: done in ${(e.elapsedMs / 1000).toFixed(1)} s\n`);
        break;
    }
  };
  return { onEvent, finish: () => {} };
}

function ttyProgress(out: NodeJS.WriteStream) {
  const rows = new Map<string, Row>();
  let header = "";
  let drawn = 0;
  let lastDraw = 0;
  const started = Date.now();
  const draw = (force: boolean) => {
    const t = Date.now();
    if (!force && t - lastDraw < 100) return;
    lastDraw = t;
    const lines = [header];
    for (const r of rows.values()) {
      const pct = r.size > 0 ? Math.floor((r.offset / r.size) * 100) : 100;
      lines.push(`${r.label.padEnd(24)} ${r.status.padEnd(12)} ${`${humanSize(r.offset)}/${humanSize(r.size)}`.padEnd(24)} ${String(pct).padStart(3)}%  ${speed(r, t)}`);
    }
    lines.push(`elapsed: ${((t - started) / 1000).toFixed(1)} s`);
    if (drawn > 0) out.write(`\x1b[${drawn}A`);
    out.write(lines.map((l) => `\x1b[2K${l}\n`).join(""));
    drawn = lines.length;
  };
  const onEvent = (e: PullEvent) => {
    if (e.type === "resolved") header = `${e.ref}: resolved ${e.digest} (${e.platform})`;
    if (e.type === "blob") {
      const since = rows.get(e.digest)?.since ?? (e.status === "downloading" ? { at: Date.now(), offset: e.offset } : undefined);
      rows.set(e.digest, { label: `layer-${short(e.digest)}`, status: e.status, offset: e.offset, size: e.size, since });
    }
    if (e.type === "resume" || e.type === "retry") {
      const r = rows.get(e.digest);
      if (r) r.status = e.type === "retry" ? "retrying" : "resuming";
    }
    if (e.type === "unpack") {
      const r = rows.get(e.digest);
      if (r) r.status = e.status === "extracting" ? "extracting" : "unpacked";
    }
    draw(e.type !== "blob" || e.status !== "downloading");
  };
  return { onEvent, finish: () => draw(true) };
}

/** Average bytes per second since the row's first downloaded bytes, e.g. "3.2 MiB/s"; blank before that. */
function speed(r: Row, now: number): string {
  if (!r.since || r.offset <= r.since.offset) return "";
  const seconds = Math.max(now - r.since.at, 1) / 1000;
  return `${humanSize(Math.round((r.offset - r.since.offset) / seconds))}/s`;
}

/**
 * Push progress: one line per state change of each blob (exists, mounted, uploading, done) and per
 * manifest, on a TTY or not; nothing with `quiet`.
 */
export function pushProgress(out: NodeJS.WriteStream, quiet: boolean): (e: PushEvent) => void {
  if (quiet) return () => {};
  const uploading = new Set<string>();
  return (e: PushEvent) => {
    switch (e.type) {
      case "blob":
        if (e.status === "uploading") {
          if (uploading.has(e.digest)) return;
          uploading.add(e.digest);
        }
        out.write(`${blobLabel(e.mediaType)}-${short(e.digest)}: ${e.status}${e.from ? ` from ${e.from}` : ""} ${humanSize(e.size)}\n`);
        break;
      case "manifest":
        out.write(`manifest-${short(e.digest)}: pushed as ${e.reference}\n`);
        break;
      case "note":
        out.write(`${e.message}\n`);
        break;
      case "done":
        out.write(`${e.ref}: pushed ${e.digest} in ${(e.elapsedMs / 1000).toFixed(1)} s\n`);
        break;
    }
  };
}

function blobLabel(mediaType: string): string {
  return mediaType.includes("config") ? "config" : "layer";
}

/** "resuming at 3.0 MiB of 8.0 MiB" / "retrying at … in 0.4 s: <why>". */
function resumeText(e: Extract<PullEvent, { type: "resume" | "retry" }>): string {
  const at = `at ${humanSize(e.offset)} of ${humanSize(e.size)}`;
  return e.type === "resume" ? `resuming ${at} (kept from an earlier pull)` : `retrying ${at} in ${(e.delayMs / 1000).toFixed(1)} s: ${e.reason}`;
}

function short(digest: string): string {
  return digest.slice(7, 19);
}
