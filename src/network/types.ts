/** The network service's vocabulary: modes, published ports, what a setup gives a container. */

/** How a container is networked: its own namespace on the tsctr0 bridge, only loopback, or the host's. */
export type NetworkMode = "bridge" | "none" | "host";

/** The modes `--net` accepts, default first. */
export const NETWORK_MODES: readonly NetworkMode[] = ["bridge", "none", "host"];

/** One published port (`-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]`), in the portmap plugin's field names. */
export interface PortMapping {
  /** "" means every local address (like Docker's 0.0.0.0). */
  hostIP: string;
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
}

/** What a container asks of the network. */
export interface NetworkOptions {
  mode: NetworkMode;
  ports?: readonly PortMapping[];
}

/** What a container got: the namespace to join (or to make, or none for host mode), its addresses and ports. */
export interface NetworkSetup {
  /** The bind-mounted network namespace file (bridge mode). */
  netnsPath?: string;
  /**
   * None mode: the runtime gives the container a new network namespace of its own, with only loopback, which
   * runc brings up (its "loopback" network for a namespace it creates): no namespace file, no tool to run.
   */
  newNamespace?: boolean;
  /** The container's addresses in CIDR form ("10.77.0.5/16"); empty for none and host. */
  ips: string[];
  ports: PortMapping[];
}
