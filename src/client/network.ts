/**
 * The run flow's network hook: sets up the container's network, points the spec's network namespace at
 * it and bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf; and takes it all back.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { Network, hostsFile, resolvConf, type NetworkOptions, type NetworkSetup } from "../network/mod.ts";
import type { Spec, SpecMount } from "../runtime/mod.ts";

/** The network service for the context's state directory and namespace. */
export function openNetwork(ctx: Context): Network {
  return new Network({ state: ctx.state, namespace: ctx.namespace });
}

/**
 * Sets up container `id`'s network and edits `spec` to use it: the network namespace joins the one made
 * (is left for runc to make, in none mode, or is dropped, in host mode), and the /etc files written into
 * `bundle` are bind-mounted. On failure
 * nothing of the network is left; after success, `disconnectNetwork` undoes it.
 */
export async function connectNetwork(ctx: Context, id: string, bundle: string, spec: Spec, opts: NetworkOptions): Promise<NetworkSetup> {
  const network = openNetwork(ctx);
  const setup = await network.setup(id, opts);
  try {
    const hostname = spec.hostname ?? id;
    spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== "network");
    if (setup.netnsPath) spec.linux.namespaces.push({ type: "network", path: setup.netnsPath });
    else if (setup.newNamespace) spec.linux.namespaces.push({ type: "network" });
    const own = (name: string, text: string) => writeFile(join(bundle, name), text, { mode: 0o644 }).then(() => bindMount(join(bundle, name), `/etc/${name}`, false));
    spec.mounts.push(await own("hostname", `${hostname}\n`));
    if (opts.mode === "host") {
      spec.mounts.push(bindMount("/etc/hosts", "/etc/hosts", true), bindMount("/etc/resolv.conf", "/etc/resolv.conf", true));
    } else {
      const hostResolv = await readFile("/etc/resolv.conf", "utf8").catch(() => "");
      spec.mounts.push(await own("hosts", hostsFile(hostname, setup.ips)), await own("resolv.conf", resolvConf(hostResolv)));
    }
    return setup;
  } catch (e) {
    await network.teardown(id).catch(() => {});
    throw e;
  }
}

const NETWORK_LABEL = "io.tsctr/network";

/** The container labels that record its network settings, so `start` can connect it again. */
export function networkLabels(opts: NetworkOptions): Record<string, string> {
  return { [NETWORK_LABEL]: JSON.stringify(opts) };
}

/**
 * Connects a stopped container again before it starts: its old attachment (if any) is taken back, the
 * network files and namespace of the kept spec are replaced by fresh ones. No-op for containers recorded
 * before network labels existed.
 */
export async function reconnectNetwork(ctx: Context, id: string, labels: Record<string, string>, bundle: string, spec: Spec): Promise<void> {
  const recorded = labels[NETWORK_LABEL];
  if (recorded === undefined) return;
  await disconnectNetwork(ctx, id);
  const own = new Set(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);
  spec.mounts = spec.mounts.filter((m) => !own.has(m.destination));
  await connectNetwork(ctx, id, bundle, spec, JSON.parse(recorded) as NetworkOptions);
}

/** Takes container `id`'s network back (idempotent: nothing to do is not an error). */
export function disconnectNetwork(ctx: Context, id: string): Promise<void> {
  return openNetwork(ctx).teardown(id);
}

function bindMount(source: string, destination: string, readonly: boolean): SpecMount {
  return { destination, type: "bind", source, options: ["rbind", "rprivate", readonly ? "ro" : "rw"] };
}
