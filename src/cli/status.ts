/** How `ps` words a container's state, with Docker's phrases ("Up 3 minutes", "Exited (7) 2 seconds ago"). */
import type { ContainerStatus } from "../client/tasks.ts";

/** A duration the way Docker's go-units HumanDuration says it ("Less than a second", "About a minute"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** "Up 3 minutes", "Up 5 seconds (Paused)", "Exited (7) 2 seconds ago", "Exited", "Created". */
export function statusText(s: ContainerStatus, now = Date.now()): string {
  const since = (iso: string | undefined) => humanDuration(iso ? Math.max(0, now - Date.parse(iso)) : 0);
  switch (s.status) {
    case "running":
      return `Up ${since(s.startedAt)}`;
    case "paused":
      return `Up ${since(s.startedAt)} (Paused)`;
    case "stopped":
      return s.exit ? `Exited (${s.exit.status}) ${since(s.exit.exitedAt)} ago` : "Exited";
    case "created":
      return "Created";
  }
}

/** The command as `ps` shows it: quoted, cut to `width` characters with an ellipsis. */
export function commandText(args: readonly string[], width = 20): string {
  const text = args.join(" ");
  return JSON.stringify(text.length > width ? `${text.slice(0, width - 1)}…` : text);
}
