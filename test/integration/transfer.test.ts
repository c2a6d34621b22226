/**
 * images export / import end to end, with the real tools on the other side: a private containerd (`ctr
 * images import|export`, `ctr run`), skopeo (docker-archive:, oci-archive:), runc; and archives broken on
 * purpose, each of which must fail in one line and leave the store exactly as before.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { readTar } from "../../src/archive/tar_reader.ts";
import { ErrorKinds } from "../../src/errdefs/mod.ts";
import { assertError, type Result } from "../helpers/assert.ts";
import { execFile } from "../../src/platform/exec.ts";
import { startContainerd, type PrivateContainerd } from "../helpers/containerd.ts";
import { pushBusyboxIndex } from "../helpers/oci_builder.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { DENO_SOURCE, makeTsctr, type Tsctr } from "../helpers/tsctr.ts";


function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r;
}

/** Everything an import may change: blobs, ingests, snapshots, staging, image names. */
async function storeState(t: Tsctr): Promise<string> {
  const list = async (p: string) => (await readdir(join(t.root, p)).catch(() => [] as string[])).sort().join(",");
  const images = (await t(["images", "ls", "-q"])).stdout;
  return JSON.stringify({
    blobs: await list("content/blobs/sha256"),
    ingest: await list("content/ingest"),
    committed: await list("snapshots/overlayfs/committed"),
    active: await list("snapshots/overlayfs/active"),
    tmp: await list("tmp"),
    images,
  });
}

interface Entry {
  name: string;
  data: Uint8Array;
  /** A symlink to this target instead of a file. */
  symlink?: string;
}

/** The entries of a (small) tar archive, in order. */
async function tarEntries(file: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const bytes = await readFile(file);
  const stream = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array(bytes)), c.close()) });
  for await (const e of readTar(stream)) {
    if (e.type !== "file") continue;
    const parts: Uint8Array[] = [];
    for await (const chunk of e.body) parts.push(chunk.slice());
    out.push({ name: e.path, data: Buffer.concat(parts) });
  }
  return out;
}

interface TarPack extends AsyncIterable<Uint8Array> {
  entry(header: { name: string; size?: number; type?: "symlink"; linkname?: string }, content?: Uint8Array): void;
  finalize(): void;
}
const tarStream = createRequire(import.meta.url)("tar-stream") as { pack(): TarPack };

/** Writes `entries` as a tar archive (test archives, built by hand). */
async function writeTar(file: string, entries: Entry[]): Promise<void> {
  const pack = tarStream.pack();
  for (const e of entries) {
    if (e.symlink !== undefined) pack.entry({ name: e.name, type: "symlink", linkname: e.symlink });
    else pack.entry({ name: e.name }, e.data);
  }
  pack.finalize();
  const parts: Uint8Array[] = [];
  for await (const c of pack) parts.push(c);
  await writeFile(file, Buffer.concat(parts));
}

const json = (e: Entry) => JSON.parse(new TextDecoder().decode(e.data));
const bytesOf = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

