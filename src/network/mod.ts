/** The network service: network namespaces, the CNI runtime, the default bridge, published ports. */
export { Network } from "./network.ts";
export { NETWORK_MODES } from "./types.ts";
export type { NetworkMode, NetworkOptions, NetworkSetup, PortMapping } from "./types.ts";
export { parseNetworkMode, parsePublish } from "./parse.ts";
export { hostsFile, resolvConf } from "./etc_files.ts";
export { BRIDGE_NAME, DEFAULT_SUBNET, bridgeConfList, bridgeSubnet } from "./bridge.ts";
export { CNI_VERSION, addNetworkList, checkNetworkList, cniPath, delNetworkList } from "./cni.ts";
export type { CniAttachment, CniConfList, CniPluginConf, CniResult } from "./cni.ts";
export { createNetns, removeNetns } from "./netns.ts";
