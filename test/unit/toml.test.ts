import { test } from "node:test";
import assert from "node:assert/strict";
import { parseToml } from "../../src/registry/toml.ts";
import { isKind } from "../../src/errdefs/mod.ts";

test("parseToml reads the subset hosts.toml files use", () => {
  const doc = parseToml(
    [
      "# containerd hosts file",
      'server = "https://registry-1.docker.io"   # upstream',
      "",
      '[host."http://10.0.0.2:5000"]',
      '  capabilities = ["pull", "resolve"]',
      "  skip_verify = true",
      "  retries = 3",
      '[host."https://mirror:8443"]',
      "  ca = [",
      '    "/etc/a.pem",  # first',
      "    '/etc/b.pem',",
      "  ]",
      '  client = [["c.crt", "c.key"], "both.pem"]',
      '  [host."https://mirror:8443".header]',
      '    x-site = "edge \\"7\\" \\u00e9"',
      "    a.b = 1_000",
      "",
    ].join("\r\n"),
    "hosts.toml",
  );
  assert.deepEqual(doc, {
    server: "https://registry-1.docker.io",
    host: {
      "http://10.0.0.2:5000": { capabilities: ["pull", "resolve"], skip_verify: true, retries: 3 },
      "https://mirror:8443": {
        ca: ["/etc/a.pem", "/etc/b.pem"],
        client: [["c.crt", "c.key"], "both.pem"],
        header: { "x-site": 'edge "7" é', a: { b: 1000 } },
      },
    },
  });
});

test("parseToml errors name the source and the line", () => {
  const cases: [string, RegExp][] = [
    ['a = "x"\nb = ', /^f\.toml line 2: expected a value$/],
    ["a = 1\na = 2", /^f\.toml line 2: key "a" is defined twice$/],
    ["[t]\n[t]", /^f\.toml line 2: table \[t\] is defined twice$/],
    ["a = 1\n[a]", /line 2: key "a" already holds a value/],
    ['\n\na = "open', /^f\.toml line 3: unterminated string$/],
    ["a = [1, 2", /unterminated array/],
    ['\na = [\n  "x",\n', /^f\.toml line 2: unterminated array: expected "\]"$/],
    ["a = {x = 1}", /inline tables/],
    ["[[x]]", /arrays of tables/],
    ["a = 1.5", /unsupported value "1\.5"/],
    ['a = """x"""', /multi-line strings/],
    ["a = 1 b = 2", /line 1: unexpected "b" after the value/],
    ["= 1", /line 1: unexpected "=" where a key was expected/],
    ['a = "\\q"', /invalid escape/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseToml(text, "f.toml"), (e) => {
      assert.ok(isKind(e, "InvalidArgument"), String(e));
      assert.match((e as Error).message, re, text);
      return true;
    });
  }
});
