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