test("images export and import", { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-transfer-"));
  let reg: TestRegistry | undefined;
  let ctd: PrivateContainerd | undefined;
  const tsctrs: Tsctr[] = [];
  const fresh = async () => {
    const x = await makeTsctr();
    tsctrs.push(x);
    return x;
  };
  try {
    reg = await startRegistry();
    ctd = await startContainerd(join(dir, "containerd"));
    const ctr = (args: string[]) => ctd!.ctr(args);
    await pushBusyboxIndex(reg.host, "busybox", "1");
    const ref = `${reg.host}/busybox:1`;
    const src = await fresh();
    ok(await src(["pull", "-q", "--plain-http", ref]), "pull");
    const exported = join(dir, "busybox.tar");
    ok(await src(["images", "export", exported, ref]), "export");

    await t.test("the archive is an OCI layout with Docker's manifest.json", async () => {
      const entries = await tarEntries(exported);
      const names = entries.map((e) => e.name);
      assert.ok(names.includes("oci-layout") && names.includes("index.json") && names.includes("manifest.json"), names.join(" "));
      const index = json(entries.find((e) => e.name === "index.json")!);
      assert.equal(index.manifests.length, 1);
      assert.equal(index.manifests[0].annotations["io.containerd.image.name"], ref);
      assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "1");
      const [docker] = json(entries.find((e) => e.name === "manifest.json")!);
      assert.deepEqual(docker.RepoTags, [ref]);
      for (const p of [docker.Config, ...docker.Layers]) assert.ok(names.includes(p), `${p} is in the archive`);
    });

    await t.test("tsctr export → ctr images import → ctr run", async () => {
      ok(await ctr(["images", "import", exported]), "ctr import");
      const r = ok(await ctr(["run", "--rm", ref, "transfer-ctr-run", "echo", "ok"]), "ctr run");
      assert.equal(r.stdout.trim(), "ok");
    });

    await t.test("tsctr export → skopeo inspect oci-archive:", async () => {
      const r = ok(await execFile("skopeo", ["inspect", `oci-archive:${exported}`]), "skopeo inspect");
      assert.equal(JSON.parse(r.stdout).Architecture, "amd64");
    });

    await t.test("ctr images export (a partial multi-platform archive) → tsctr import → run", async () => {
      ok(await ctr(["images", "pull", "--plain-http", "--platform", "linux/amd64", ref]), "ctr pull");
      const file = join(dir, "ctr.tar");
      ok(await ctr(["images", "export", "--platform", "linux/amd64", file, ref]), "ctr export");
      const dst = await fresh();
      const before = await storeState(dst);
      assertError(await dst(["images", "import", "--all-platforms", file]), "FailedPrecondition", /lacks platforms linux\/arm64\/v8/);
      assert.equal(await storeState(dst), before, "a refused import leaves the store as before");
      const r = ok(await dst(["images", "import", file]), "import");
      assert.match(r.stdout, /imported .*busybox:1 sha256:[a-f0-9]{64} \(unpacked linux\/amd64\)/);
      assert.match(r.stdout, /note: the archive lacks linux\/arm64\/v8/);
      assertError(await dst(["images", "import", "--platform", "linux/arm64", file]), "NotFound", /holds no linux\/arm64\/v8 image \(it holds linux\/amd64/);
      const run = ok(await dst(["run", "--rm", ref, "transfer-from-ctr", "echo", "ok"]), "run");
      assert.equal(run.stdout, "ok\n");
    });

    await t.test("skopeo docker-archive: (uncompressed layers) → tsctr import → run", async () => {
      const file = join(dir, "skopeo-docker.tar");
      ok(await execFile("skopeo", ["copy", "--src-tls-verify=false", `docker://${ref}`, `docker-archive:${file}:busybox:skopeo`]), "skopeo copy");
      const dst = await fresh();
      ok(await dst(["images", "import", file]), "import");
      assert.equal((await dst(["images", "ls", "-q"])).stdout, "docker.io/library/busybox:skopeo\n");
      assert.equal(ok(await dst(["run", "--rm", "busybox:skopeo", "transfer-skopeo-d", "echo", "ok"]), "run").stdout, "ok\n");
    });

    await t.test("skopeo oci-archive: → tsctr import --base-name → run", async () => {
      const file = join(dir, "skopeo-oci.tar");
      ok(await execFile("skopeo", ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci-archive:${file}:v1`]), "skopeo copy");
      const dst = await fresh();
      assertError(await dst(["images", "import", join(dir, "absent.tar")]), "NotFound", /absent\.tar/);
      ok(await dst(["images", "import", "--base-name", "example.com/bb", file]), "import");
      assert.equal((await dst(["images", "ls", "-q"])).stdout, "example.com/bb:v1\n");
      assert.equal(ok(await dst(["run", "--rm", "example.com/bb:v1", "transfer-skopeo-o", "echo", "ok"]), "run").stdout, "ok\n");
    });

    await t.test("a gzip-compressed archive from stdin; --format docker; several images; --digests", async () => {
      const gz = join(dir, "busybox.tar.gz");
      await writeFile(gz, gzipSync(await readFile(exported)));
      const dst = await fresh();
      const r = ok(await execFile("sh", ["-c", `"$@" < ${gz}`, "sh", process.execPath, ...nodeArgs(dst), "images", "import", "--digests", "-"]), "import -");
      assert.match(r.stdout, /imported .*busybox:1/);
      assert.match((await dst(["images", "ls", "-q"])).stdout, /^docker\.io\/library\/import@sha256:[a-f0-9]{64}$/m);
      ok(await src(["pull", "-q", "--plain-http", "--platform", "linux/arm64", ref]), "pull arm64");
      const all = join(dir, "all.tar");
      ok(await src(["images", "export", "--all-platforms", all, ref]), "export --all-platforms");
      const dst2 = await fresh();
      ok(await dst2(["images", "import", "--all-platforms", all]), "import --all-platforms");
      const ls = (await dst2(["images", "ls"])).stdout;
      assert.match(ls, /linux\/amd64,linux\/arm64\/v8/);
      const docker = join(dir, "docker.tar");
      ok(await src(["images", "export", "--format", "docker", docker, ref]), "export --format docker");
      const names = (await tarEntries(docker)).map((e) => e.name);
      assert.ok(!names.includes("index.json") && names.includes("manifest.json") && names.includes("repositories"), names.join(" "));
      const dst3 = await fresh();
      ok(await dst3(["images", "import", docker]), "import docker");
      assert.equal(ok(await dst3(["run", "--rm", ref, "transfer-docker-fmt", "echo", "ok"]), "run").stdout, "ok\n");
    });

    await t.test("a legacy docker save archive (<id>/layer.tar, a symlinked duplicate layer) → import → run", async () => {
      const good = await tarEntries(exported);
      const [docker] = json(good.find((e) => e.name === "manifest.json")!) as Array<{ Config: string; Layers: string[] }>;
      const layerTar = gunzipSync(good.find((e) => e.name === docker!.Layers[0])!.data);
      const config = json(good.find((e) => e.name === docker!.Config)!);
      config.rootfs.diff_ids = [config.rootfs.diff_ids[0], config.rootfs.diff_ids[0]];
      const configBytes = bytesOf(config);
      const configName = `${createHash("sha256").update(configBytes).digest("hex")}.json`;
      const file = join(dir, "legacy.tar");
      await writeTar(file, [
        { name: "aaaa/VERSION", data: new TextEncoder().encode("1.0") },
        { name: "aaaa/layer.tar", data: layerTar },
        { name: "bbbb/layer.tar", data: new Uint8Array(0), symlink: "../aaaa/layer.tar" },
        { name: configName, data: configBytes },
        { name: "manifest.json", data: bytesOf([{ Config: configName, RepoTags: ["legacy:1"], Layers: ["aaaa/layer.tar", "bbbb/layer.tar"] }]) },
        { name: "repositories", data: bytesOf({ legacy: { "1": "bbbb" } }) },
      ]);
      const dst = await fresh();
      ok(await dst(["images", "import", file]), "import");
      assert.equal(ok(await dst(["run", "--rm", "legacy:1", "transfer-legacy", "echo", "ok"]), "run").stdout, "ok\n");
      const evil = join(dir, "legacy-evil.tar");
      await writeTar(evil, [
        { name: "aaaa/layer.tar", data: new Uint8Array(0), symlink: "../../etc/passwd" },
        { name: configName, data: configBytes },
        { name: "manifest.json", data: bytesOf([{ Config: configName, RepoTags: ["legacy:2"], Layers: ["aaaa/layer.tar"] }]) },
      ]);
      const before = await storeState(dst);
      assertError(await dst(["images", "import", evil]), "InvalidArgument", /link target "\.\.\/\.\.\/etc\/passwd" points outside the archive/);
      assert.equal(await storeState(dst), before);
    });

    await t.test("Deno: export to stdout | import from stdin", async () => {
      const deno = await makeTsctr(DENO_SOURCE);
      tsctrs.push(deno);
      const r = await execFile("sh", ["-c", `"$0" "$@" --root ${src.root} --state ${src.state} images export - ${ref} | "$0" "$@" --root ${deno.root} --state ${deno.state} images import -`, ...DENO_SOURCE]);
      ok(r, "export | import");
      assert.match(r.stdout, /imported .*busybox:1/);
      assert.equal(ok(await deno(["run", "--rm", ref, "transfer-deno", "echo", "ok"]), "run").stdout, "ok\n");
    });

    await t.test("an image pulled with --discard-blobs cannot be exported", async () => {
      const thin = await fresh();
      ok(await thin(["pull", "-q", "--plain-http", "--discard-blobs", ref]), "pull");
      const file = join(dir, "thin.tar");
      assertError(await thin(["images", "export", file, ref]), "FailedPrecondition", /not in the content store \(pulled with --discard-blobs\?\): pull the image again/);
      await assert.rejects(stat(file), "no file is left behind");
    });

    await t.test("bad archives fail in one line and leave the store as before", async () => {
      const good = await tarEntries(exported);
      const [docker] = json(good.find((e) => e.name === "manifest.json")!) as Array<{ Config: string; Layers: string[] }>;
      const layer = docker!.Layers[0]!;
      // An empty store: the blobs of a good import would otherwise be there already (and count as present).
      const dst = await fresh();
      const cases: Array<[string, () => Promise<string>, keyof typeof ErrorKinds, RegExp]> = [
        ["a missing blob", async () => tarOf("missing", good.filter((e) => e.name !== layer)), "DataLoss", /blob sha256:[a-f0-9]{64} \(layer 0 of .*\) is missing from the archive/],
        ["a blob whose digest does not match", async () => tarOf("corrupt", good.map((e) => (e.name === layer ? { ...e, data: flip(e.data) } : e))), "DataLoss", /data has digest sha256:/],
        ["a ../ path", async () => tarOf("dotdot", [...good, { name: "../evil", data: new Uint8Array(1) }]), "InvalidArgument", /"\.\.\/evil" points outside the archive/],
        ["an absolute path", async () => tarOf("absolute", [{ name: "/etc/evil", data: new Uint8Array(1) }, ...good]), "InvalidArgument", /absolute path "\/etc\/evil"/],
        ["a manifest.json that points outside", async () => tarOf("outside", [...good.filter((e) => e.name !== "index.json" && e.name !== "manifest.json"), { name: "manifest.json", data: bytesOf([{ Config: docker!.Config, RepoTags: ["x:1"], Layers: ["../../etc/passwd"] }]) }]), "InvalidArgument", /manifest.json\[0\]\.Layers\[0\]: path "\.\.\/\.\.\/etc\/passwd" points outside/],
        ["a manifest.json naming an absent file", async () => tarOf("absent", [...good.filter((e) => e.name !== "index.json" && e.name !== "manifest.json"), { name: "manifest.json", data: bytesOf([{ Config: docker!.Config, RepoTags: ["x:1"], Layers: ["nope/layer.tar"] }]) }]), "DataLoss", /names "nope\/layer.tar", which is missing/],
        ["a truncated tar", async () => cut(exported, "truncated.tar", 0.6), "DataLoss", /archive truncated/],
        ["a truncated gzip", async () => cut(join(dir, "busybox.tar.gz"), "truncated.tar.gz", 0.6), "DataLoss", /truncated|unexpected end|ends early/i],
        ["not an image archive", async () => tarOf("empty", [{ name: "hello.txt", data: new Uint8Array(3) }]), "InvalidArgument", /not an image archive/],
      ];
      const tarOf = async (name: string, entries: Entry[]) => {
        const f = join(dir, `${name}.tar`);
        await writeTar(f, entries);
        return f;
      };
      for (const [what, make, kind, re] of cases) {
        const before = await storeState(dst);
        const file = await make();
        assertError(await dst(["images", "import", file]), kind, re);
        assert.equal(await storeState(dst), before, `${what}: the store is as before`);
      }
      // and afterwards a good archive (zstd-compressed this time) imports and runs
      const zst = join(dir, "busybox.tar.zst");
      ok(await execFile("zstd", ["-q", "-o", zst, exported]), "zstd");
      ok(await dst(["images", "import", zst]), "import a zstd-compressed archive");
      assert.equal(ok(await dst(["run", "--rm", ref, "transfer-after-bad", "echo", "ok"]), "run").stdout, "ok\n");
    });
  } finally {
    for (const x of tsctrs) await x.cleanup();
    await ctd?.stop();
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  }

  function flip(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(data); // a copy (Buffer#slice would be a view)
    out[out.length >> 1]! ^= 0xff;
    return out;
  }

  async function cut(from: string, name: string, fraction: number): Promise<string> {
    const f = join(dir, name);
    await writeFile(f, await readFile(from));
    await truncate(f, Math.floor((await stat(f)).size * fraction));
    return f;
  }
});

/** The node arguments that run tsctr from source with `t`'s --root and --state (for shell redirections). */
function nodeArgs(t: Tsctr): string[] {
  return [join(import.meta.dirname, "..", "..", "src", "cli", "main.ts"), "--root", t.root, "--state", t.state];
}
