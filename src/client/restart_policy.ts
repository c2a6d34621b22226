/**
 * Restart policies as Docker defines them, recorded with the container (label `tsctr.restart`) for a
 * supervisor to act on: `no`, `always`, `on-failure[:N]` (at most N restarts after a non-zero exit),
 * `unless-stopped` (like always, but an explicit `stop` is not undone).
 */
import { errorOf } from "../errdefs/mod.ts";

/** The label that carries the policy. */
export const RESTART_LABEL = "tsctr.restart";

export interface RestartPolicy {
  name: "no" | "always" | "on-failure" | "unless-stopped";
  /** on-failure only: the most restarts; undefined for no limit. */
  maxRetries?: number;
}

/** Parses `--restart`; InvalidArgument for anything but the four policies (and a count only on on-failure). */
export function parseRestartPolicy(value: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(value);
  if (!m || (m[2] !== undefined && m[1] !== "on-failure")) {
    throw errorOf("InvalidArgument", `invalid restart policy "${value}": expected no, always, on-failure[:N] or unless-stopped`);
  }
  return { name: m[1] as RestartPolicy["name"], maxRetries: m[2] === undefined ? undefined : Number(m[2]) };
}

/** The container labels that record `--restart VALUE` (validated). */
export function restartLabels(value: string): Record<string, string> {
  parseRestartPolicy(value);
  return { [RESTART_LABEL]: value };
}

/**
 * Whether a supervisor should start a container again after it ended with `status`, given how many times
 * it was restarted already and whether it was stopped on purpose.
 */
export function shouldRestart(policy: RestartPolicy, status: number, restarts: number, stoppedExplicitly: boolean): boolean {
  if (stoppedExplicitly) return false;
  switch (policy.name) {
    case "no":
      return false;
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      return status !== 0 && (policy.maxRetries === undefined || restarts < policy.maxRetries);
  }
}

/**
 * Whether a starting daemon starts a container whose last exit it has already handled (or that was running
 * when the machine went down), as Docker does on daemon start: `always` yes (even after an explicit stop),
 * `unless-stopped` unless it was stopped on purpose, `on-failure` and `no` never.
 */
export function shouldStartWithDaemon(policy: RestartPolicy, stoppedExplicitly: boolean): boolean {
  return policy.name === "always" || (policy.name === "unless-stopped" && !stoppedExplicitly);
}

/** Docker's back-off: the first delay, its growth, its cap, and how long a run resets it. */
export const RESTART_BACKOFF = { firstMs: 100, factor: 2, maxMs: 60_000, resetAfterRunMs: 10_000 } as const;

/**
 * The delay before the next restart, given the previous delay (0 for none yet) and how long the container
 * ran: 100 ms, doubling up to 1 min, back to 100 ms after a run of 10 s or more.
 */
export function nextRestartDelay(previousMs: number, ranMs: number): number {
  const prev = ranMs >= RESTART_BACKOFF.resetAfterRunMs ? 0 : previousMs;
  return prev === 0 ? RESTART_BACKOFF.firstMs : Math.min(prev * RESTART_BACKOFF.factor, RESTART_BACKOFF.maxMs);
}
