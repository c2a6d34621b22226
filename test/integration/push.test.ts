/**
 * `tsctr push`, `images tag` and `--format json` end to end: images pulled from one real docker-registry are
 * pushed to a second one behind a counting proxy (HEADs, mounts, PATCH chunks), corrupt or discarded blobs
 * fail cleanly, and the pushed image is pulled and run by containerd's own `ctr` with runc.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { startRegistry } from "../helpers/registry.ts";
import { startCountingProxy, type SeenRequest } from "../helpers/counting_proxy.ts";
import { busyboxRootfsLayer, layerFromFiles, pushBusyboxIndex, pushImage, busyboxPlatform } from "../helpers/oci_builder.ts";
import { makeTsctr, DENO_SOURCE, NODE_SOURCE } from "../helpers/tsctr.ts";
import { execFile } from "../../src/platform/exec.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { startTokenServer } from "../helpers/token_server.ts";
import { ErrorKinds } from "../../src/errdefs/mod.ts";
import { MediaTypes } from "../../src/images/types.ts";

type Result = { code: number; stdout: string; stderr: string };

function assertError(r: Result, kind: keyof typeof ErrorKinds, re: RegExp) {
  assert.equal(r.code, ErrorKinds[kind], `expected exit ${ErrorKinds[kind]} (${kind}), got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, re);
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
}

const blobUploads = (rs: SeenRequest[]) => rs.filter((r) => (r.method === "PATCH" || r.method === "PUT") && r.path.includes("/blobs/uploads/"));
const heads = (rs: SeenRequest[]) => rs.filter((r) => r.method === "HEAD" && r.path.includes("/blobs/"));
const mounts = (rs: SeenRequest[]) => rs.filter((r) => r.method === "POST" && r.search.includes("mount="));

async function manifestOf(host: string, repo: string, ref: string): Promise<{ mediaType: string; digest: string; body: { layers?: { digest: string }[]; manifests?: { digest: string }[] } }> {
  const accept = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerManifest, MediaTypes.dockerManifestList].join(", ");
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { accept } });
  assert.equal(res.status, 200, `GET manifest ${repo}:${ref}`);
  return { mediaType: res.headers.get("content-type") ?? "", digest: res.headers.get("docker-content-digest") ?? "", body: (await res.json()) as { layers?: { digest: string }[]; manifests?: { digest: string }[] } };
}

test("push to a second registry: skip, mount, chunks, and ctr runs the result", async (t) => {
  const src = await startRegistry();
  const dst = await startRegistry();
  const proxy = await startCountingProxy(dst.host);
  const tsctr = await makeTsctr();
  try {
    const { images, digest: index } = await pushBusyboxIndex(src.host, "busybox", "1");
    const srcRef = `${src.host}/busybox:1`;
    ok(await tsctr(["pull", "--plain-http", srcRef]));
    const app = `${proxy.host}/push/app:1`;

    await t.test("a partly stored index: --all-platforms names what is missing, nothing is sent", async () => {
      proxy.reset();
      const r = await tsctr(["push", "--plain-http", "--all-platforms", app, srcRef]);
      assertError(r, "FailedPrecondition", /linux\/arm64\/v8 \(manifest sha256:[0-9a-f]{64}\).*pull each platform first/);
      assert.equal(proxy.requests.length, 0);
    });

    await t.test("the default pushes the host platform's manifest, blobs first, under the tag", async () => {
      proxy.reset();
      const r = ok(await tsctr(["push", "--plain-http", app, srcRef]));
      assert.match(r.stdout, /pushing linux\/amd64 only: 1 of 2 platforms/);
      assert.match(r.stdout, /layer-[0-9a-f]{12}: uploading/);
      assert.match(r.stdout, /config-[0-9a-f]{12}: done/);
      assert.equal(heads(proxy.requests).length, 2, "one HEAD per blob (config, layer)");
      assert.equal(blobUploads(proxy.requests).length, 2, "one monolithic PUT per blob, no PATCH");
      const lastBlob = Math.max(...blobUploads(proxy.requests).map((x) => proxy.requests.indexOf(x)));
      const manifestPut = proxy.requests.findIndex((x) => x.method === "PUT" && x.path.includes("/manifests/"));
      assert.ok(manifestPut > lastBlob, "the manifest goes after its blobs");
      const m = await manifestOf(dst.host, "push/app", "1");
      assert.equal(m.digest, images.amd64.digest, "the same manifest bytes as pulled");
      assert.equal(m.mediaType, MediaTypes.ociManifest);
    });

    await t.test("a second push sends no blob: HEAD finds them", async () => {
      proxy.reset();
      const r = ok(await tsctr(["push", "--plain-http", app, srcRef]));
      assert.equal((r.stdout.match(/: exists /g) ?? []).length, 2);
      assert.equal(heads(proxy.requests).length, 2);
      assert.equal(blobUploads(proxy.requests).length, 0);
      assert.equal(proxy.requests.filter((x) => x.method === "POST").length, 0);
    });

    await t.test("a blob of another repository of the same registry is mounted, not uploaded", async () => {
      ok(await tsctr(["images", "tag", srcRef, app]));
      proxy.reset();
      const r = ok(await tsctr(["push", "--plain-http", `${proxy.host}/push/other:2`, app]));
      assert.match(r.stdout, /mounted from push\/app/);
      assert.equal(mounts(proxy.requests).length, 2);
      assert.ok(mounts(proxy.requests).every((x) => x.status === 201 && x.search.includes("from=push%2Fapp")));
      assert.equal(blobUploads(proxy.requests).length, 0);
      assert.equal((await manifestOf(dst.host, "push/other", "2")).digest, images.amd64.digest);
    });

    await t.test("a layer above --chunk-size goes in PATCH chunks with contiguous ranges", async () => {
      const big = await layerFromFiles([{ type: "file", path: "/big.bin", content: randomBytes(5 * 1024 * 1024 + 12345) }]);
      await pushImage(src.host, "big", "1", { layers: [await busyboxRootfsLayer("amd64"), big], platform: busyboxPlatform("amd64"), config: { config: { Cmd: ["sh"] } } });
      ok(await tsctr(["pull", "--plain-http", `${src.host}/big:1`]));
      proxy.reset();
      ok(await tsctr(["push", "--plain-http", "--chunk-size", String(1 << 20), `${proxy.host}/push/big:1`, `${src.host}/big:1`]));
      const sessions = new Map<string, SeenRequest[]>();
      for (const p of proxy.requests.filter((x) => x.method === "PATCH")) sessions.set(p.path, [...(sessions.get(p.path) ?? []), p]);
      // the registry answers each PATCH with a new Location of the same session: group by upload UUID
      const bySession = new Map<string, SeenRequest[]>();
      for (const [path, ps] of sessions) {
        const uuid = path.split("/blobs/uploads/")[1]!;
        bySession.set(uuid, [...(bySession.get(uuid) ?? []), ...ps]);
      }
      const layer = [...bySession.values()].find((ps) => ps.reduce((n, p) => n + p.bytes, 0) === big.size);
      assert.ok(layer, "one upload session carried the big layer");
      assert.equal(layer.length, Math.ceil(big.size / (1 << 20)));
      let next = 0;
      for (const p of layer) {
        const [a, b] = p.contentRange!.split("-").map(Number);
        assert.equal(a, next);
        assert.equal(b! - a! + 1, p.bytes);
        next = b! + 1;
      }
      const m = await manifestOf(dst.host, "push/big", "1");
      assert.equal(m.body.layers?.[1]?.digest, big.digest);
    });

    await t.test("the pushed image pulls and runs with containerd's ctr", async () => {
      const dir = await mkdtemp(join(tmpdir(), "push-ctrd-"));
      const ctd = await startContainerd(dir);
      try {
        const ref = `${dst.host}/push/big:1`;
        const pull = await ctd.ctr(["images", "pull", "--plain-http", ref]);
        assert.equal(pull.code, 0, pull.stderr);
        const run = await ctd.ctr(["run", "--rm", ref, `push-ctr-${process.pid}`, "sh", "-c", "echo ok; wc -c < /big.bin"]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout.trim().split("\n")[0], "ok");
        assert.equal(Number(run.stdout.trim().split("\n")[1]), 5 * 1024 * 1024 + 12345);
        await ctd.clean();
      } finally {
        await ctd.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });

    await t.test("relative Location headers are followed through POST, PATCH and PUT", async () => {
      const relative = await startCountingProxy(dst.host, { relativeLocations: true });
      try {
        ok(await tsctr(["push", "--plain-http", "--chunk-size", "200000", `${relative.host}/push/relative:1`, srcRef]));
        assert.ok(relative.requests.some((x) => x.method === "PATCH" && x.status === 202));
        assert.equal((await manifestOf(dst.host, "push/relative", "1")).digest, images.amd64.digest);
      } finally {
        await relative.stop();
      }
    });

    await t.test("with every platform stored, --all-platforms pushes both manifests, then the index", async () => {
      ok(await tsctr(["pull", "--plain-http", "--platform", "linux/arm64", srcRef]));
      proxy.reset();
      ok(await tsctr(["push", "--plain-http", "--all-platforms", `${proxy.host}/push/multi:1`, srcRef]));
      const puts = proxy.requests.filter((x) => x.method === "PUT" && x.path.includes("/manifests/")).map((x) => x.path.split("/manifests/")[1]);
      assert.deepEqual(puts, [images.amd64.digest, images.arm64.digest, "1"]);
      const top = await manifestOf(dst.host, "push/multi", "1");
      assert.equal(top.digest, index);
      assert.equal(top.mediaType, MediaTypes.ociIndex);
    });

    await t.test("push runs on Deno too", async () => {
      const deno = await makeTsctr(DENO_SOURCE);
      try {
        ok(await deno(["pull", "--plain-http", srcRef]));
        proxy.reset();
        ok(await deno(["push", "--plain-http", "--chunk-size", "300000", `${proxy.host}/push/deno:1`, srcRef]));
        assert.ok(proxy.requests.some((x) => x.method === "PATCH"));
        assert.equal((await manifestOf(dst.host, "push/deno", "1")).digest, images.amd64.digest);
      } finally {
        await deno.cleanup();
      }
    });
  } finally {
    await tsctr.cleanup();
    await proxy.stop();
    await dst.stop();
    await src.stop();
  }
});


test("push with Bearer tokens asks for push scope, and for pull on the mount source", async (t) => {
  const src = await startRegistry();
  const service = "tsctr-push-test";
  const issuer = "tsctr-push-issuer";
  const tokens = await startTokenServer(service, issuer);
  const reg = await startRegistry({ token: { realm: tokens.realm, service, issuer, rootCertBundle: tokens.certPem } });
  const tsctr = await makeTsctr();
  try {
    await pushBusyboxIndex(src.host, "busybox", "1");
    ok(await tsctr(["pull", "--plain-http", `${src.host}/busybox:1`]));
    const a = `${reg.host}/team/a:1`;
    ok(await tsctr(["images", "tag", `${src.host}/busybox:1`, a]));

    await t.test("a first push gets one token for repository:team/a:pull,push", async () => {
      tokens.requests.length = 0;
      ok(await tsctr(["push", "--plain-http", a]));
      assert.deepEqual([...new Set(tokens.requests.map((r) => r.scope))], ["repository:team/a:pull,push"]);
    });

    await t.test("a mount from team/a asks for push on team/b and pull on team/a in one token", async () => {
      tokens.requests.length = 0;
      const r = ok(await tsctr(["push", "--plain-http", `${reg.host}/team/b:1`, a]));
      assert.match(r.stdout, /mounted from team\/a/);
      assert.ok(tokens.requests.some((x) => x.scope === "repository:team/b:pull,push repository:team/a:pull"), JSON.stringify(tokens.requests));
    });
  } finally {
    await tsctr.cleanup();
    await reg.stop();
    await tokens.close();
    await src.stop();
  }
});

test("push refuses what it cannot send whole and right", async (t) => {
  const src = await startRegistry();
  const dst = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    await pushBusyboxIndex(src.host, "busybox", "1");
    const srcRef = `${src.host}/busybox:1`;

    await t.test("a layer pulled with --discard-blobs: FailedPrecondition naming it, nothing sent", async () => {
      ok(await tsctr(["-n", "push-discard", "pull", "--plain-http", "--discard-blobs", srcRef]));
      const r = await tsctr(["-n", "push-discard", "push", "--plain-http", `${dst.host}/push/discard:1`, srcRef]);
      assertError(r, "FailedPrecondition", /layer sha256:[0-9a-f]{64} \(linux\/amd64\) is not in the content store.*pull the image again without --discard-blobs/);
      const res = await fetch(`http://${dst.host}/v2/push/discard/tags/list`);
      assert.equal(res.status, 404);
      await res.arrayBuffer();
    });

    await t.test("pulling again without --discard-blobs stores the layer, and the push then works", async () => {
      const again = ok(await tsctr(["-n", "push-discard", "pull", "--plain-http", srcRef]));
      assert.match(again.stdout, /layer-[0-9a-f]{12}: done/);
      assert.match(again.stdout, /already unpacked/);
      ok(await tsctr(["-n", "push-discard", "push", "--plain-http", `${dst.host}/push/discard:1`, srcRef]));
      ok(await tsctr(["-n", "push-discard", "images", "rm", srcRef]));
    });

    await t.test("--platform names a platform whose manifest is not stored", async () => {
      ok(await tsctr(["pull", "--plain-http", srcRef]));
      const r = await tsctr(["push", "--plain-http", "--platform", "linux/arm64", `${dst.host}/push/arm:1`, srcRef]);
      assertError(r, "FailedPrecondition", /manifest sha256:[0-9a-f]{64} \(linux\/arm64\/v8\) is not in the content store/);
    });

    await t.test("a corrupt local blob is DataLoss and the registry commits nothing", async () => {
      const r0 = ok(await tsctr(["images", "ls", "--format", "json"]));
      const img = (JSON.parse(r0.stdout) as { name: string; digest: string }[]).find((i) => i.name === srcRef)!;
      assert.ok(img);
      const layer = (await manifestOf(src.host, "busybox", (await manifestOf(src.host, "busybox", img.digest)).body.manifests![0]!.digest)).body.layers![0]!.digest;
      const path = join(tsctr.root, "content", "blobs", "sha256", layer.slice(7));
      await chmod(path, 0o644);
      const fh = await open(path, "r+");
      await fh.write(Buffer.from([0x42]), 0, 1, 1000);
      await fh.close();
      for (const chunk of ["16777216", "65536"]) {
        const r = await tsctr(["push", "--plain-http", "--chunk-size", chunk, `${dst.host}/push/corrupt:1`, srcRef]);
        assertError(r, "DataLoss", new RegExp(`blob ${layer}: the local copy hashes to sha256:[0-9a-f]{64}; pull the image again`));
        const head = await fetch(`http://${dst.host}/v2/push/corrupt/blobs/${layer}`, { method: "HEAD" });
        assert.equal(head.status, 404, `--chunk-size ${chunk}: the registry must not hold the corrupt layer`);
      }
      const repos = await readdir(join(dst.dir, "data", "docker", "registry", "v2", "repositories", "push", "corrupt", "_manifests")).catch(() => []);
      assert.deepEqual(repos, [], "no manifest was pushed");
    });
  } finally {
    await tsctr.cleanup();
    await dst.stop();
    await src.stop();
  }
});

test("images tag and --format json", async (t) => {
  const src = await startRegistry();
  const tsctr = await makeTsctr();
  try {
    const { digest } = await pushBusyboxIndex(src.host, "busybox", "1");
    const srcRef = `${src.host}/busybox:1`;
    ok(await tsctr(["pull", "--plain-http", srcRef]));

    await t.test("tag gives the same target a new, normalised name", async () => {
      const r = ok(await tsctr(["images", "tag", srcRef, "mybox"]));
      assert.equal(r.stdout, "docker.io/library/mybox:latest\n");
      const list = JSON.parse(ok(await tsctr(["images", "ls", "--format", "json"])).stdout) as { name: string; digest: string }[];
      assert.deepEqual(list.map((i) => [i.name, i.digest]), [[srcRef, digest], ["docker.io/library/mybox:latest", digest]]);
    });

    await t.test("an existing destination is AlreadyExists unless --force", async () => {
      ok(await tsctr(["images", "tag", srcRef, `${src.host}/other:1`]));
      assertError(await tsctr(["images", "tag", srcRef, `${src.host}/other:1`]), "AlreadyExists", /other:1": already exists .*--force/);
      ok(await tsctr(["images", "tag", "--force", srcRef, `${src.host}/other:1`]));
      assertError(await tsctr(["images", "tag", "nosuch:1", "x:1"]), "NotFound", /nosuch:1/);
      assertError(await tsctr(["images", "tag", srcRef, "Bad Name"]), "InvalidArgument", /invalid reference/);
    });

    await t.test("images ls --format json: one array with stable fields; the table stays the default", async () => {
      const list = JSON.parse(ok(await tsctr(["images", "ls", "--format", "json"])).stdout) as Record<string, unknown>[];
      assert.equal(list.length, 3);
      assert.deepEqual(Object.keys(list[0]!).sort(), ["digest", "mediaType", "name", "platforms", "size"]);
      assert.deepEqual(list[0]!.platforms, ["linux/amd64", "linux/arm64/v8"]);
      assert.ok(typeof list[0]!.size === "number" && list[0]!.size > 0);
      assert.match(ok(await tsctr(["images", "ls"])).stdout, /^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS\n/);
      const bad = await tsctr(["images", "ls", "--format", "yaml"]);
      assert.equal(bad.code, 2, bad.stderr);
    });

    await t.test("pull on a TTY draws a table with a speed column", async () => {
      const fresh = await makeTsctr();
      try {
        const cmd = [...NODE_SOURCE, "--root", fresh.root, "--state", fresh.state, "pull", "--plain-http", srcRef].map((a) => `'${a}'`).join(" ");
        const r = await execFile("script", ["-qec", cmd, "/dev/null"]);
        assert.equal(r.code, 0, r.stdout);
        const rows = r.stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split(/\r?\n/).filter((l) => l.startsWith("layer-"));
        assert.ok(rows.length > 0, r.stdout);
        assert.match(rows.at(-1)!, /unpacked\s+\S+ \S+\/\S+ \S+\s+100%\s+[0-9.]+ (B|KiB|MiB|GiB)\/s$/);
      } finally {
        await fresh.cleanup();
      }
    });

    await t.test("containers ls --format json", async () => {
      assert.deepEqual(JSON.parse(ok(await tsctr(["containers", "ls", "--format", "json"])).stdout), []);
      const id = `push-json-${process.pid}`;
      ok(await tsctr(["run", srcRef, id, "true"]));
      try {
        const list = JSON.parse(ok(await tsctr(["containers", "ls", "--format", "json"])).stdout) as Record<string, unknown>[];
        assert.equal(list.length, 1);
        assert.equal(list[0]!.id, id);
        assert.equal(list[0]!.image, srcRef);
        assert.deepEqual(Object.keys(list[0]!).sort(), ["createdAt", "id", "image", "labels", "namespace", "runtime", "snapshotKey", "snapshotter"]);
      } finally {
        ok(await tsctr(["containers", "rm", id]));
      }
    });
  } finally {
    await tsctr.cleanup();
    await src.stop();
  }
});
