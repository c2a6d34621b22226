/**
 * The registry client against a real docker-registry: resolving by tag and digest, index platform
 * selection, blob streaming, error kinds (404, unreachable, corrupted content), Basic auth with htpasswd and
 * Bearer tokens from the test token server (JWTs signed with a throw-away certificate).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort, htpasswdLine, startRegistry } from "../helpers/registry.ts";
import { startTokenServer } from "../helpers/token_server.ts";
import type { TestRegistry } from "../helpers/registry.ts";
import { layerFromFiles, pushBusyboxIndex, pushBusyboxImage, pushImage, pushIndex } from "../helpers/oci_builder.ts";
import { RegistryClient, parseReference, resumableBlob } from "../../src/registry/mod.ts";
import type { Credentials } from "../../src/registry/mod.ts";
import { parseIndex, parseManifest } from "../../src/images/parse.ts";
import { parsePlatform, selectManifest } from "../../src/images/platform.ts";
import { MediaTypes } from "../../src/images/types.ts";
import { digestOf } from "../../src/digest/mod.ts";
import type { Digest } from "../../src/digest/mod.ts";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ErrorKind } from "../../src/errdefs/mod.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  return new Uint8Array(Buffer.concat(chunks));
}

async function rejectsKind(p: Promise<unknown>, kind: ErrorKind, re: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isKind(e, kind), `expected ${kind}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

/** The file where docker-registry's filesystem driver keeps a blob. */
function blobPath(reg: TestRegistry, digest: Digest): string {
  const hex = digest.slice(7);
  return join(reg.dir, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

test("registry client, anonymous", async (t) => {
  const reg = await startRegistry();
  const client = new RegistryClient({ plainHttp: true });
  try {
    const amd64 = await pushBusyboxImage(reg.host, "busybox", "amd64", "amd64");
    const multi = await pushBusyboxIndex(reg.host, "busybox", "multi");

    await t.test("resolves a tag to the pushed manifest", async () => {
      const { descriptor, bytes } = await client.resolve(parseReference(`${reg.host}/busybox:amd64`));
      assert.equal(descriptor.digest, amd64.digest);
      assert.equal(descriptor.mediaType, MediaTypes.ociManifest);
      assert.equal(descriptor.size, amd64.manifestBytes.byteLength);
      assert.deepEqual(bytes, amd64.manifestBytes);
    });

    await t.test("resolves a digest reference, with or without a tag", async () => {
      for (const s of [`${reg.host}/busybox@${amd64.digest}`, `${reg.host}/busybox:amd64@${amd64.digest}`]) {
        const { descriptor } = await client.resolve(parseReference(s));
        assert.equal(descriptor.digest, amd64.digest, s);
      }
    });

    await t.test("resolves an index and selects amd64, arm64 and arm64/v8 (≡ arm64)", async () => {
      const ref = parseReference(`${reg.host}/busybox:multi`);
      const { descriptor, bytes } = await client.resolve(ref);
      assert.equal(descriptor.mediaType, MediaTypes.ociIndex);
      assert.equal(descriptor.digest, multi.digest);
      const index = parseIndex(bytes);
      assert.equal(selectManifest(index, parsePlatform("linux/amd64"), ref.toString()).digest, multi.images.amd64.digest);
      const arm = selectManifest(index, parsePlatform("linux/arm64"), ref.toString());
      assert.equal(arm.digest, multi.images.arm64.digest);
      assert.equal(selectManifest(index, parsePlatform("linux/arm64/v8"), ref.toString()).digest, arm.digest);
      const manifest = parseManifest(await client.fetchManifest(ref, arm));
      assert.deepEqual(manifest, multi.images.arm64.manifest);
      assert.throws(
        () => selectManifest(index, parsePlatform("linux/ppc64le"), ref.toString()),
        (e) => isKind(e, "NotFound") && (e as Error).message === `no manifest for linux/ppc64le in ${ref}; available: linux/amd64, linux/arm64/v8`,
      );
    });

    await t.test("resolves Docker schema 2 manifests and manifest lists", async () => {
      const layer = await layerFromFiles([{ type: "file", path: "/docker.txt", content: "docker media types\n" }]);
      const img = await pushImage(reg.host, "dockerish", null, { layers: [layer], docker: true, platform: { os: "linux", architecture: "arm", variant: "v6" } });
      await pushIndex(reg.host, "dockerish", "list", [img], { docker: true });
      const ref = parseReference(`${reg.host}/dockerish:list`);
      const { descriptor, bytes } = await client.resolve(ref);
      assert.equal(descriptor.mediaType, MediaTypes.dockerManifestList);
      const chosen = selectManifest(parseIndex(bytes), parsePlatform("linux/arm/v7"), ref.toString());
      assert.equal(chosen.mediaType, MediaTypes.dockerManifest);
      const manifest = parseManifest(await client.fetchManifest(ref, chosen));
      assert.equal(manifest.layers[0]!.mediaType, MediaTypes.dockerLayerGzip);
    });

    await t.test("streams a layer byte for byte and fetches the config through fetchManifest", async () => {
      const ref = parseReference(`${reg.host}/busybox:amd64`);
      const layerDesc = amd64.manifest.layers[0]!;
      const got = await collect(await client.fetchBlob(ref, layerDesc));
      assert.equal(got.byteLength, layerDesc.size);
      assert.equal(await digestOf(got), layerDesc.digest);
      const config = await client.fetchManifest(ref, amd64.configDescriptor);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(config)), amd64.config);
    });

    await t.test("a missing image or tag is NotFound naming the reference; a missing blob names the digest", async () => {
      await rejectsKind(client.resolve(parseReference(`${reg.host}/nope:1`)), "NotFound", new RegExp(`^image not found: ${reg.host}/nope:1$`));
      await rejectsKind(client.resolve(parseReference(`${reg.host}/busybox:nope`)), "NotFound", /^image not found: .*busybox:nope$/);
      const missing = `sha256:${"0".repeat(64)}` as Digest;
      await rejectsKind(client.fetchBlob(parseReference(`${reg.host}/busybox:amd64`), { mediaType: MediaTypes.ociLayerGzip, digest: missing, size: 1 }), "NotFound", new RegExp(`blob ${missing} not found`));
    });

    await t.test("an unreachable registry is Unavailable naming the host", async () => {
      const port = await freePort();
      await rejectsKind(client.resolve(parseReference(`127.0.0.1:${port}/x:1`)), "Unavailable", new RegExp(`^cannot reach registry 127\\.0\\.0\\.1:${port}: connection refused$`));
    });

    await t.test("TLS against a plain-HTTP registry fails as Unavailable with a hint", async () => {
      const tls = new RegistryClient({});
      try {
        await rejectsKind(tls.resolve(parseReference(`${reg.host}/busybox:amd64`)), "Unavailable", /cannot reach registry .*plain-http/);
      } finally {
        await tls.close();
      }
    });

    await t.test("a manifest whose stored content was altered is DataLoss, by tag and by digest", async () => {
      const layer = await layerFromFiles([{ type: "file", path: "/corrupt.txt", content: "to be altered\n" }]);
      const img = await pushImage(reg.host, "corrupt", "1", { layers: [layer], config: { config: { Labels: { case: "corrupt-manifest" } } } });
      // Same JSON, one more byte: the registry still serves it, but it no longer hashes to its digest.
      await writeFile(blobPath(reg, img.digest), Buffer.concat([img.manifestBytes, Buffer.from(" ")]));
      await rejectsKind(client.resolve(parseReference(`${reg.host}/corrupt:1@${img.digest}`)), "DataLoss", /content has digest .* not the one in the reference/);
      await rejectsKind(client.resolve(parseReference(`${reg.host}/corrupt:1`)), "DataLoss", /announced digest .* but the content has/);
      await rejectsKind(client.fetchManifest(parseReference(`${reg.host}/corrupt:1`), img.descriptor), "DataLoss", /larger than the expected|does not match/);
    });

    await t.test("a blob shorter than its descriptor: the transfer ends early, and resuming it is DataLoss", async () => {
      const layer = await layerFromFiles([{ type: "file", path: "/short.bin", content: randomBytes(4096) }]);
      const img = await pushImage(reg.host, "short", "1", { layers: [layer] });
      await truncate(blobPath(reg, layer.digest), layer.size - 10);
      const ref = parseReference(`${reg.host}/short:1`);
      await rejectsKind(collect(await client.fetchBlob(ref, img.manifest.layers[0]!)), "Unavailable", new RegExp(`ended the transfer at byte ${layer.size - 10} of ${layer.size}`));
      await rejectsKind(collect(resumableBlob(client, ref, img.manifest.layers[0]!)), "DataLoss", new RegExp(`has no bytes from ${layer.size - 10} on \\(416\\): the blob is shorter than the expected ${layer.size} bytes`));
    });
  } finally {
    await client.close();
    await reg.stop();
  }
});

