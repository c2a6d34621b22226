/**
 * The services one command works with, opened from the global options (--root, --state, --namespace).
 * Opening is lazy per service so that `tsctr images ls` does not pay for what `run` needs.
 */
import { join } from "node:path";
import type { ContentStore } from "../content/mod.ts";
import type { MetadataStore } from "../metadata/mod.ts";
import { errorOf } from "../errdefs/mod.ts";

export interface GlobalOptions {
  root: string;
  state: string;
  namespace: string;
  /** containerd-style hosts directory: <dir>/<registry>/hosts.toml (default /etc/tsctr/certs.d). */
  hostsDir?: string;
}

/** The default hosts directory, like containerd's /etc/containerd/certs.d. */
export const DEFAULT_HOSTS_DIR = "/etc/tsctr/certs.d";

const NAMESPACE_RE = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/i;

/** A client's handle on the stores under --root and --state for one namespace. */
export class Context {
  readonly root: string;
  readonly state: string;
  readonly namespace: string;
  readonly hostsDir: string;
  #content?: Promise<ContentStore>;
  #metadata?: Promise<MetadataStore>;

  constructor(opts: GlobalOptions) {
    if (!NAMESPACE_RE.test(opts.namespace)) {
      throw errorOf("InvalidArgument", `invalid namespace "${opts.namespace}": use letters, digits, '.', '_' and '-'`);
    }
    this.root = opts.root;
    this.state = opts.state;
    this.namespace = opts.namespace;
    this.hostsDir = opts.hostsDir ?? DEFAULT_HOSTS_DIR;
  }

  /** The content store under <root>/content. */
  content(): Promise<ContentStore> {
    return (this.#content ??= import("../content/mod.ts").then((m) => m.openLocalStore(join(this.root, "content"))));
  }

  /** The metadata database under <root>/metadata.db. */
  metadata(): Promise<MetadataStore> {
    return (this.#metadata ??= import("../metadata/mod.ts").then((m) => m.openMetadata(join(this.root, "metadata.db"))));
  }

  /** Where the overlay snapshotter keeps its directories. */
  snapshotsDir(): string {
    return join(this.root, "snapshots", "overlayfs");
  }

  /** A container's bundle directory under --state. */
  bundleDir(id: string): string {
    return join(this.state, this.namespace, id);
  }

  /** runc's --root for this namespace (like containerd's /run/containerd/runc/<ns>). */
  runcRoot(): string {
    return join(this.state, "runc", this.namespace);
  }

  /** A container's task directory under --root: its log, start and exit records (kept across reboots). */
  taskDir(id: string): string {
    return join(this.root, "tasks", this.namespace, id);
  }

  /** Releases open handles. */
  async close(): Promise<void> {
    if (this.#metadata) (await this.#metadata).close();
  }
}
