/**
 * The network service: gives a container its network before its task starts and takes it back after.
 * State lives under --state (a reboot clears it, as it clears the namespaces and leases it describes):
 *   netns/<namespace>-<id>                 the container's network namespace (a bind mount)
 *   cni/attachments/<namespace>-<id>.json  what was asked of the CNI plugins, written before ADD
 *   cni/networks/tsctr0/                   host-local IPAM leases
 * `teardown` is idempotent and needs nothing but the ID, so `containers rm` can finish what a killed
 * tsctr left behind.
 */
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { errorOf, isErrno } from "../errdefs/mod.ts";
import { writeFileAtomic } from "../platform/durable.ts";
import { bridgeConfList, bridgeSubnet, checkSubnetFree } from "./bridge.ts";
import { addNetworkList, checkNetworkList, delNetworkList, type CniAttachment, type CniConfList, type CniResult } from "./cni.ts";
import { createNetns, removeNetns } from "./netns.ts";
import type { NetworkOptions, NetworkSetup, PortMapping } from "./types.ts";

/** The interface name inside the container. */
const IFNAME = "eth0";

/** What `setup` records before it calls the plugins, so that a later `teardown` can undo it. */
interface AttachmentRecord {
  list: CniConfList;
  attachment: CniAttachment;
  ports: PortMapping[];
  result?: CniResult;
}

/** Sets up and tears down container networks for one tsctr namespace under a state directory. */
export class Network {
  readonly state: string;
  readonly namespace: string;

  constructor(opts: { state: string; namespace: string }) {
    this.state = opts.state;
    this.namespace = opts.namespace;
  }

  /** The network namespace file of container `id` (whether or not it exists). */
  netnsPath(id: string): string {
    return join(this.state, "netns", this.key(id));
  }

  /**
   * Gives container `id` its network: host mode needs nothing; none asks the runtime for a new namespace
   * (loopback only, up); bridge gets a namespace file with lo up and eth0 on tsctr0, an address, a default
   * route and its published ports. On failure everything made so far is undone (plugins DEL in reverse,
   * namespace removed) before the error is thrown.
   */
  async setup(id: string, opts: NetworkOptions): Promise<NetworkSetup> {
    const ports = [...(opts.ports ?? [])];
    if (ports.length > 0 && opts.mode !== "bridge") throw errorOf("InvalidArgument", `network for ${id}: publishing ports needs the bridge network, not --net ${opts.mode}`);
    if (opts.mode === "host") return { ips: [], ports: [] };
    if (opts.mode === "none") return { newNamespace: true, ips: [], ports: [] };
    const netnsPath = this.netnsPath(id);
    await checkSubnetFree(bridgeSubnet());
    await this.checkPortsFree(ports);
    await createNetns(netnsPath);
    try {
      const list = bridgeConfList(join(this.state, "cni", "networks"));
      const attachment: CniAttachment = { containerId: this.key(id), netns: netnsPath, ifName: IFNAME, runtimeConfig: { portMappings: ports } };
      const record: AttachmentRecord = { list, attachment, ports };
      await this.writeRecord(id, record);
      record.result = await addNetworkList(list, attachment);
      await this.writeRecord(id, record);
      return { netnsPath, ips: (record.result.ips ?? []).map((ip) => ip.address), ports };
    } catch (e) {
      await this.teardown(id).catch(() => {});
      throw e;
    }
  }

  /** CNI CHECK of a bridge container's network; FailedPrecondition naming the plugin that objects. */
  async check(id: string): Promise<void> {
    const record = await readRecord(this.recordPath(id));
    if (!record?.result) throw errorOf("NotFound", `network for ${id}: no bridge attachment`);
    await checkNetworkList(record.list, record.attachment, record.result);
  }

  /**
   * Takes container `id`'s network back: plugins DEL (address lease, veth, port rules), then the namespace
   * is unmounted and deleted, then the record. Idempotent; a DEL failure keeps the record for another try.
   */
  async teardown(id: string): Promise<void> {
    const record = await readRecord(this.recordPath(id));
    let failure: unknown;
    if (record) await delNetworkList(record.list, record.attachment, record.result).catch((e: unknown) => (failure = e));
    await removeNetns(this.netnsPath(id));
    if (failure !== undefined) throw failure;
    await rm(this.recordPath(id), { force: true });
  }

  private key(id: string): string {
    return `${this.namespace}-${id}`;
  }

  private recordPath(id: string): string {
    return join(this.state, "cni", "attachments", `${this.key(id)}.json`);
  }

  private writeRecord(id: string, record: AttachmentRecord): Promise<void> {
    return writeFileAtomic(this.recordPath(id), JSON.stringify(record) + "\n", { mode: 0o600, durable: false });
  }

  /** AlreadyExists when another tsctr container publishes the port, or a host process listens on it. */
  private async checkPortsFree(ports: readonly PortMapping[]): Promise<void> {
    if (ports.length === 0) return;
    const dir = join(this.state, "cni", "attachments");
    const names = await readdir(dir).catch(() => [] as string[]);
    const taken = (await Promise.all(names.filter((n) => n.endsWith(".json")).map((n) => readRecord(join(dir, n)).catch(() => undefined)))).flatMap((r) => r?.ports ?? []);
    for (const p of ports) {
      const what = `publish ${p.hostIP || "*"}:${p.hostPort}/${p.protocol}`;
      const clash = (q: PortMapping) => q.hostPort === p.hostPort && q.protocol === p.protocol && (q.hostIP === "" || p.hostIP === "" || q.hostIP === p.hostIP);
      if (taken.some(clash) || ports.filter(clash).length > 1) throw errorOf("AlreadyExists", `${what}: the port is already published by a container`);
      const refused = await bindError(p);
      if (refused === "EADDRINUSE") throw errorOf("AlreadyExists", `${what}: the port is in use on the host`);
      if (refused === "EADDRNOTAVAIL") throw errorOf("InvalidArgument", `${what}: ${p.hostIP} is not an address of this host`);
      if (refused) throw errorOf("FailedPrecondition", `${what}: cannot bind it on the host (${refused})`);
    }
  }
}

/** The record of an attachment, or undefined when there is none. */
async function readRecord(path: string): Promise<AttachmentRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as AttachmentRecord;
  } catch (e) {
    if (isErrno(e, "ENOENT")) return undefined;
    throw e;
  }
}

/** Why a socket cannot be bound to the mapping's host address and port right now (an errno code), or undefined. */
function bindError(p: PortMapping): Promise<string | undefined> {
  const host = p.hostIP || "0.0.0.0";
  return new Promise((resolve) => {
    const failed = (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message);
    if (p.protocol === "udp") {
      const s = createSocket("udp4");
      s.once("error", failed);
      s.bind(p.hostPort, host, () => s.close(() => resolve(undefined)));
      return;
    }
    const srv = createServer();
    srv.once("error", failed);
    srv.listen({ port: p.hostPort, host, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}
