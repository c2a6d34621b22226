/** The network service's pure parts: --net and -p parsing, the generated /etc files. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { isKind } from "../../src/errdefs/mod.ts";
import { bridgeConfList, hostsFile, parseNetworkMode, parsePublish, resolvConf } from "../../src/network/mod.ts";

test("parseNetworkMode accepts bridge (or tsctr0), none and host", () => {
  assert.equal(parseNetworkMode("bridge"), "bridge");
  assert.equal(parseNetworkMode("tsctr0"), "bridge");
  assert.equal(parseNetworkMode("none"), "none");
  assert.equal(parseNetworkMode("host"), "host");
  assert.throws(() => parseNetworkMode("container:x"), (e) => isKind(e, "InvalidArgument") && /invalid network "container:x"/.test((e as Error).message));
});

test("parsePublish reads [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]", () => {
  assert.deepEqual(parsePublish("8080:80"), { hostIP: "", hostPort: 8080, containerPort: 80, protocol: "tcp" });
  assert.deepEqual(parsePublish("127.0.0.1:5353:53/udp"), { hostIP: "127.0.0.1", hostPort: 5353, containerPort: 53, protocol: "udp" });
  assert.deepEqual(parsePublish("65535:1/tcp"), { hostIP: "", hostPort: 65535, containerPort: 1, protocol: "tcp" });
  for (const bad of ["80", "", ":80", "80:", "0:80", "65536:80", "a:80", "80:80/sctp", "80:80/tcp/x", "::1:80:80", "[::1]:80:80", "300.0.0.1:80:80", "1:2:3:4", " 80:80"]) {
    assert.throws(() => parsePublish(bad), (e) => isKind(e, "InvalidArgument") && (e as Error).message.startsWith(`invalid publish "${bad}"`), bad);
  }
});

test("hostsFile maps the hostname to the first address, or 127.0.1.1 without one", () => {
  assert.match(hostsFile("web", ["10.77.0.5/16", "fd00::5/64"]), /^127\.0\.0\.1\tlocalhost\n[\s\S]*\n10\.77\.0\.5\tweb\n$/);
  assert.match(hostsFile("solo", []), /\n127\.0\.1\.1\tsolo\n$/);
});

test("resolvConf drops loopback nameservers and falls back to public ones when none remain", () => {
  assert.equal(resolvConf("search lan\nnameserver 192.0.2.53\nnameserver 127.0.0.53\n"), "search lan\nnameserver 192.0.2.53\n");
  assert.equal(resolvConf("nameserver 127.0.0.53\noptions edns0\n"), "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  assert.equal(resolvConf("nameserver ::1\n"), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  assert.equal(resolvConf(""), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
});

test("the default network is the tsctr0 bridge with NAT, host-local IPAM and portmap", () => {
  const list = bridgeConfList("/run/tsctr/cni/networks", "10.77.0.0/16");
  assert.equal(list.cniVersion, "1.0.0");
  assert.equal(list.name, "tsctr0");
  assert.deepEqual(list.plugins.map((p) => p.type), ["bridge", "portmap"]);
  assert.deepEqual(list.plugins[0]!.ipam, { type: "host-local", ranges: [[{ subnet: "10.77.0.0/16" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: "/run/tsctr/cni/networks" });
  assert.deepEqual(list.plugins[1]!.capabilities, { portMappings: true });
});