test("registry client, Basic auth (htpasswd)", async (t) => {
  const alice: Credentials = { username: "alice", password: "s3cret" };
  const reg = await startRegistry({ htpasswd: await htpasswdLine(alice.username, alice.password) });
  try {
    const layer = await layerFromFiles([{ type: "file", path: "/private.txt", content: "for alice\n" }]);
    const img = await pushImage(reg.host, "private/app", "1", { layers: [layer], auth: alice });

    await t.test("without credentials the pull is Unauthorized", async () => {
      const client = new RegistryClient({ plainHttp: true });
      try {
        await rejectsKind(client.resolve(parseReference(`${reg.host}/private/app:1`)), "Unauthorized", /requires credentials to pull/);
      } finally {
        await client.close();
      }
    });

    await t.test("wrong credentials are Unauthorized and never quoted", async () => {
      const client = new RegistryClient({ plainHttp: true, credentials: () => ({ username: "alice", password: "wrong-pw" }) });
      try {
        await assert.rejects(client.resolve(parseReference(`${reg.host}/private/app:1`)), (e) => {
          assert.ok(isKind(e, "Unauthorized"));
          assert.match((e as Error).message, /refused the credentials/);
          assert.doesNotMatch((e as Error).message, /wrong-pw|alice/);
          return true;
        });
      } finally {
        await client.close();
      }
    });

    await t.test("with the right credentials it resolves and streams, asking the callback with the registry host", async () => {
      const asked: string[] = [];
      const client = new RegistryClient({ plainHttp: true, credentials: (h) => (asked.push(h), alice) });
      try {
        const ref = parseReference(`${reg.host}/private/app:1`);
        const { descriptor } = await client.resolve(ref);
        assert.equal(descriptor.digest, img.digest);
        const layer = img.manifest.layers[0]!;
        assert.equal(await digestOf(await collect(await client.fetchBlob(ref, layer))), layer.digest);
        assert.ok(asked.length >= 1 && asked.every((h) => h === reg.host));
      } finally {
        await client.close();
      }
    });
  } finally {
    await reg.stop();
  }
});

