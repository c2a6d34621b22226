/** Parsing of `--net` and `-p/--publish` values; each bad value is an InvalidArgument naming what is wrong. */
import { isIPv4 } from "node:net";
import { errorOf } from "../errdefs/mod.ts";
import { NETWORK_MODES, type NetworkMode, type PortMapping } from "./types.ts";

/** A `--net` value: "bridge" (or its network's name "tsctr0"), "none" or "host". */
export function parseNetworkMode(value: string): NetworkMode {
  if (value === "tsctr0") return "bridge";
  const mode = NETWORK_MODES.find((m) => m === value);
  if (!mode) throw errorOf("InvalidArgument", `invalid network "${value}": expected ${NETWORK_MODES.join(", ")}`);
  return mode;
}

/**
 * A `-p` value: `[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]` with an IPv4 host address and ports 1–65535;
 * protocol tcp unless given.
 */
export function parsePublish(value: string): PortMapping {
  const bad = (why: string) => errorOf("InvalidArgument", `invalid publish "${value}": ${why} (expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp])`);
  const [spec = "", proto = "tcp", ...extra] = value.split("/");
  if (extra.length > 0 || (proto !== "tcp" && proto !== "udp")) throw bad(`unknown protocol "${value.slice(spec.length + 1)}"`);
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3) throw bad("wrong number of fields");
  const [hostIP, hostPort, containerPort] = parts.length === 3 ? (parts as [string, string, string]) : ["", parts[0]!, parts[1]!];
  if (parts.length === 3 && !isIPv4(hostIP)) throw bad(`"${hostIP}" is not an IPv4 address`);
  return { hostIP, hostPort: port(hostPort, bad), containerPort: port(containerPort, bad), protocol: proto };
}

function port(text: string, bad: (why: string) => Error): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw bad(`"${text}" is not a port number (1-65535)`);
  return n;
}
