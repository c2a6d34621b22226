/**
 * Push throughput and memory: an image with one large uncompressed layer of random bytes is pulled from a
 * local docker-registry, then pushed by tsctr (from source, on Node) to a fresh repository of a second one,
 * once in a single PUT and once per chunk size; prints wall time, MB/s and tsctr's peak RSS for each.
 *
 *   node test/bench/push.ts [--mib 192] [--runs 2]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { layerFromFiles, pushImage } from "../helpers/oci_builder.ts";
import { startRegistry } from "../helpers/registry.ts";
import { makeTsctr, NODE_SOURCE } from "../helpers/tsctr.ts";
import { timeOk } from "./measure.ts";

const { values } = parseArgs({ options: { mib: { type: "string", default: "192" }, runs: { type: "string", default: "2" } } });
const mib = Number(values.mib);
const runs = Number(values.runs);

const src = await startRegistry();
const dst = await startRegistry();
const tsctr = await makeTsctr();
try {
  const layer = await layerFromFiles([{ type: "file", path: "/data.bin", content: randomBytes(mib << 20) }], { compression: "none" });
  await pushImage(src.host, "bench/big", "1", { layers: [layer] });
  const ref = `${src.host}/bench/big:1`;
  await timeOk("pull", NODE_SOURCE[0]!, [...NODE_SOURCE.slice(1), "--root", tsctr.root, "--state", tsctr.state, "pull", "--plain-http", "-q", ref]);
  console.log(`layer: ${(layer.size / (1 << 20)).toFixed(1)} MiB, ${runs} runs each, tsctr from source on Node`);
  console.log("mode                     wall s   MB/s   peak RSS MiB");
  for (const [label, chunk] of [["one PUT", 1 << 30], ["chunks of 16 MiB", 16 << 20], ["chunks of 4 MiB", 4 << 20]] as const) {
    for (let i = 0; i < runs; i++) {
      const target = `${dst.host}/bench/p${chunk}-${i}:1`;
      const args = [...NODE_SOURCE.slice(1), "--root", tsctr.root, "--state", tsctr.state, "push", "--plain-http", "-q", "--chunk-size", String(chunk), target, ref];
      const t = await timeOk(`push ${label}`, NODE_SOURCE[0]!, args, { rss: true });
      const mbps = layer.size / 1e6 / (t.ms / 1000);
      console.log(`${label.padEnd(24)} ${(t.ms / 1000).toFixed(2).padStart(6)} ${mbps.toFixed(0).padStart(6)} ${((t.maxRssKb ?? 0) / 1024).toFixed(0).padStart(14)}`);
    }
  }
} finally {
  await tsctr.cleanup();
  await dst.stop();
  await src.stop();
}