test("registry client, Bearer token auth", async (t) => {
  const service = "tsctr-test-registry";
  const issuer = "tsctr-test-issuer";
  const tokens = await startTokenServer(service, issuer);
  const reg = await startRegistry({ token: { realm: tokens.realm, service, issuer, rootCertBundle: tokens.certPem } }).catch(async (e) => {
    await tokens.close();
    throw e;
  });
  try {
    const layer = await layerFromFiles([{ type: "file", path: "/token.txt", content: "behind a token\n" }]);
    // The test holds the signing key, so it mints itself a push token.
    const push = { authorization: `Bearer ${tokens.mint("team/app", ["pull", "push"])}` };
    const img = await pushImage(reg.host, "team/app", "1", { layers: [layer], auth: push });

    await t.test("anonymous: follows the challenge to the token server, then reuses the token", async () => {
      const client = new RegistryClient({ plainHttp: true });
      try {
        const ref = parseReference(`${reg.host}/team/app:1`);
        tokens.requests.length = 0;
        const { descriptor } = await client.resolve(ref);
        assert.equal(descriptor.digest, img.digest);
        await client.fetchManifest(ref, img.configDescriptor);
        assert.equal(await digestOf(await collect(await client.fetchBlob(ref, img.manifest.layers[0]!))), layer.digest);
        assert.equal(tokens.requests.length, 1, "one token for every request of the same scope");
        assert.deepEqual(tokens.requests[0], { scope: "repository:team/app:pull", service, authorization: undefined });
      } finally {
        await client.close();
      }
    });

    await t.test("with credentials: the token request carries them as Basic", async () => {
      const client = new RegistryClient({ plainHttp: true, credentials: () => ({ username: "bob", password: "hunter2" }) });
      try {
        tokens.requests.length = 0;
        const { descriptor } = await client.resolve(parseReference(`${reg.host}/team/app:1`));
        assert.equal(descriptor.digest, img.digest);
        assert.equal(tokens.requests[0]?.authorization, `Basic ${Buffer.from("bob:hunter2").toString("base64")}`);
      } finally {
        await client.close();
      }
    });

    await t.test("a token service that refuses the credentials is Unauthorized", async () => {
      const client = new RegistryClient({ plainHttp: true, credentials: () => ({ username: "bob", password: "nope" }) });
      try {
        await rejectsKind(client.resolve(parseReference(`${reg.host}/team/app:1`)), "Unauthorized", /token service 127\.0\.0\.1:\d+ of registry .* refused the credentials for repository:team\/app:pull/);
      } finally {
        await client.close();
      }
    });
  } finally {
    await reg.stop();
    await tokens.close();
  }
});

