import { test } from "node:test";
import assert from "node:assert/strict";
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest } from "../../src/images/parse.ts";
import { MediaTypes } from "../../src/images/types.ts";
import { isKind } from "../../src/errdefs/mod.ts";
import type { ErrorKind } from "../../src/errdefs/mod.ts";

const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const dg = (c: string) => `sha256:${c.repeat(64)}`;

const manifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: dg("c"), size: 123 },
  layers: [
    { mediaType: MediaTypes.ociLayerGzip, digest: dg("1"), size: 1000 },
    { mediaType: MediaTypes.ociLayer, digest: dg("2"), size: 0 },
  ],
};
const index = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    { mediaType: MediaTypes.ociManifest, digest: dg("a"), size: 500, platform: { os: "linux", architecture: "amd64" } },
    { mediaType: MediaTypes.ociManifest, digest: dg("b"), size: 501, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
  ],
};
const config = {
  architecture: "amd64",
  os: "linux",
  config: { Env: ["PATH=/bin"], Cmd: ["sh"], Entrypoint: null, WorkingDir: "/", User: "0:0" },
  rootfs: { type: "layers", diff_ids: [dg("d"), dg("e")] },
};

function throwsKind(fn: () => unknown, kind: ErrorKind, re: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(isKind(e, kind), `expected ${kind}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

test("parseManifest accepts OCI and Docker manifests", () => {
  const m = parseManifest(enc(manifest));
  assert.equal(m.layers.length, 2);
  assert.equal(m.config.digest, dg("c"));
  const docker = {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: { mediaType: MediaTypes.dockerConfig, digest: dg("c"), size: 1 },
    layers: [{ mediaType: MediaTypes.dockerLayerGzip, digest: dg("1"), size: 2 }],
  };
  assert.equal(parseManifest(enc(docker)).mediaType, MediaTypes.dockerManifest);
  const { mediaType: _, ...noType } = manifest;
  assert.equal(parseManifest(enc(noType)).mediaType, undefined);
});

test("parseManifest rejects bad input with clear errors", () => {
  throwsKind(() => parseManifest(enc("{nope")), "InvalidArgument", /^invalid manifest: not valid JSON/);
  throwsKind(() => parseManifest(enc("[1]")), "InvalidArgument", /not a JSON object/);
  throwsKind(() => parseManifest(enc({ ...manifest, schemaVersion: 3 })), "InvalidArgument", /schemaVersion must be 2/);
  throwsKind(() => parseManifest(enc({ ...manifest, schemaVersion: 1 })), "NotImplemented", /schema 1/);
  throwsKind(() => parseManifest(enc({ ...manifest, mediaType: "application/x-weird" })), "NotImplemented", /"application\/x-weird"/);
  throwsKind(() => parseManifest(enc({ ...manifest, mediaType: MediaTypes.ociIndex })), "InvalidArgument", /got an index/);
  const badLayer = (l: object) => ({ ...manifest, layers: [manifest.layers[0], l] });
  throwsKind(() => parseManifest(enc(badLayer({ mediaType: MediaTypes.ociLayer, digest: "sha256:xyz", size: 1 }))), "InvalidArgument", /layers\[1\]\.digest .* not a sha256 digest/);
  throwsKind(() => parseManifest(enc(badLayer({ mediaType: MediaTypes.ociLayer, digest: dg("1"), size: -1 }))), "InvalidArgument", /layers\[1\]\.size must be an integer/);
  throwsKind(() => parseManifest(enc(badLayer({ mediaType: MediaTypes.ociLayer, digest: dg("1"), size: 1.5 }))), "InvalidArgument", /layers\[1\]\.size/);
  throwsKind(() => parseManifest(enc(badLayer({ mediaType: MediaTypes.ociLayer, digest: dg("1"), size: "1" }))), "InvalidArgument", /layers\[1\]\.size/);
  throwsKind(() => parseManifest(enc(badLayer({ digest: dg("1"), size: 1 }))), "InvalidArgument", /layers\[1\]\.mediaType is missing/);
  throwsKind(() => parseManifest(enc(badLayer({ mediaType: "application/x-tarball", digest: dg("1"), size: 1 }))), "NotImplemented", /unsupported layer media type "application\/x-tarball"/);
  throwsKind(() => parseManifest(enc({ ...manifest, config: { ...manifest.config, mediaType: "application/x-cfg" } })), "NotImplemented", /config media type/);
  throwsKind(() => parseManifest(enc({ ...manifest, layers: undefined })), "InvalidArgument", /layers must be an array/);
});

test("parseIndex accepts OCI indexes and Docker manifest lists, and rejects bad ones", () => {
  const i = parseIndex(enc(index));
  assert.equal(i.manifests[1]!.platform?.variant, "v8");
  assert.equal(parseIndex(enc({ ...index, mediaType: MediaTypes.dockerManifestList })).manifests.length, 2);
  throwsKind(() => parseIndex(enc({ ...index, mediaType: MediaTypes.ociManifest })), "InvalidArgument", /got an image manifest/);
  throwsKind(() => parseIndex(enc({ ...index, manifests: {} })), "InvalidArgument", /manifests must be an array/);
  throwsKind(() => parseIndex(enc({ ...index, manifests: [{ ...index.manifests[0], platform: { os: "linux" } }] })), "InvalidArgument", /manifests\[0\]\.platform\.architecture is missing/);
});

test("parseImageConfig validates and checks diff_ids against the layer count when asked", () => {
  const c = parseImageConfig(enc(config), { layers: 2 });
  assert.deepEqual(c.config?.Cmd, ["sh"]);
  assert.equal(c.config?.Entrypoint, null);
  assert.equal(c.rootfs.diff_ids.length, 2);
  throwsKind(() => parseImageConfig(enc(config), { layers: 3 }), "DataLoss", /2 diff_ids for 3 layers/);
  throwsKind(() => parseImageConfig(enc({ ...config, rootfs: { type: "x", diff_ids: [] } })), "InvalidArgument", /rootfs\.type must be "layers"/);
  throwsKind(() => parseImageConfig(enc({ ...config, rootfs: { type: "layers", diff_ids: ["nope"] } })), "InvalidArgument", /diff_ids\[0\] is not a sha256 digest/);
  throwsKind(() => parseImageConfig(enc({ ...config, os: 1 })), "InvalidArgument", /^invalid image config: os must be a string/);
  throwsKind(() => parseImageConfig(enc({ ...config, config: { Env: "PATH=/bin" } })), "InvalidArgument", /config\.Env must be an array of strings/);
});

test("detectManifestKind uses the header, then the body's mediaType, then its shape", () => {
  assert.equal(detectManifestKind(MediaTypes.ociManifest, enc(manifest)), "manifest");
  assert.equal(detectManifestKind(MediaTypes.dockerManifestList, enc({ ...index, mediaType: undefined })), "index");
  assert.equal(detectManifestKind(`${MediaTypes.ociIndex}; charset=utf-8`, enc(index)), "index");
  assert.equal(detectManifestKind("application/json", enc(index)), "index");
  assert.equal(detectManifestKind(undefined, enc(manifest)), "manifest");
  const { mediaType: _m, ...bareManifest } = manifest;
  const { mediaType: _i, ...bareIndex } = index;
  assert.equal(detectManifestKind(undefined, enc(bareManifest)), "manifest");
  assert.equal(detectManifestKind("", enc(bareIndex)), "index");
  throwsKind(() => detectManifestKind("application/vnd.example+json", enc(manifest)), "NotImplemented", /unsupported manifest media type "application\/vnd.example\+json"/);
  throwsKind(() => detectManifestKind(undefined, enc({ ...manifest, mediaType: "application/vnd.example+json" })), "NotImplemented", /vnd.example/);
  throwsKind(() => detectManifestKind("application/vnd.docker.distribution.manifest.v1+prettyjws", enc({ schemaVersion: 1 })), "NotImplemented", /schema 1/);
  throwsKind(() => detectManifestKind(MediaTypes.ociIndex, enc(manifest)), "InvalidArgument", /served as .* but its mediaType field says/);
  throwsKind(() => detectManifestKind(undefined, enc({ schemaVersion: 2 })), "InvalidArgument", /neither a manifest/);
});
