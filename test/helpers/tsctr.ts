/**
 * Runs the tsctr CLI as a user would, with its own --root and --state in a temporary directory.
 * `command` chooses how: from source on Node (default), from source on Deno, or a built executable.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execFile, type ExecResult } from "../../src/platform/exec.ts";
import { unmount } from "../../src/mount/mod.ts";
import { execFile as run } from "../../src/platform/exec.ts";

// Containers of tests that are not about networking stay off the host's network (no tsctr0 bridge, no
// iptables rules): their tsctr runs default to --net none. test/integration/network.test.ts unsets it.
process.env.TSCTR_NET ??= "none";

export const REPO = resolve(import.meta.dirname, "..", "..");
export const NODE_SOURCE = [join(REPO, "node_modules", ".bin", "node"), join(REPO, "src", "cli", "main.ts")];
export const DENO_SOURCE = [join(REPO, "node_modules", "@deno", "linux-x64-glibc", "deno"), "run", "--allow-all", "--quiet", join(REPO, "src", "cli", "main.ts")];

export interface Tsctr {
  root: string;
  state: string;
  /** Runs `tsctr --root R --state S ...args`; never throws for a non-zero exit. */
  (args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<ExecResult>;
  /** Unmounts whatever is left under the state dir and deletes both dirs. */
  cleanup(): Promise<void>;
}

/** A tsctr runner on fresh --root/--state directories. */
export async function makeTsctr(command: string[] = NODE_SOURCE, opts: { wrap?: string[] } = {}): Promise<Tsctr> {
  const base = await mkdtemp(join(tmpdir(), "tsctr-cli-"));
  const root = join(base, "root");
  const state = join(base, "state");
  const [file, ...pre] = [...(opts.wrap ?? []), ...command];
  const fn = ((args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}) =>
    execFile(file!, [...pre, "--root", root, "--state", state, ...args], { env: o.env ?? process.env, input: o.input })) as Tsctr;
  fn.root = root;
  fn.state = state;
  fn.cleanup = async () => {
    const mounts = (await run("findmnt", ["-rn", "-o", "TARGET"])).stdout.split("\n").filter((m) => m.startsWith(base));
    for (const m of mounts.reverse()) await unmount(m).catch(() => {});
    await rm(base, { recursive: true, force: true });
  };
  return fn;
}
