import { test } from "node:test";
import assert from "node:assert/strict";
import { blobPath, cleanArchivePath, digestOfBlobPath, resolveLink } from "../../src/transfer/paths.ts";
import { buildIndexJson, imagesOfIndex, parseDockerManifestJson, refNameOf } from "../../src/transfer/layout.ts";
import { parseIndex } from "../../src/images/parse.ts";
import { isKind } from "../../src/errdefs/mod.ts";

const D = `sha256:${"ab".repeat(32)}` as const;

test("archive paths are cleaned and must stay inside the archive", () => {
  assert.equal(cleanArchivePath("./blobs//sha256/x/", "t"), "blobs/sha256/x");
  assert.equal(cleanArchivePath("a/../b", "t"), "b");
  assert.equal(cleanArchivePath("./", "t"), "");
  for (const bad of ["../x", "a/../../x", "/etc/passwd", "..", "./../x"]) {
    assert.throws(() => cleanArchivePath(bad, "t"), (e) => isKind(e, "InvalidArgument"), bad);
  }
  assert.equal(resolveLink("abc/layer.tar", "../def/layer.tar", "t"), "def/layer.tar");
  assert.throws(() => resolveLink("abc/layer.tar", "../../etc/shadow", "t"), (e) => isKind(e, "InvalidArgument"));
  assert.throws(() => resolveLink("abc/layer.tar", "/etc/shadow", "t"), (e) => isKind(e, "InvalidArgument"));
});

test("blob paths map to digests and back", () => {
  assert.equal(blobPath(D), `blobs/sha256/${"ab".repeat(32)}`);
  assert.equal(digestOfBlobPath(blobPath(D)), D);
  assert.equal(digestOfBlobPath("blobs/sha256/ABAB"), undefined);
  assert.equal(digestOfBlobPath(`blobs/sha512/${"ab".repeat(32)}`), undefined);
});

test("index.json names images the way containerd and Docker do", () => {
  assert.equal(refNameOf("docker.io/library/busybox:1.36"), "1.36");
  assert.equal(refNameOf("127.0.0.1:5000/busybox:1"), "1");
  assert.equal(refNameOf(`docker.io/library/busybox@${D}`), `docker.io/library/busybox@${D}`);
  const target = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: D, size: 10 };
  const index = parseIndex(buildIndexJson([{ name: "127.0.0.1:5000/busybox:1", target }]));
  assert.deepEqual(imagesOfIndex(index, undefined), [{ name: "127.0.0.1:5000/busybox:1", target }]);
  // a tag alone is joined to --base-name; without one the image stays unnamed
  const tagOnly = { ...index, manifests: [{ ...target, annotations: { "org.opencontainers.image.ref.name": "v1" } }] };
  assert.deepEqual(imagesOfIndex(tagOnly, "example.com/bb"), [{ name: "example.com/bb:v1", target }]);
  assert.deepEqual(imagesOfIndex(tagOnly, undefined), [{ target }]);
});

test("manifest.json is validated", () => {
  const ok = parseDockerManifestJson(new TextEncoder().encode('[{"Config":"a.json","RepoTags":null,"Layers":["x/layer.tar"]}]'), "t");
  assert.deepEqual(ok, [{ Config: "a.json", RepoTags: [], Layers: ["x/layer.tar"] }]);
  for (const bad of ["{}", "[1]", '[{"Layers":[]}]', '[{"Config":"a","Layers":[1]}]', "not json"]) {
    assert.throws(() => parseDockerManifestJson(new TextEncoder().encode(bad), "t"), (e) => isKind(e, "InvalidArgument"), bad);
  }
});
