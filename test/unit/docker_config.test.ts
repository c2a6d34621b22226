import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerConfigPath, readCredentials, storeCredentials } from "../../src/registry/docker_config.ts";
import { tokenTtl } from "../../src/registry/auth.ts";
import { isKind } from "../../src/errdefs/mod.ts";

test("dockerConfigPath: $DOCKER_CONFIG, else ~/.docker", () => {
  assert.equal(dockerConfigPath({ DOCKER_CONFIG: "/cfg", HOME: "/home/u" }), "/cfg/config.json");
  assert.equal(dockerConfigPath({ HOME: "/home/u" }), "/home/u/.docker/config.json");
});

test("credentials: Docker's keys are read, written atomically with mode 0600, other fields kept, removed on logout", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-dockercfg-"));
  const path = join(dir, "config.json");
  try {
    assert.equal((await readCredentials(path))("docker.io"), undefined, "no file: no credentials");
    await writeFile(path, JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("hub:pw:with:colons").toString("base64") },
        "http://old.example:5000/v1/": { auth: Buffer.from("old:x").toString("base64") },
        "fields.example": { username: "f", password: "g" },
      },
      credsStore: "desktop",
    }));
    const get = await readCredentials(path);
    assert.deepEqual(get("docker.io"), { username: "hub", password: "pw:with:colons" });
    assert.deepEqual(get("old.example:5000"), { username: "old", password: "x" });
    assert.deepEqual(get("fields.example"), { username: "f", password: "g" });

    await storeCredentials(path, "127.0.0.1:5000", { username: "alice", password: "s3cret" });
    await storeCredentials(path, "index.docker.io", { username: "hub2", password: "p2" });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const j = JSON.parse(await readFile(path, "utf8"));
    assert.equal(j.credsStore, "desktop");
    assert.equal(j.auths["127.0.0.1:5000"].auth, Buffer.from("alice:s3cret").toString("base64"));
    assert.equal(j.auths["https://index.docker.io/v1/"].auth, Buffer.from("hub2:p2").toString("base64"));
    assert.deepEqual((await readCredentials(path))("docker.io"), { username: "hub2", password: "p2" });

    assert.equal(await storeCredentials(path, "127.0.0.1:5000", undefined), true);
    assert.equal(await storeCredentials(path, "127.0.0.1:5000", undefined), false);
    assert.equal((await readCredentials(path))("127.0.0.1:5000"), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a config.json that is not JSON is InvalidArgument naming the file, not its content", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-dockercfg-"));
  const path = join(dir, "config.json");
  try {
    await writeFile(path, '{"auths": {"x": {"auth": "c2VjcmV0"}');
    await assert.rejects(readCredentials(path), (e) => {
      assert.ok(isKind(e, "InvalidArgument"));
      assert.equal((e as Error).message, `read credentials ${path}: not valid JSON`);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("tokenTtl: expires_in from issued_at, 60 s by default", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");
  assert.equal(tokenTtl(300, undefined, now), 300);
  assert.equal(tokenTtl(undefined, undefined, now), 60);
  assert.equal(tokenTtl(-5, undefined, now), 60);
  assert.equal(tokenTtl(300, "2026-01-01T00:00:00Z", now), 240);
  assert.equal(tokenTtl(30, "2026-01-01T00:00:00Z", now), 0);
  assert.equal(tokenTtl(300, "2027-01-01T00:00:00Z", now), 300, "an issued_at in the future (clock skew) counts from now");
  assert.equal(tokenTtl(300, "garbage", now), 300);
});
