/**
 * The default network "tsctr0": a Linux bridge of that name with the host as gateway and NAT to the
 * outside (bridge plugin, ipMasq), addresses from host-local IPAM, published ports through portmap.
 */
import { readFile } from "node:fs/promises";
import process from "node:process";
import { errorOf } from "../errdefs/mod.ts";
import { CNI_VERSION, type CniConfList } from "./cni.ts";

/** The network's (and the bridge's) name. */
export const BRIDGE_NAME = "tsctr0";

/**
 * The default subnet: clear of Docker (172.17/16), Podman (10.88/16), nerdctl (10.4/24) and k3s
 * (10.42-43/16); TSCTR_SUBNET overrides it (an existing tsctr0 bridge must be deleted to change it).
 */
export const DEFAULT_SUBNET = "10.77.0.0/16";

/** The subnet in use: TSCTR_SUBNET or DEFAULT_SUBNET. */
export function bridgeSubnet(): string {
  return process.env.TSCTR_SUBNET || DEFAULT_SUBNET;
}

/** The configuration list of the default network, its IPAM leases kept under `ipamDir`. */
export function bridgeConfList(ipamDir: string, subnet: string = bridgeSubnet()): CniConfList {
  return {
    cniVersion: CNI_VERSION,
    name: BRIDGE_NAME,
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGE_NAME,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: ipamDir },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

/**
 * Throws FailedPrecondition when a host route on another interface than the bridge overlaps `subnet`
 * (containers could not reach that network, and the host would route it into the bridge).
 */
export async function checkSubnetFree(subnet: string): Promise<void> {
  const [net, bits] = parseCidr(subnet);
  const text = await readFile("/proc/net/route", "utf8").catch(() => "");
  for (const line of text.split("\n").slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (!iface || !dest || !mask || iface === BRIDGE_NAME) continue;
    const routeNet = hexToAddr(dest);
    const routeBits = popcount(hexToAddr(mask));
    if (routeBits === 0) continue; // the default route overlaps everything by design
    const common = Math.min(bits, routeBits);
    if (prefix(routeNet, common) === prefix(net, common)) {
      throw errorOf("FailedPrecondition", `network ${BRIDGE_NAME}: subnet ${subnet} overlaps the host's route on ${iface}: set TSCTR_SUBNET to a free one`);
    }
  }
}

function parseCidr(cidr: string): [number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const parts = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || parts.some((p) => p > 255) || bits < 8 || bits > 30) throw errorOf("InvalidArgument", `network ${BRIDGE_NAME}: invalid subnet "${cidr}" (expected IPv4 CIDR such as ${DEFAULT_SUBNET})`);
  return [parts.reduce((a, p) => a * 256 + p, 0), bits];
}

/** /proc/net/route prints addresses as little-endian hex. */
function hexToAddr(hex: string): number {
  const n = parseInt(hex, 16);
  return (((n & 0xff) << 24) >>> 0) + ((n >>> 8) & 0xff) * 65536 + ((n >>> 16) & 0xff) * 256 + ((n >>> 24) & 0xff);
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n >>> 0; v; v >>>= 1) c += v & 1;
  return c;
}

function prefix(addr: number, bits: number): number {
  return bits === 0 ? 0 : Math.floor(addr / 2 ** (32 - bits));
}
