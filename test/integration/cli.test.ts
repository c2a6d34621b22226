/**
 * tsctr end to end from source, as a user runs it: pull from a real docker-registry, images ls/rm, run with
 * real runc on real overlay mounts, and the one-line errors with distinct exit codes for bad input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry, htpasswdLine, type TestRegistry } from "../helpers/registry.ts";
import { layerFromFiles, pushBusyboxImage, pushBusyboxIndex, pushImage, busyboxRootfsLayer } from "../helpers/oci_builder.ts";
import { makeTsctr, DENO_SOURCE, NODE_SOURCE, type Tsctr } from "../helpers/tsctr.ts";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "../../src/platform/exec.ts";
import { assertError, type Result } from "../helpers/assert.ts";

async function blobFiles(t: Tsctr): Promise<string[]> {
  return (await readdir(join(t.root, "content", "blobs", "sha256")).catch(() => [])).sort();
}

async function committedSnapshots(t: Tsctr): Promise<string[]> {
  return (await readdir(join(t.root, "snapshots", "overlayfs", "committed")).catch(() => [])).sort();
}

test("pull and run end to end", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    await pushBusyboxIndex(reg.host, "busybox", "1");
    const ref = `${reg.host}/busybox:1`;

    await t.test("pull resolves the index to the host platform and reports progress off a TTY", async () => {
      const r = await tsctr(["pull", "--plain-http", ref]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /resolved sha256:[a-f0-9]{64} \(linux\/amd64\)/);
      assert.match(r.stdout, /unpacked/);
      assert.equal((await committedSnapshots(tsctr)).length, 1);
    });

    await t.test("images ls shows REF, TYPE, DIGEST, SIZE and PLATFORMS", async () => {
      const r = await tsctr(["images", "ls"]);
      assert.equal(r.code, 0, r.stderr);
      const [header, row] = r.stdout.trim().split("\n");
      assert.match(header!, /^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS$/);
      assert.match(row!, new RegExp(`^${ref.replace(/[.:/]/g, "\\$&")}\\s+application/vnd.oci.image.index.v1\\+json\\s+sha256:`));
      assert.match(row!, /linux\/amd64,linux\/arm64\/v8$/);
    });

    await t.test("a second pull downloads nothing and is idempotent", async () => {
      const before = await blobFiles(tsctr);
      const r = await tsctr(["pull", "--plain-http", ref]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /exists|already unpacked/);
      assert.deepEqual(await blobFiles(tsctr), before);
    });

    await t.test("run passes stdout through and returns the exit code; --rm leaves nothing", async () => {
      const echo = await tsctr(["run", "--rm", ref, "c-echo", "echo", "hello", "from", "busybox"]);
      assert.equal(echo.code, 0, echo.stderr);
      assert.equal(echo.stdout, "hello from busybox\n");
      const exit = await tsctr(["run", "--rm", ref, "c-exit", "sh", "-c", "exit 7"]);
      assert.equal(exit.code, 7);
      const ls = await tsctr(["containers", "ls", "-q"]);
      assert.equal(ls.stdout, "");
      assert.deepEqual(await readdir(join(tsctr.state, "default")), []);
      const mounts = await execFile("findmnt", ["-rn", "-o", "TARGET"]);
      assert.ok(!mounts.stdout.includes(tsctr.state), "no mount left under --state");
      assert.deepEqual(await readdir(join(tsctr.root, "snapshots", "overlayfs", "active")), []);
    });

    await t.test("run derives the process from the image config and --env", async () => {
      const r = await tsctr(["run", "--rm", "--env", "GREETING=hi there", ref, "c-env", "sh", "-c", 'echo "$GREETING $(id -u) $$ $(hostname) $PWD"']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "hi there 0 1 c-env /\n");
    });

    await t.test("the container is isolated: own pid namespace, read-only /sys, no mount without privileges", async () => {
      const r = await tsctr(["run", "--rm", ref, "c-iso", "sh", "-c", "ls /proc | grep -c '^[0-9]' ; touch /sys/x 2>/dev/null && echo sys-writable ; mount -t tmpfs none /mnt 2>/dev/null && echo mounted ; echo done"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.ok(Number(lines[0]) <= 3, `few processes visible, got ${lines[0]}`);
      assert.deepEqual(lines.slice(1), ["done"]);
    });

    await t.test("the rootfs is writable and a container without --rm keeps its record until containers rm", async () => {
      const r = await tsctr(["run", ref, "c-keep", "sh", "-c", "echo data > /tmp/f && cat /tmp/f"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "data\n");
      assertError(await tsctr(["run", ref, "c-keep", "true"]), "AlreadyExists", /container "c-keep": already exists/);
      assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "c-keep\n");
      assert.equal((await tsctr(["containers", "rm", "c-keep"])).code, 0);
      assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "");
    });

    await t.test("run -t gives the process a terminal (under script(1), which provides one)", async () => {
      const line = [NODE_SOURCE[0], NODE_SOURCE[1], "--root", tsctr.root, "--state", tsctr.state, "run", "--rm", "-t", ref, "c-tty", "sh", "-c", "'tty; exit 5'"].join(" ");
      const r = await execFile("script", ["-qec", line, "/dev/null"]);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stdout, /\/dev\/pts\/\d+/);
    });

    await t.test("signals reach the container: SIGTERM is forwarded, a third SIGINT kills it", async () => {
      const started = (id: string, script: string) => {
        const child = spawn(NODE_SOURCE[0]!, [NODE_SOURCE[1]!, "--root", tsctr.root, "--state", tsctr.state, "run", "--rm", ref, id, "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
        const out: string[] = [];
        child.stdout.on("data", (b: Buffer) => out.push(b.toString()));
        child.stderr.on("data", (b: Buffer) => out.push(b.toString()));
        const exited = new Promise<number>((res) => child.on("exit", (code) => res(code ?? -1)));
        const ready = new Promise<void>((res) => child.stdout.once("data", () => res()));
        return { child, exited, ready, out };
      };
      const term = started("c-term", "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done");
      await term.ready;
      term.child.kill("SIGTERM");
      assert.equal(await term.exited, 42, term.out.join(""));
      assert.match(term.out.join(""), /got-term/);
      // SIGINT is ignored before "ready" is printed (and stays ignored across exec): busybox sh running -c
      // catches SIGINT, so one landing before the exec would end the shell with 130 instead.
      const stubborn = started("c-int", "trap '' INT; echo ready; exec sleep 100");
      await stubborn.ready;
      for (let i = 0; i < 3; i++) {
        stubborn.child.kill("SIGINT");
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(await stubborn.exited, 137, stubborn.out.join(""));
      assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "");
    });

    await t.test("pull --discard-blobs keeps no compressed layer, and the image still runs (WASM digests)", async () => {
      const lean = await makeTsctr();
      try {
        const r = await lean(["--digest-engine", "wasm", "pull", "--plain-http", "--discard-blobs", ref]);
        assert.equal(r.code, 0, r.stderr);
        const leanBlobs = await blobFiles(lean);
        const layerHex = (await blobFiles(tsctr)).filter((h) => !leanBlobs.includes(h));
        assert.ok(layerHex.length >= 1, "the layer blob is absent from the lean store");
        const run = await lean(["run", "--rm", ref, "c-lean", "echo", "lean"]);
        assert.equal(run.stdout, "lean\n", run.stderr);
        // A pull that keeps blobs fetches the missing ones again (the layers are unpacked already), so the
        // image can be exported.
        const again = await lean(["pull", "--plain-http", ref]);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual((await blobFiles(lean)).sort(), (await blobFiles(tsctr)).sort(), "every blob is back");
        const outDir = await mkdtemp(join(tmpdir(), "lean-export-"));
        try {
          const exported = await lean(["images", "export", join(outDir, "lean.tar"), ref]);
          assert.equal(exported.code, 0, exported.stderr);
        } finally {
          await rm(outDir, { recursive: true, force: true });
        }
      } finally {
        await lean.cleanup();
      }
    });

    await t.test("images rm removes the name; run then says to pull", async () => {
      assert.equal((await tsctr(["images", "rm", ref])).code, 0);
      assert.equal((await tsctr(["images", "ls", "-q"])).stdout, "");
      assertError(await tsctr(["run", "--rm", ref, "c-gone", "true"]), "NotFound", /pull it first/);
    });
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("a multi-layer image with whiteouts, hardlinks and odd modes runs with the right tree", async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const base = await busyboxRootfsLayer("amd64");
    const l1 = await layerFromFiles([
      { type: "dir", path: "/data" },
      { type: "file", path: "/data/keep", content: "keep\n" },
      { type: "file", path: "/data/gone", content: "gone\n" },
      { type: "dir", path: "/opq" },
      { type: "file", path: "/opq/old", content: "old\n" },
      { type: "file", path: "/suid", content: "x", mode: 0o4755, uid: 1000, gid: 1000 },
      { type: "hardlink", path: "/data/link", target: "/data/keep" },
    ]);
    const l2 = await layerFromFiles([
      { type: "whiteout", path: "/data/gone" },
      { type: "opaque", path: "/opq" },
      { type: "file", path: "/opq/new", content: "new\n" },
    ]);
    await pushImage(reg.host, "layered", "1", { layers: [base, l1, l2], config: { config: { Cmd: ["/bin/sh"] } }, platform: { os: "linux", architecture: "amd64" } });
    const ref = `${reg.host}/layered:1`;
    // with the WASM inflater (the others use the default, node:zlib on the thread pool)
    assert.equal((await tsctr(["--decompress-engine", "wasm", "pull", "--plain-http", "--unpack-workers", "0", ref])).code, 0);
    assert.equal((await committedSnapshots(tsctr)).length, 3);
    const r = await tsctr(["run", "--rm", ref, "c-tree", "sh", "-c", "ls /data /opq; stat -c '%a %u:%g' /suid; stat -c '%h' /data/keep"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "/data:\nkeep\nlink\n\n/opq:\nnew\n4755 1000:1000\n2\n");
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("layers extracted concurrently, in one thread (the default) or on a worker (--unpack-workers 1), with either gzip engine, keep every byte", async () => {
  const reg = await startRegistry();
  const stores: Tsctr[] = [];
  try {
    const layers = [await busyboxRootfsLayer("amd64")];
    const expected: string[] = [];
    for (let l = 0; l < 3; l++) {
      const files = [];
      for (let f = 0; f < 40; f++) {
        const content = randomBytes(150_000 + f * 1000).toString("base64");
        files.push({ type: "file" as const, path: `/data/l${l}/f${f}`, content });
        expected.push(`${createHash("sha256").update(content).digest("hex")}  /data/l${l}/f${f}`);
      }
      layers.push(await layerFromFiles(files));
    }
    await pushImage(reg.host, "wide", "1", { layers, platform: { os: "linux", architecture: "amd64" } });
    const ref = `${reg.host}/wide:1`;
    for (const engine of ["native", "wasm"]) {
      for (const workers of [[], ["--unpack-workers", "1"]]) {
        const tsctr = await makeTsctr();
        stores.push(tsctr);
        const p = await tsctr(["--decompress-engine", engine, "pull", "--plain-http", ...workers, ref]);
        assert.equal(p.code, 0, p.stderr);
        const r = await tsctr(["run", "--rm", ref, "c-wide", "sh", "-c", "for l in 0 1 2; do for f in $(seq 0 39); do sha256sum /data/l$l/f$f; done; done"]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), expected, `${engine} engine with ${workers.join(" ") || "no workers"}`);
      }
    }
  } finally {
    for (const tsctr of stores) await tsctr.cleanup();
    await reg.stop();
  }
});

test("an image of 100 layers fits one overlay mount and sees every layer", async () => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const layers = [await busyboxRootfsLayer("amd64")];
    for (let i = 1; i < 100; i++) layers.push(await layerFromFiles([{ type: "file", path: `/layers/${i}`, content: `${i}\n` }]));
    await pushImage(reg.host, "tall", "1", { layers, platform: { os: "linux", architecture: "amd64" } });
    const ref = `${reg.host}/tall:1`;
    const p = await tsctr(["pull", "--plain-http", ref]);
    assert.equal(p.code, 0, p.stderr);
    const r = await tsctr(["run", "--rm", ref, "c-tall", "sh", "-c", "ls /layers | wc -l; cat /layers/1 /layers/99"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "99\n1\n99\n");
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("bad input: one-line errors, distinct exit codes, nothing half-written", async (t) => {
  const reg = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const img = await pushBusyboxImage(reg.host, "busybox", "amd64", "amd64");

    await t.test("an unknown image or tag is NotFound", async () => {
      assertError(await tsctr(["pull", "--plain-http", `${reg.host}/nope:1`]), "NotFound", /image not found/);
      assertError(await tsctr(["pull", "--plain-http", `${reg.host}/busybox:nope`]), "NotFound", /image not found/);
      assert.deepEqual(await blobFiles(tsctr), []);
    });

    await t.test("an unreachable registry is Unavailable", async () => {
      assertError(await tsctr(["pull", "--plain-http", "127.0.0.1:1/busybox:1"]), "Unavailable", /cannot reach registry 127\.0\.0\.1:1/);
    });

    await t.test("a malformed reference or platform is InvalidArgument", async () => {
      assertError(await tsctr(["pull", "--plain-http", "UPPER/Case"]), "InvalidArgument", /reference/i);
      assertError(await tsctr(["pull", "--plain-http", "--platform", "linux//", `${reg.host}/busybox:amd64`]), "InvalidArgument", /platform/i);
    });

    await t.test("no matching platform lists the platforms that exist", async () => {
      await pushBusyboxIndex(reg.host, "multi", "1");
      assertError(await tsctr(["pull", "--plain-http", "--platform", "linux/ppc64le", `${reg.host}/multi:1`]), "NotFound", /linux\/ppc64le.*available: linux\/amd64, linux\/arm64\/v8/);
    });

    await t.test("an unknown manifest media type is NotImplemented, and a registry's 5xx is Unavailable", async () => {
      // docker-registry refuses to store such a manifest, so a small server in the test serves it
      const body = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.example.thing.v1+json", config: img.manifest.config, layers: [] });
      const server = createServer((req, res) => {
        if (req.url === "/v2/") return void res.writeHead(200, { "content-type": "application/json" }).end("{}");
        if (req.url === "/v2/weird/manifests/1") return void res.writeHead(200, { "content-type": "application/vnd.example.thing.v1+json", "content-length": String(body.length) }).end(body);
        res.writeHead(503).end("down for maintenance");
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        assertError(await tsctr(["pull", "--plain-http", `${host}/weird:1`]), "NotImplemented", /application\/vnd\.example\.thing\.v1\+json/);
        assertError(await tsctr(["pull", "--plain-http", `${host}/down:1`]), "Unavailable", /503/);
      } finally {
        server.close();
      }
    });

    await t.test("a blob whose bytes do not match its digest is DataLoss and nothing is committed", async () => {
      const good = await busyboxRootfsLayer("amd64");
      const evil = await layerFromFiles([{ type: "file", path: "/evil", content: "evil" }]);
      const pushed = await pushImage(reg.host, "corrupt", "1", { layers: [good, evil], platform: { os: "linux", architecture: "amd64" } });
      const hex = evil.digest.slice(7);
      const file = join(reg.dir, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      const bytes = await readFile(file);
      bytes[bytes.length - 5]! ^= 0xff;
      await writeFile(file, bytes);
      const fresh = await makeTsctr();
      try {
        assertError(await fresh(["pull", "--plain-http", "--discard-blobs", `${reg.host}/corrupt:1`]), "DataLoss", /digest|size|crc|corrupt/i);
        // The good first layer may have been committed (verified, reusable); the corrupt second never is.
        assert.ok((await committedSnapshots(fresh)).length <= 1, "no layer committed without its blob verified");
        assertError(await fresh(["pull", "--plain-http", `${reg.host}/corrupt:1`]), "DataLoss", /digest|size|crc|corrupt/i);
        assert.ok(!(await blobFiles(fresh)).includes(hex), "the corrupt blob is not in the store");
        // A transfer the failure cancelled may keep its partial blob for the next pull; the corrupt one is discarded.
        for (const d of await readdir(join(fresh.root, "content", "ingest"))) {
          assert.doesNotMatch(await readFile(join(fresh.root, "content", "ingest", d, "ref"), "utf8"), new RegExp(hex), "the corrupt ingest is discarded");
        }
        assert.equal((await fresh(["images", "ls", "-q"])).stdout, "", "no image recorded");
        assert.ok(pushed.digest);
      } finally {
        await fresh.cleanup();
      }
    });

    await t.test("a layer past --max-layer-size is ResourceExhausted and nothing is committed", async () => {
      const small = await makeTsctr();
      try {
        assertError(await small(["pull", "--plain-http", "--max-layer-size", "100000", `${reg.host}/busybox:amd64`]), "ResourceExhausted", /decompresses past 100000 bytes/);
        assert.deepEqual(await committedSnapshots(small), []);
        assert.equal((await small(["images", "ls", "-q"])).stdout, "");
        assertError(await small(["pull", "--plain-http", "--max-layer-size", "lots", `${reg.host}/busybox:amd64`]), "InvalidArgument", /invalid number "lots"/);
      } finally {
        await small.cleanup();
      }
    });

    await t.test("run of an ID that exists is AlreadyExists; a bad ID is InvalidArgument", async () => {
      const ref = `${reg.host}/busybox:amd64`;
      assert.equal((await tsctr(["pull", "--plain-http", ref])).code, 0);
      assert.equal((await tsctr(["run", ref, "dup", "true"])).code, 0);
      assertError(await tsctr(["run", ref, "dup", "true"]), "AlreadyExists", /already exists/);
      assertError(await tsctr(["run", ref, "bad/id", "true"]), "InvalidArgument", /invalid container ID/);
      assertError(await tsctr(["run", "--env", "NOEQUALS", ref, "c-env-bad", "true"]), "InvalidArgument", /expected KEY=VALUE/);
      assert.equal((await tsctr(["containers", "rm", "dup"])).code, 0);
    });

    await t.test("runc missing says how to install it, and leaves no container behind", async () => {
      const ref = `${reg.host}/busybox:amd64`;
      assertError(await tsctr(["run", "--rm", ref, "norunc", "true"], { env: { ...process.env, TSCTR_RUNC: "/nonexistent/runc" } }), "FailedPrecondition", /runc not found.*apt-get install runc/);
      assert.equal((await tsctr(["containers", "ls", "-q"])).stdout, "");
    });

    await t.test("not root is PermissionDenied", async () => {
      const r = await execFile("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", join(process.cwd(), "node_modules/.bin/node"), "src/cli/main.ts", "--root", "/tmp/tsctr-nonroot", "pull", "--plain-http", `${reg.host}/busybox:amd64`]);
      assertError(r, "PermissionDenied", /must run as root/);
    });

    await t.test("Unauthorized when the registry wants credentials", async () => {
      const locked = await startRegistry({ htpasswd: await htpasswdLine("user", "secret") });
      try {
        assertError(await tsctr(["pull", "--plain-http", `${locked.host}/busybox:1`]), "Unauthorized", new RegExp(locked.host.replace(/\./g, "\\.")));
      } finally {
        await locked.stop();
      }
    });
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});

test("the same sources pull and run on Deno", async () => {
  const reg: TestRegistry = await startRegistry();
  const tsctr = await makeTsctr(DENO_SOURCE);
  try {
    await pushBusyboxImage(reg.host, "busybox", "amd64", "amd64");
    const ref = `${reg.host}/busybox:amd64`;
    const v = await tsctr(["version"]);
    assert.match(v.stdout, /Runtime:\s+deno 2\./);
    const p = await tsctr(["pull", "--plain-http", ref]);
    assert.equal(p.code, 0, p.stderr);
    const r = await tsctr(["run", "--rm", ref, "c-deno", "echo", "hello from deno"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from deno\n");
  } finally {
    await tsctr.cleanup();
    await reg.stop();
  }
});
