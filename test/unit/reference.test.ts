import { test } from "node:test";
import assert from "node:assert/strict";
import { parseReference } from "../../src/registry/reference.ts";
import { isKind } from "../../src/errdefs/mod.ts";

const D = `sha256:${"a".repeat(64)}`;

test("parseReference normalises like Docker", () => {
  const cases: [string, string][] = [
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["user/img", "docker.io/user/img:latest"],
    ["docker.io/busybox", "docker.io/library/busybox:latest"],
    ["index.docker.io/library/busybox", "docker.io/library/busybox:latest"],
    ["localhost/x", "localhost/x:latest"],
    ["localhost:5000/x", "localhost:5000/x:latest"],
    ["127.0.0.1:5055/a/b:tag", "127.0.0.1:5055/a/b:tag"],
    ["ghcr.io/org/team/app:v1.2.3-rc_1", "ghcr.io/org/team/app:v1.2.3-rc_1"],
    [`x@${D}`, `docker.io/library/x@${D}`],
    [`x:tag@${D}`, `docker.io/library/x:tag@${D}`],
    [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`],
    ["reg-1.example/d__e/f.g-h/i--j", "reg-1.example/d__e/f.g-h/i--j:latest"],
    ["[::1]:5000/x", "[::1]:5000/x:latest"],
  ];
  for (const [input, want] of cases) assert.equal(parseReference(input).toString(), want, input);
});

test("Reference exposes domain, path, tag, digest, the API host and the locator", () => {
  const r = parseReference("busybox");
  assert.equal(r.domain, "docker.io");
  assert.equal(r.path, "library/busybox");
  assert.equal(r.name, "docker.io/library/busybox");
  assert.equal(r.tag, "latest");
  assert.equal(r.digest, undefined);
  assert.equal(r.apiHost, "registry-1.docker.io");
  assert.equal(r.locator, "latest");

  const p = parseReference(`127.0.0.1:5055/a/b:tag@${D}`);
  assert.equal(p.apiHost, "127.0.0.1:5055");
  assert.equal(p.tag, "tag");
  assert.equal(p.digest, D);
  assert.equal(p.locator, D, "a digest wins over the tag");

  const q = parseReference(`x@${D}`);
  assert.equal(q.tag, undefined, "no tag is implied next to a digest");

  const pinned = parseReference("localhost:5000/x:1").withDigest(D as `sha256:${string}`);
  assert.equal(pinned.toString(), `localhost:5000/x:1@${D}`);
});

test("parseReference rejects invalid references with InvalidArgument naming them", () => {
  const bad = [
    "",
    "Busybox",
    "user/Img",
    "busybox:",
    "busybox:-tag",
    `busybox:${"t".repeat(129)}`,
    "busybox@sha256:abc",
    `busybox@md5:${"a".repeat(32)}`,
    "a//b",
    "a/b/",
    "-a/b",
    "a..b/c/",
    ":tag",
    "reg.example:port/x",
    "my_reg.example/a",
    "a/b___c",
    "a".repeat(64),
    `example.com/${"a".repeat(250)}`,
  ];
  for (const s of bad) {
    assert.throws(() => parseReference(s), (e) => isKind(e, "InvalidArgument") && (e as Error).message.startsWith(`invalid reference "${s.slice(0, 300)}"`), s);
  }
});

test("an upper-case first component is a registry host, but the repository must be lower case", () => {
  assert.equal(parseReference("Example.COM/a").domain, "Example.COM");
  assert.throws(() => parseReference("example.com/A"), /must be lowercase/);
});
