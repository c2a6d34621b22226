/**
 * Mounts a user asks for (`-v`, `--mount`, `--tmpfs`): parsing Docker's syntaxes into one request type,
 * and turning resolved requests into runtime-spec mounts.
 */
import { posix } from "node:path";
import { errorOf } from "../errdefs/mod.ts";
import { parseSize } from "./resources.ts";
import type { SpecMount } from "./spec_types.ts";

/** Mount propagation of a bind mount (see mount_namespaces(7)). */
export type Propagation = "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave";

const PROPAGATIONS: readonly string[] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/** A host directory or file bound into the container. `source` is an absolute host path. */
export interface BindRequest {
  type: "bind";
  source: string;
  destination: string;
  readonly: boolean;
  propagation?: Propagation;
}

/** A named volume under tsctr's root; `noCopy` skips filling a new volume from the image. */
export interface VolumeRequest {
  type: "volume";
  source: string;
  destination: string;
  readonly: boolean;
  noCopy: boolean;
}

/** A memory-backed filesystem; `size` in bytes, `mode` the root directory's permission bits. */
export interface TmpfsRequest {
  type: "tmpfs";
  destination: string;
  readonly: boolean;
  size?: number;
  mode?: number;
}

export type MountRequest = BindRequest | VolumeRequest | TmpfsRequest;

/** Volume names: like Docker's, a letter or digit then letters, digits, '_', '.', '-'. */
export const VOLUME_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Parses `-v SRC:DST[:OPTS]`: SRC is an absolute host path (a bind mount) or a volume name; OPTS is a
 * comma list of ro, rw, nocopy and one propagation. Throws InvalidArgument naming the value.
 */
export function parseVolumeFlag(value: string): BindRequest | VolumeRequest {
  const fail = (detail: string) => errorOf("InvalidArgument", `invalid -v "${value}": ${detail}`);
  const parts = value.split(":");
  if (parts.length < 2 || parts.length > 3) throw fail("expected SRC:DST[:ro|rw][,propagation]");
  const [source = "", dst = "", opts = ""] = parts;
  const destination = containerPath(dst, () => fail(`destination "${dst}" must be an absolute path other than /`));
  let readonly = false;
  let propagation: Propagation | undefined;
  let noCopy = false;
  for (const o of parts.length === 3 ? opts.split(",") : []) {
    if (o === "ro" || o === "rw") readonly = o === "ro";
    else if (PROPAGATIONS.includes(o)) propagation = o as Propagation;
    else if (o === "nocopy") noCopy = true;
    else throw fail(`unknown option "${o}" (ro, rw, nocopy, private, rprivate, shared, rshared, slave, rslave)`);
  }
  if (source.startsWith("/")) {
    if (noCopy) throw fail("nocopy applies to volumes, not to host paths");
    return { type: "bind", source: posix.normalize(source), destination, readonly, ...(propagation ? { propagation } : {}) };
  }
  if (!VOLUME_NAME_RE.test(source)) throw fail(`source "${source}" is neither an absolute host path nor a volume name`);
  if (propagation) throw fail("propagation applies to host paths, not to volumes");
  return { type: "volume", source, destination, readonly, noCopy };
}

/**
 * Parses `--mount type=bind|volume|tmpfs,src=…,dst=…[,ro][,bind-propagation=…][,tmpfs-size=…]
 * [,tmpfs-mode=…][,volume-nocopy]` (Docker's keys and aliases). Throws InvalidArgument naming the value.
 */
