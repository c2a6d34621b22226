import { test } from "node:test";
import assert from "node:assert/strict";
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, platformMatches, selectManifest } from "../../src/images/platform.ts";
import { hostArchitecture } from "../../src/platform/runtime.ts";
import { isKind } from "../../src/errdefs/mod.ts";
import type { Descriptor, Index, Platform } from "../../src/images/types.ts";
import { MediaTypes } from "../../src/images/types.ts";

const fmt = (s: string) => formatPlatform(parsePlatform(s));

test("parsePlatform normalises architectures, variants and the default os", () => {
  assert.equal(fmt("linux/arm64/v8"), "linux/arm64/v8");
  assert.equal(fmt("linux/arm64"), "linux/arm64/v8");
  assert.equal(fmt("arm64"), "linux/arm64/v8");
  assert.equal(fmt("aarch64"), "linux/arm64/v8");
  assert.equal(fmt("linux/arm"), "linux/arm/v7");
  assert.equal(fmt("linux/arm/v6"), "linux/arm/v6");
  assert.equal(fmt("linux/arm/7"), "linux/arm/v7");
  assert.equal(fmt("armhf"), "linux/arm/v7");
  assert.equal(fmt("armel"), "linux/arm/v6");
  assert.equal(fmt("x86_64"), "linux/amd64");
  assert.equal(fmt("linux/amd64/v1"), "linux/amd64");
  assert.equal(fmt("linux/amd64/v3"), "linux/amd64/v3");
  assert.equal(fmt("i386"), "linux/386");
  assert.equal(fmt("Linux/AMD64"), "linux/amd64");
  assert.equal(parsePlatform("linux").architecture, normalizePlatform({ os: "linux", architecture: hostArchitecture() }).architecture);
});

test("parsePlatform rejects malformed input with InvalidArgument", () => {
  for (const bad of ["", "linux/", "a/b/c/d", "linux/arm 64", "/amd64"]) {
    assert.throws(() => parsePlatform(bad), (e) => isKind(e, "InvalidArgument") && /invalid platform/.test((e as Error).message), bad);
  }
});

test("hostPlatform is the normalised host architecture on linux", () => {
  const p = hostPlatform();
  assert.equal(p.os, "linux");
  assert.equal(p.architecture, normalizePlatform({ os: "linux", architecture: hostArchitecture() }).architecture);
  if (p.architecture === "arm64") assert.equal(p.variant, "v8");
});

test("platformMatches: arm64 ≡ arm64/v8, arm/v7 runs v6 and v5 but not v8, os and arch must agree", () => {
  const P = (s: string) => parsePlatform(s);
  assert.ok(platformMatches(P("linux/arm64"), { os: "linux", architecture: "arm64" }));
  assert.ok(platformMatches(P("linux/arm64/v8"), { os: "linux", architecture: "arm64" }));
  assert.ok(platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" }));
  assert.ok(platformMatches(P("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v6" }));
  assert.ok(platformMatches(P("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v5" }));
  assert.ok(platformMatches(P("linux/arm/v7"), { os: "linux", architecture: "arm" }));
  assert.ok(!platformMatches(P("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v8" }));
  assert.ok(!platformMatches(P("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v7" }));
  assert.ok(!platformMatches(P("linux/arm64"), { os: "linux", architecture: "arm", variant: "v7" }));
  assert.ok(!platformMatches(P("linux/amd64"), { os: "windows", architecture: "amd64" }));
  assert.ok(platformMatches(P("linux/amd64"), { os: "linux", architecture: "x86_64" }));
  assert.ok(platformMatches(P("linux/amd64/v3"), { os: "linux", architecture: "amd64" }));
  assert.ok(!platformMatches(P("linux/amd64"), { os: "linux", architecture: "amd64", variant: "v3" }));
});

const d = (n: number, platform?: Platform, extra: Partial<Descriptor> = {}): Descriptor => ({
  mediaType: MediaTypes.ociManifest,
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100 + n,
  ...(platform ? { platform } : {}),
  ...extra,
});

test("selectManifest picks the exact variant first, then the nearest compatible one", () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [
      d(1, { os: "linux", architecture: "amd64" }),
      d(2, { os: "linux", architecture: "arm", variant: "v5" }),
      d(3, { os: "linux", architecture: "arm", variant: "v6" }),
      d(4, { os: "linux", architecture: "arm", variant: "v7" }),
      d(5, { os: "linux", architecture: "arm64", variant: "v8" }),
    ],
  };
  assert.equal(selectManifest(index, parsePlatform("linux/arm/v7")).size, 104);
  assert.equal(selectManifest(index, parsePlatform("linux/arm/v6")).size, 103);
  assert.equal(selectManifest(index, parsePlatform("linux/arm64")).size, 105);
  assert.equal(selectManifest(index, parsePlatform("amd64")).size, 101);
  const noV7: Index = { schemaVersion: 2, manifests: [index.manifests[1]!, index.manifests[2]!] };
  assert.equal(selectManifest(noV7, parsePlatform("linux/arm")).size, 103, "arm/v7 falls back to v6 before v5");
});

test("selectManifest treats arm64 without variant as arm64/v8 and skips attestations and entries without platform", () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [
      d(1),
      d(2, { os: "unknown", architecture: "unknown" }),
      d(3, { os: "linux", architecture: "arm64" }, { annotations: { "vnd.docker.reference.type": "attestation-manifest" } }),
      d(4, { os: "linux", architecture: "arm64" }),
    ],
  };
  assert.equal(selectManifest(index, parsePlatform("linux/arm64/v8")).size, 104);
});

test("selectManifest throws NotFound listing the platforms that exist", () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [d(1, { os: "linux", architecture: "amd64" }), d(2, { os: "linux", architecture: "arm64", variant: "v8" }), d(3, { os: "unknown", architecture: "unknown" })],
  };
  assert.throws(
    () => selectManifest(index, parsePlatform("linux/ppc64le"), "docker.io/library/x:1"),
    (e) => isKind(e, "NotFound") && (e as Error).message === "no manifest for linux/ppc64le in docker.io/library/x:1; available: linux/amd64, linux/arm64/v8",
  );
});
