import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultHost, parseHostsFile, registryHosts } from "../../src/registry/hosts.ts";
import { isKind } from "../../src/errdefs/mod.ts";

test("without a hosts file the registry itself is the only host", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-hosts-"));
  try {
    const [h, ...rest] = await registryHosts("docker.io", { hostsDir: dir });
    assert.equal(rest.length, 0);
    assert.deepEqual({ ...h, capabilities: [...h!.capabilities] }, {
      scheme: "https", host: "registry-1.docker.io", path: "/v2", capabilities: ["pull", "resolve", "push"],
      tls: { skipVerify: false, ca: [], clients: [] }, headers: {}, upstream: true,
    });
    const [p] = await registryHosts("127.0.0.1:5000", { plainHttp: true, skipVerify: true });
    assert.equal(p!.scheme, "http");
    assert.equal(p!.host, "127.0.0.1:5000");
    assert.equal(p!.tls.skipVerify, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hosts.toml: mirrors in file order, then the server; capabilities, TLS files, headers, /v2 suffix", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-hosts-"));
  try {
    await mkdir(join(dir, "docker.io"));
    const file = join(dir, "docker.io", "hosts.toml");
    await writeFile(file, [
      'server = "https://registry-1.docker.io"',
      '[host."http://10.0.0.2:5000"]',
      '  capabilities = ["pull", "resolve"]',
      '[host."mirror.site:8443/cache"]',
      '  ca = "site-ca.pem"',
      '  client = [["/etc/c.crt", "c.key"]]',
      "  skip_verify = true",
      '  [host."mirror.site:8443/cache".header]',
      '    X-Site = ["edge-7", "b"]',
      '[host."https://other/custom/path"]',
      "  override_path = true",
      '  client = ["both.pem", ["key-inside.pem", ""]]',
    ].join("\n"));
    const hosts = await registryHosts("docker.io", { hostsDir: dir });
    assert.deepEqual(hosts.map((h) => `${h.scheme}://${h.host}${h.path} ${[...h.capabilities].join(",")} ${h.upstream}`), [
      "http://10.0.0.2:5000/v2 pull,resolve false",
      "https://mirror.site:8443/cache/v2 pull,resolve,push false",
      "https://other/custom/path pull,resolve,push false",
      "https://registry-1.docker.io/v2 pull,resolve,push true",
    ]);
    assert.deepEqual(hosts[1]!.tls, { skipVerify: true, ca: [join(dir, "docker.io", "site-ca.pem")], clients: [{ cert: "/etc/c.crt", key: join(dir, "docker.io", "c.key") }] });
    assert.deepEqual(hosts[1]!.headers, { "x-site": ["edge-7", "b"] });
    assert.deepEqual(hosts[2]!.tls.clients, [{ cert: join(dir, "docker.io", "both.pem"), key: undefined }, { cert: join(dir, "docker.io", "key-inside.pem"), key: undefined }]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hosts.toml: the _default directory applies to other registries; top-level settings apply to the upstream", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsctr-hosts-"));
  try {
    await mkdir(join(dir, "_default"));
    await writeFile(join(dir, "_default", "hosts.toml"), 'capabilities = ["pull"]\nca = "/x.pem"\n');
    const [h, ...rest] = await registryHosts("reg.example:5000", { hostsDir: dir });
    assert.equal(rest.length, 0);
    assert.equal(h!.host, "reg.example:5000");
    assert.deepEqual([...h!.capabilities], ["pull"]);
    assert.deepEqual(h!.tls.ca, ["/x.pem"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hosts.toml: wrong values are InvalidArgument naming the file and what is wrong", () => {
  const up = defaultHost("docker.io");
  const cases: [string, RegExp][] = [
    ['[host."https://m"]\ncapabilities = ["pull", "fetch"]', /^h\.toml: host\."https:\/\/m"\.capabilities: unknown capability "fetch"/],
    ['[host."ftp://m"]', /must be http:\/\/ or https:\/\//],
    ['[host."https://u:p@m"]', /must not carry credentials/],
    ['[host."https://m"]\nskip_verify = "yes"', /skip_verify must be true or false/],
    ['[host."https://m"]\nca = 1', /ca must be a string or an array of strings/],
    ['[host."https://m".header]\n"bad header" = "x"', /not a valid header name/],
    ["server = 5", /"server" must be a string URL/],
    ["server = ", /^h\.toml line 1: expected a value$/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseHostsFile(text, "h.toml", up), (e) => {
      assert.ok(isKind(e, "InvalidArgument"), String(e));
      assert.match((e as Error).message, re, text);
      return true;
    });
  }
});
