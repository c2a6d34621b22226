/**
 * Memory of import and export: `node test/bench/transfer.ts [MiB=1024] [layers=4]`.
 *
 * Builds an OCI image-layout archive of MiB mebibytes (layers of pseudo-random, incompressible data, as
 * plain tars), then runs `tsctr images import` of it, `tsctr images export` of the image, and the import of
 * the gzip-compressed archive, each under /usr/bin/time, and prints wall time, throughput and peak RSS.
 * Streaming means the peak RSS stays the same whatever MiB is (try 256 and 2048).
 */
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { ArchiveWriter } from "../../src/transfer/archive_writer.ts";
import { blobPath } from "../../src/transfer/paths.ts";
import { buildIndexJson, OCI_LAYOUT_BYTES } from "../../src/transfer/layout.ts";
import type { Digest } from "../../src/digest/mod.ts";
import { MediaTypes } from "../../src/images/types.ts";
import { makeTsctr, NODE_SOURCE } from "../helpers/tsctr.ts";
import { timeOk } from "./measure.ts";

const MIB = Number(process.argv[2] ?? 1024);
const LAYERS = Number(process.argv[3] ?? 4);
const NAME = "bench.example/transfer:big";

/** `bytes` of deterministic pseudo-random data (AES-CTR over zeros), in 1 MiB chunks. */
function noise(seed: number, bytes: number): ReadableStream<Uint8Array> {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, seed), Buffer.alloc(16));
  const zeros = new Uint8Array(1 << 20);
  let left = bytes;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (left === 0) return c.close();
      const n = Math.min(left, zeros.length);
      left -= n;
      c.enqueue(new Uint8Array(cipher.update(zeros.subarray(0, n))));
    },
  });
}

/** Writes a layer tar holding one file of `bytes` to `file`; returns its digest and size. */
async function writeLayer(file: string, i: number, bytes: number): Promise<{ digest: Digest; size: number }> {
  const w = new ArchiveWriter();
  const hash = createHash("sha256");
  let size = 0;
  const out = pipeline(
    w.output,
    async function* (src: AsyncIterable<Uint8Array>) {
      for await (const c of src) {
        hash.update(c);
        size += c.byteLength;
        yield c;
      }
    },
    createWriteStream(file),
  );
  await w.addStream(`data/blob-${i}.bin`, bytes, noise(i + 1, bytes));
  w.finish();
  await out;
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

const bytesOf = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const sha = (b: Uint8Array): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** The archive: layers from files, then config, manifest, index.json. */
async function writeArchive(dir: string, archive: string): Promise<void> {
  const per = Math.floor((MIB << 20) / LAYERS);
  const layers: Array<{ digest: Digest; size: number; file: string }> = [];
  for (let i = 0; i < LAYERS; i++) {
    const file = join(dir, `layer-${i}.tar`);
    layers.push({ ...(await writeLayer(file, i, per)), file });
  }
  const config = bytesOf({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } });
  const manifest = bytesOf({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: sha(config), size: config.byteLength },
    layers: layers.map((l) => ({ mediaType: MediaTypes.ociLayer, digest: l.digest, size: l.size })),
  });
  const w = new ArchiveWriter();
  const out = pipeline(w.output, createWriteStream(archive));
  await w.addBytes("oci-layout", OCI_LAYOUT_BYTES);
  for (const l of layers) {
    await w.addStream(blobPath(l.digest), l.size, Readable.toWeb(createReadStream(l.file)) as unknown as ReadableStream<Uint8Array>);
    await rm(l.file);
  }
  await w.addBytes(blobPath(sha(config)), config);
  await w.addBytes(blobPath(sha(manifest)), manifest);
  await w.addBytes("index.json", buildIndexJson([{ name: NAME, target: { mediaType: MediaTypes.ociManifest, digest: sha(manifest), size: manifest.byteLength } }]));
  w.finish();
  await out;
}

const dir = await mkdtemp(join(tmpdir(), "tsctr-bench-transfer-"));
const tsctrs = [await makeTsctr(), await makeTsctr(), await makeTsctr()];
try {
  const archive = join(dir, "big.tar");
  process.stdout.write(`building a ${MIB} MiB archive of ${LAYERS} layers …\n`);
  await writeArchive(dir, archive);
  const size = (await stat(archive)).size;
  const [node, main] = NODE_SOURCE as [string, string];
  const report = (what: string, t: { ms: number; maxRssKb?: number }) =>
    process.stdout.write(`${what.padEnd(28)} ${(t.ms / 1000).toFixed(1).padStart(6)} s  ${((size / 2 ** 20) / (t.ms / 1000)).toFixed(0).padStart(5)} MiB/s  peak RSS ${((t.maxRssKb ?? 0) / 1024).toFixed(0)} MiB\n`);
  const [a, b, c] = tsctrs as [typeof tsctrs[0], typeof tsctrs[0], typeof tsctrs[0]];
  report("import (plain tar)", await timeOk("import", node, [main, "--root", a.root, "--state", a.state, "images", "import", archive], { rss: true }));
  const exported = join(dir, "exported.tar");
  report("export", await timeOk("export", node, [main, "--root", a.root, "--state", a.state, "images", "export", exported, NAME], { rss: true }));
  await rm(archive);
  report("import of the export", await timeOk("import", node, [main, "--root", b.root, "--state", b.state, "images", "import", exported], { rss: true }));
  const gz = join(dir, "exported.tar.gz");
  await pipeline(createReadStream(exported), createGzip({ level: 1 }), createWriteStream(gz));
  await rm(exported);
  report("import (gzip archive)", await timeOk("import", node, [main, "--root", c.root, "--state", c.state, "images", "import", gz], { rss: true }));
} finally {
  for (const t of tsctrs) await t.cleanup();
  await rm(dir, { recursive: true, force: true });
}
