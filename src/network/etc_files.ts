/** The /etc/hosts and /etc/resolv.conf a container in its own network namespace gets. */

/** Docker's fallback when the host knows no nameserver a container can reach. */
export const FALLBACK_NAMESERVERS: readonly string[] = ["8.8.8.8", "8.8.4.4"];

/** An /etc/hosts naming localhost and mapping `hostname` to the container's first address (CIDR or bare). */
export function hostsFile(hostname: string, ips: readonly string[]): string {
  const own = ips[0]?.split("/")[0] ?? "127.0.1.1";
  return [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    `${own}\t${hostname}`,
    "",
  ].join("\n");
}

/**
 * The host's resolv.conf without nameservers on loopback (a local resolver such as systemd-resolved's
 * 127.0.0.53 is not reachable from another namespace); Docker's fallback servers if none remain.
 */
export function resolvConf(hostText: string): string {
  const lines = hostText.split("\n").filter((l) => !/^\s*nameserver\s+(127\.|::1\s*$|::1$)/.test(l));
  const kept = lines.filter((l) => /^\s*nameserver\s/.test(l)).length;
  const body = lines.join("\n").trimEnd();
  const extra = kept === 0 ? FALLBACK_NAMESERVERS.map((ns) => `nameserver ${ns}`).join("\n") : "";
  return [body, extra].filter(Boolean).join("\n") + "\n";
}
