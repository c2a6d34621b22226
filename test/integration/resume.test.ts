/**
 * Resumable pulls through a fault-injecting proxy (test/helpers/fault_proxy.ts) in front of the real
 * docker-registry: broken transfers continue with Range requests inside one pull, a pull that gave up or
 * was killed with SIGKILL resumes from its partial ingest on the next run, and nothing unverified is
 * ever committed. Byte counts come from the proxy.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { startRegistry } from "../helpers/registry.ts";
import { startFaultProxy, type Fault, type FaultProxy } from "../helpers/fault_proxy.ts";
import { layerFromFiles, pushBusyboxImage, type Layer } from "../helpers/oci_builder.ts";
import { DENO_SOURCE, makeTsctr, NODE_SOURCE, type Tsctr } from "../helpers/tsctr.ts";
import { ErrorKinds } from "../../src/errdefs/mod.ts";

const MiB = 1 << 20;

type Result = { code: number; stdout: string; stderr: string };

function assertExit(r: Result, kind: keyof typeof ErrorKinds | "ok", re?: RegExp) {
  const want = kind === "ok" ? 0 : ErrorKinds[kind];
  assert.equal(r.code, want, `expected exit ${want} (${kind}), got ${r.code}: ${r.stderr}`);
  if (kind === "ok") return;
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  if (re) assert.match(lines[0]!, re);
}

async function list(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).sort();
}

/** Paths of the content store's ingest directories that hold a data file. */
async function ingests(t: Tsctr): Promise<string[]> {
  const base = join(t.root, "content", "ingest");
  const out: string[] = [];
  for (const d of await list(base)) if ((await list(join(base, d))).includes("data")) out.push(join(base, d));
  return out;
}

/** The committed snapshot that holds `path`, read back. */
async function committedFile(t: Tsctr, path: string): Promise<Buffer | undefined> {
  const base = join(t.root, "snapshots", "overlayfs", "committed");
  for (const d of await list(base)) {
    const f = await readFile(join(base, d, "fs", path)).catch(() => undefined);
    if (f) return f;
  }
  return undefined;
}