export function parseMountFlag(value: string): MountRequest {
  const fail = (detail: string) => errorOf("InvalidArgument", `invalid --mount "${value}": ${detail}`);
  const fields = new Map<string, string>();
  for (const field of value.split(",")) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    if (key === "") throw fail("empty field");
    const canonical = ({ source: "src", destination: "dst", target: "dst", readonly: "ro" } as Record<string, string>)[key] ?? key;
    if (fields.has(canonical)) throw fail(`${key} given twice`);
    fields.set(canonical, eq < 0 ? "true" : field.slice(eq + 1));
  }
  const type = fields.get("type") ?? "volume";
  const allowed: Record<string, readonly string[]> = {
    bind: ["type", "src", "dst", "ro", "bind-propagation"],
    volume: ["type", "src", "dst", "ro", "volume-nocopy"],
    tmpfs: ["type", "dst", "ro", "tmpfs-size", "tmpfs-mode"],
  };
  const keys = allowed[type];
  if (!keys) throw fail(`unknown type "${type}" (bind, volume, tmpfs)`);
  for (const k of fields.keys()) if (!keys.includes(k)) throw fail(`"${k}" does not apply to type=${type}`);
  const dst = fields.get("dst");
  if (dst === undefined) throw fail("dst= is required");
  const destination = containerPath(dst, () => fail(`destination "${dst}" must be an absolute path other than /`));
  const readonly = flagValue(fields.get("ro"), "ro", fail);
  if (type === "tmpfs") {
    const out: TmpfsRequest = { type: "tmpfs", destination, readonly };
    const size = fields.get("tmpfs-size");
    if (size !== undefined) out.size = parseSize(size, "tmpfs-size");
    const mode = fields.get("tmpfs-mode");
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) throw fail(`tmpfs-mode "${mode}" is not an octal mode`);
      out.mode = parseInt(mode, 8);
    }
    return out;
  }
  const src = fields.get("src");
  if (!src) throw fail("src= is required");
  if (type === "bind") {
    if (!src.startsWith("/")) throw fail(`bind source "${src}" must be an absolute host path`);
    const propagation = fields.get("bind-propagation");
    if (propagation !== undefined && !PROPAGATIONS.includes(propagation)) throw fail(`unknown bind-propagation "${propagation}"`);
    return { type: "bind", source: posix.normalize(src), destination, readonly, ...(propagation ? { propagation: propagation as Propagation } : {}) };
  }
  if (!VOLUME_NAME_RE.test(src)) throw fail(`"${src}" is not a volume name`);
  return { type: "volume", source: src, destination, readonly, noCopy: flagValue(fields.get("volume-nocopy"), "volume-nocopy", fail) };
}

/** Parses `--tmpfs DST[:OPTS]` where OPTS may hold size=…, mode=… and ro. */
export function parseTmpfsFlag(value: string): TmpfsRequest {
  const fail = (detail: string) => errorOf("InvalidArgument", `invalid --tmpfs "${value}": ${detail}`);
  const colon = value.indexOf(":");
  const dst = colon < 0 ? value : value.slice(0, colon);
  const out: TmpfsRequest = { type: "tmpfs", destination: containerPath(dst, () => fail("expected an absolute path other than /")), readonly: false };
  for (const o of colon < 0 ? [] : value.slice(colon + 1).split(",")) {
    if (o === "ro" || o === "rw") out.readonly = o === "ro";
    else if (o.startsWith("size=")) out.size = parseSize(o.slice(5), "tmpfs size");
    else if (/^mode=[0-7]{1,4}$/.test(o)) out.mode = parseInt(o.slice(5), 8);
    else throw fail(`unknown option "${o}" (size=, mode=, ro)`);
  }
  return out;
}

/** Refuses two requests for the same destination (InvalidArgument). */
export function checkDestinations(requests: readonly MountRequest[]): void {
  const seen = new Set<string>();
  for (const r of requests) {
    if (seen.has(r.destination)) throw errorOf("InvalidArgument", `invalid mounts: ${r.destination} is mounted twice`);
    seen.add(r.destination);
  }
}

/**
 * The spec mount for a request; volumes must already be resolved to their host directory (`hostPath`).
 * Bind mounts are recursive and private unless a propagation is given.
 */
export function specMount(r: MountRequest, hostPath?: string): SpecMount {
  if (r.type === "tmpfs") {
    const options = ["nosuid", "nodev", r.readonly ? "ro" : "rw"];
    if (r.size !== undefined) options.push(`size=${r.size}`);
    options.push(`mode=${(r.mode ?? 0o1777).toString(8)}`);
    return { destination: r.destination, type: "tmpfs", source: "tmpfs", options };
  }
  const source = r.type === "bind" ? r.source : hostPath;
  if (!source) throw errorOf("Internal", `mount volume ${r.source}: not resolved to a host directory`);
  const options = ["rbind", r.readonly ? "ro" : "rw"];
  options.push(r.type === "bind" && r.propagation ? r.propagation : "rprivate");
  return { destination: r.destination, type: "bind", source, options };
}

function containerPath(path: string, fail: () => Error): string {
  if (!path.startsWith("/")) throw fail();
  const normal = posix.normalize(path).replace(/\/+$/, "");
  if (normal === "") throw fail();
  return normal;
}

function flagValue(value: string | undefined, key: string, fail: (detail: string) => Error): boolean {
  if (value === undefined || value === "false" || value === "0") return false;
  if (value === "true" || value === "1") return true;
  throw fail(`${key}=${value}: expected true or false`);
}