/**
 * Conditions docker-registry cannot be made to produce, served by a small node:http registry front:
 * 5xx answers, oversized manifests, and blob redirects to another origin (object storage).
 */
test("registry client, misbehaving registries", async (t) => {
  const blob = randomBytes(10_000);
  const blobDigest = await digestOf(blob);
  const seenByStorage: (string | undefined)[] = [];
  const storage = createServer((req, res) => {
    seenByStorage.push(req.headers.authorization);
    res.writeHead(200, { "content-length": String(blob.byteLength) }).end(blob);
  });
  await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  const sAddr = storage.address();
  // "localhost" is another origin than "127.0.0.1" even on the same machine.
  const storageHost = `localhost:${typeof sAddr === "object" && sAddr ? sAddr.port : 0}`;
  const front = createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from("carol:pw").toString("base64")}`) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="front"' }).end();
      return;
    }
    const url = req.url ?? "";
    if (url.startsWith("/v2/broken/")) res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "maintenance" }] }));
    else if (url.startsWith("/v2/huge/manifests/")) res.writeHead(200, { "content-type": MediaTypes.ociManifest }).end(Buffer.alloc(5 * 1024 * 1024, 0x20));
    else if (url.startsWith("/v2/redirect/blobs/")) res.writeHead(307, { location: `http://${storageHost}/bucket/object?sig=1` }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  const fAddr = front.address();
  const frontHost = `127.0.0.1:${typeof fAddr === "object" && fAddr ? fAddr.port : 0}`;
  try {
    const withClient = async (fn: (c: RegistryClient) => Promise<void>) => {
      const client = new RegistryClient({ plainHttp: true, credentials: () => ({ username: "carol", password: "pw" }) });
      try {
        await fn(client);
      } finally {
        await client.close();
      }
    };

    await t.test("5xx is Unavailable naming the host, the status and what was asked", () =>
      withClient(async (c) => {
        await rejectsKind(c.resolve(parseReference(`${frontHost}/broken:1`)), "Unavailable", new RegExp(`^registry ${frontHost} answered 503 for manifest ${frontHost}/broken:1 \\(UNAVAILABLE: maintenance\\)$`));
      }));

    await t.test("a manifest over 4 MiB is ResourceExhausted", () =>
      withClient(async (c) => {
        await rejectsKind(c.resolve(parseReference(`${frontHost}/huge:1`)), "ResourceExhausted", /larger than the 4194304 byte limit/);
      }));

    await t.test("a blob redirect to another origin is followed without the Authorization header", () =>
      withClient(async (c) => {
        const got = await collect(await c.fetchBlob(parseReference(`${frontHost}/redirect:1`), { mediaType: MediaTypes.ociLayerGzip, digest: blobDigest, size: blob.byteLength }));
        assert.deepEqual(got, new Uint8Array(blob));
        assert.deepEqual(seenByStorage, [undefined]);
      }));

    await t.test("a ranged blob request follows the redirect too; storage that ignores Range has the head skipped", () =>
      withClient(async (c) => {
        seenByStorage.length = 0;
        const desc = { mediaType: MediaTypes.ociLayerGzip, digest: blobDigest, size: blob.byteLength };
        const got = await collect(await c.fetchBlob(parseReference(`${frontHost}/redirect:1`), desc, { offset: 4000 }));
        assert.deepEqual(got, new Uint8Array(blob.subarray(4000)));
        assert.deepEqual(seenByStorage, [undefined]);
      }));
  } finally {
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await new Promise<void>((resolve) => storage.close(() => resolve()));
  }
});
