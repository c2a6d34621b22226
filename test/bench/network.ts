/**
 * What a network costs `run --rm IMAGE ID true`: median wall time per --net mode (none, host, bridge,
 * bridge with a published port), from source on Node, inside a network namespace made for the benchmark
 * so the host's network is untouched. Needs root, runc, busybox-static, containernetworking-plugins.
 *
 *   node test/bench/network.ts [N]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createNetns, removeNetns } from "../../src/network/mod.ts";
import { execFile } from "../../src/platform/exec.ts";
import { pushBusyboxImage } from "../helpers/oci_builder.ts";
import { startRegistry } from "../helpers/registry.ts";
import { makeTsctr, NODE_SOURCE } from "../helpers/tsctr.ts";

const runs = Number(process.argv[2] ?? 7);
const reg = await startRegistry();
const tsctr = await makeTsctr();
const base = await mkdtemp(join(tmpdir(), "tsctr-nwbench-"));
const hostNs = join(base, "host");
try {
  await pushBusyboxImage(reg.host, "nwbench", "1", "amd64");
  const ref = `${reg.host}/nwbench:1`;
  const pulled = await tsctr(["pull", "-q", "--plain-http", ref]);
  if (pulled.code !== 0) throw new Error(pulled.stderr);
  await createNetns(hostNs);
  const cases: [string, string[]][] = [
    ["--net none", ["--net", "none"]],
    ["--net host", ["--net", "host"]],
    ["--net bridge", ["--net", "bridge"]],
    ["--net bridge -p 127.0.0.1:18080:80", ["--net", "bridge", "-p", "127.0.0.1:18080:80"]],
  ];
  process.stdout.write(`run --rm IMAGE ID true from source on Node, median of ${runs} (after one warm-up)\n`);
  for (const [name, flags] of cases) {
    const times: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const r = await execFile("nsenter", [`--net=${hostNs}`, ...NODE_SOURCE, "--root", tsctr.root, "--state", tsctr.state, "run", "--rm", ...flags, ref, `nw-bench-${i}`, "true"]);
      if (r.code !== 0) throw new Error(`${name}: ${r.stderr}`);
      if (i > 0) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    process.stdout.write(`${name.padEnd(36)} ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times.at(-1)!.toFixed(0)})\n`);
  }
} finally {
  await removeNetns(hostNs).catch(() => {});
  await tsctr.cleanup();
  await rm(base, { recursive: true, force: true });
  await reg.stop();
}