test("resumable pulls through a faulty network", async (t) => {
  const reg = await startRegistry();
  const proxy: FaultProxy = await startFaultProxy(reg.host);
  // Incompressible, so the gzip blob is as big as the data and cuts land in the middle of it.
  const bigData = randomBytes(8 * MiB);
  const big: Layer = await layerFromFiles([{ type: "dir", path: "/data" }, { type: "file", path: "/data/big.bin", content: bigData }]);
  const small: Layer = await layerFromFiles([{ type: "file", path: "/etc/resume-note", content: "resumed fine\n" }]);
  await pushBusyboxImage(reg.host, "resume", "1", "amd64", { extraLayers: [big, small] });
  const ref = `${proxy.host}/resume:1`;
  const fresh: Tsctr[] = [];
  const newTsctr = async () => {
    const x = await makeTsctr();
    fresh.push(x);
    return x;
  };
  const pull = (x: Tsctr, extra: string[] = []) => x(["pull", "--plain-http", "--stall-timeout", "2", ...extra, ref]);
  const assertPulled = async (x: Tsctr) => {
    assert.deepEqual(await committedFile(x, "data/big.bin"), bigData, "the big file is whole");
    assert.equal((await committedFile(x, "etc/resume-note"))?.toString(), "resumed fine\n");
    assert.ok((await list(join(x.root, "content", "blobs", "sha256"))).includes(big.digest.slice(7)));
    assert.deepEqual(await ingests(x), [], "no ingest left behind");
  };

  try {
    await t.test("a pull without faults costs exactly the blob", async () => {
      proxy.reset();
      const x = await newTsctr();
      assertExit(await pull(x), "ok");
      await assertPulled(x);
      assert.equal(proxy.sent(big.digest), big.size);
      t.diagnostic(`full pull: ${proxy.sent(big.digest)} bytes of the big blob`);
    });

    const faults: Array<[string, Fault[], (r: Result) => void]> = [
      ["connection cut twice mid-blob", [{ kind: "cut", after: 2 * MiB }, { kind: "cut", after: 3 * MiB }], () => {}],
      ["a stall with no bytes", [{ kind: "stall", after: 3 * MiB }], (r) => assert.match(r.stdout, /retrying at \d\.\d MiB .*sent no data for 2 s/)],
      ["a Content-Length shorter than the body", [{ kind: "short-length", length: 5 * MiB }], (r) => assert.match(r.stdout, /ended the transfer at byte 5242880/)],
      ["500 and 503 answers", [{ kind: "cut", after: 1 * MiB }, { kind: "status", status: 500 }, { kind: "status", status: 503 }], (r) => assert.match(r.stdout, /answered 503/)],
      ["429 with Retry-After in seconds and as an HTTP-date", [{ kind: "cut", after: 1 * MiB }, { kind: "status", status: 429, retryAfter: "1" }, { kind: "status", status: 429, retryAfter: new Date(Date.now() + 1000).toUTCString() }], (r) => assert.match(r.stdout, /retrying at \d+\.\d [KM]iB of 8\.0 MiB in 1\.0 s: .*rate limiting/)],
    ];
    for (const [name, script, check] of faults) {
      await t.test(`${name}: the pull completes and sends fewer bytes than a restart`, async () => {
        proxy.reset();
        proxy.script(big.digest, script);
        const x = await newTsctr();
        const r = await pull(x);
        assertExit(r, "ok");
        check(r);
        await assertPulled(x);
        const firstCut = script[0]!.kind === "cut" || script[0]!.kind === "stall" ? script[0]!.after : script[0]!.kind === "short-length" ? script[0]!.length : 0;
        assert.ok(proxy.sent(big.digest) < big.size + firstCut, `sent ${proxy.sent(big.digest)}, a restart costs ${big.size + firstCut}`);
        assert.ok(proxy.sent(big.digest) <= big.size + 256 * 1024, `sent ${proxy.sent(big.digest)} for a ${big.size} byte blob`);
        assert.ok(proxy.requests.filter((q) => q.digest === big.digest).slice(1).every((q) => q.range?.startsWith("bytes=")), "every retry asks for a range");
      });
    }

    await t.test("on Deno too: a cut transfer resumes with a Range request", async () => {
      proxy.reset();
      proxy.script(big.digest, [{ kind: "cut", after: 2 * MiB }]);
      const x = await makeTsctr(DENO_SOURCE);
      fresh.push(x);
      assertExit(await pull(x), "ok");
      await assertPulled(x);
      assert.ok(proxy.sent(big.digest) <= big.size + 256 * 1024);
      assert.match(proxy.requests.filter((q) => q.digest === big.digest)[1]?.range ?? "", /^bytes=\d+-$/);
    });

    await t.test("a server that ignores Range: the first bytes are skipped", async () => {
      proxy.reset();
      proxy.script(big.digest, [{ kind: "cut", after: 2 * MiB }, { kind: "ignore-range" }]);
      const x = await newTsctr();
      assertExit(await pull(x), "ok");
      await assertPulled(x);
      assert.equal(proxy.sent(big.digest), 2 * MiB + big.size);
    });

    let gaveUp: Tsctr;
    let keptBytes = 0;
    await t.test("a pull whose retry budget runs out fails with exit 14 and commits nothing unverified", async () => {
      proxy.reset();
      proxy.script(big.digest, [{ kind: "cut", after: 3 * MiB }], { kind: "status", status: 503 });
      gaveUp = await newTsctr();
      const r = await pull(gaveUp);
      assertExit(r, "Unavailable", new RegExp(`^tsctr: blob ${big.digest} of ${proxy.host}/resume: gave up after 6 failed attempts at byte \\d+ of ${big.size}: registry ${proxy.host} answered 503 for blob`));
      assert.ok(!(await list(join(gaveUp.root, "content", "blobs", "sha256"))).includes(big.digest.slice(7)), "the broken blob is not committed");
      assert.ok((await list(join(gaveUp.root, "snapshots", "overlayfs", "committed"))).length <= 1, "only the layer below it may be committed");
      assert.deepEqual(await list(join(gaveUp.root, "snapshots", "overlayfs", "active")), [], "no staging snapshot is left");
      assert.equal((await gaveUp(["images", "ls"])).stdout.includes("resume:1"), false);
      const kept = await ingests(gaveUp);
      assert.equal(kept.length, 1, "the big blob's partial ingest is kept");
      // What undici had buffered when the connection broke is lost with it: a few KiB at most.
      keptBytes = (await stat(join(kept[0]!, "data"))).size;
      assert.ok(keptBytes > 3 * MiB - 256 * 1024 && keptBytes <= 3 * MiB, `kept ${keptBytes} bytes`);
    });

    await t.test("the next pull resumes the kept ingest and downloads only the rest", async () => {
      proxy.reset();
      const r = await pull(gaveUp);
      assertExit(r, "ok");
      assert.match(r.stdout, /resuming at \d\.\d MiB of 8\.0 MiB \(kept from an earlier pull\)/);
      await assertPulled(gaveUp);
      assert.equal(proxy.sent(big.digest), big.size - keptBytes);
      assert.equal(proxy.requests.find((q) => q.digest === big.digest)?.range, `bytes=${keptBytes}-`);
      // The request sent while the ingest was prepared is the one that is read: no second request.
      assert.equal(proxy.requests.filter((q) => q.digest === big.digest).length, 1);
      t.diagnostic(`gave up with ${keptBytes} bytes kept; the next pull sent ${proxy.sent(big.digest)} of ${big.size}`);
    });

    await t.test("a pull killed with SIGKILL mid-blob resumes on the next run", async () => {
      proxy.reset();
      const half = Math.floor(big.size / 2);
      proxy.script(big.digest, [{ kind: "stall", after: half }]);
      const x = await newTsctr();
      const child = spawn(NODE_SOURCE[0]!, [NODE_SOURCE[1]!, "--root", x.root, "--state", x.state, "pull", "--plain-http", ref], { stdio: "ignore" });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      await new Promise<void>((resolve) => proxy.onSent(big.digest, (n) => n >= half && resolve()));
      // The proxy is silent now; wait until the client has written what it received into its ingest.
      for (let waited = 0; ; waited += 100) {
        const [ingest] = await ingests(x);
        const size = ingest ? (await stat(join(ingest, "data")).catch(() => undefined))?.size ?? 0 : 0;
        if (size >= half) break;
        assert.ok(waited < 20_000, `the client wrote only ${size} of ${half} bytes`);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill("SIGKILL");
      assert.equal(await exited, null);
      const firstRun = proxy.sent(big.digest);
      proxy.reset();
      const r = await pull(x);
      assertExit(r, "ok");
      await assertPulled(x);
      const secondRun = proxy.sent(big.digest);
      t.diagnostic(`killed at ${firstRun} bytes; the next run sent ${secondRun} of ${big.size} (a restart: ${big.size})`);
      assert.ok(secondRun <= big.size - half + 256 * 1024, `resumed pull sent ${secondRun}, the rest is ${big.size - half}`);
      assert.ok(firstRun + secondRun < 2 * big.size - half);
      const run = await x(["run", "--rm", ref, "resume-kill", "sh", "-c", "cat /etc/resume-note; wc -c < /data/big.bin"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `resumed fine\n${bigData.byteLength}\n`);
    });

    await t.test("a corrupt partial ingest fails with DataLoss, is discarded, and the next pull starts from zero", async () => {
      proxy.reset();
      proxy.script(big.digest, [{ kind: "cut", after: 4 * MiB }], { kind: "status", status: 503 });
      const x = await newTsctr();
      assertExit(await pull(x), "Unavailable");
      const [ingest] = await ingests(x);
      assert.ok(ingest);
      const kept = (await stat(join(ingest, "data"))).size;
      const fh = await open(join(ingest, "data"), "r+");
      await fh.write(Buffer.from("corrupted on disk"), 0, 17, 2 * MiB);
      await fh.close();
      proxy.reset();
      assertExit(await pull(x), "DataLoss", new RegExp(`layer ${big.digest.replace(":", "\\:")}|content ${big.digest.replace(":", "\\:")}`));
      assert.ok(proxy.sent(big.digest) <= big.size - kept, "the corrupt pull fetched at most the rest, once");
      assert.deepEqual(await ingests(x), [], "the corrupt ingest is discarded");
      assert.ok(!(await list(join(x.root, "content", "blobs", "sha256"))).includes(big.digest.slice(7)));
      proxy.reset();
      assertExit(await pull(x), "ok");
      await assertPulled(x);
      assert.equal(proxy.sent(big.digest), big.size);
    });
  } finally {
    for (const x of fresh) await x.cleanup();
    await proxy.close();
    await reg.stop();
  }
});
