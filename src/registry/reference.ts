/**
 * Image references with Docker's normalisation:
 *   busybox                      → docker.io/library/busybox:latest
 *   user/img                     → docker.io/user/img:latest
 *   localhost:5000/x             → localhost:5000/x:latest
 *   127.0.0.1:5055/a/b:tag       → 127.0.0.1:5055/a/b:tag
 *   x@sha256:…                   → docker.io/library/x@sha256:…   (no tag is implied next to a digest)
 *   x:tag@sha256:…               → docker.io/library/x:tag@sha256:… (the digest is what gets fetched)
 * Grammar (distribution/reference): name [":" tag] ["@" digest]; the first path component is a registry
 * host when it contains "." or ":", is "localhost", or has upper case letters.
 */
import { errorOf } from "../errdefs/mod.ts";
import { isDigest } from "../digest/mod.ts";
import type { Digest } from "../digest/mod.ts";

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DOMAIN = "index.docker.io";
const DOCKER_API_HOST = "registry-1.docker.io";

const TAG_RE = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_RE = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const MAX_NAME = 255;

/** A parsed, normalised image reference. Immutable; `toString()` gives the full form. */
export class Reference {
  /** Registry host as written, e.g. "docker.io", "localhost:5000", "127.0.0.1:5055". */
  readonly domain: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;

  constructor(domain: string, path: string, tag?: string, digest?: Digest) {
    this.domain = domain;
    this.path = path;
    this.tag = tag;
    this.digest = digest;
  }

  /** domain/path, e.g. "docker.io/library/busybox". */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The host:port to talk the distribution API to (docker.io is served by registry-1.docker.io). */
  get apiHost(): string {
    return apiHostOf(this.domain);
  }

  /** What goes after /manifests/ in the API: the digest when there is one, else the tag. */
  get locator(): string {
    return this.digest ?? this.tag ?? "latest";
  }

  /** The same repository pinned to `digest` (the tag is kept for display). */
  withDigest(digest: Digest): Reference {
    return new Reference(this.domain, this.path, this.tag, digest);
  }

  /** Full form: domain/path[:tag][@digest]. */
  toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ""}${this.digest !== undefined ? `@${this.digest}` : ""}`;
  }
}

/** The host:port serving the distribution API of registry `domain` (registry-1.docker.io for docker.io). */
export function apiHostOf(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_API_HOST : domain;
}

function invalid(s: string, detail: string): never {
  throw errorOf("InvalidArgument", `invalid reference "${s.slice(0, 300)}": ${detail}`);
}

/**
 * Parses and normalises an image reference (see the module comment). Adds "docker.io", "library/" and the
 * "latest" tag the way Docker does. Throws InvalidArgument naming the reference and the rule it breaks.
 */
export function parseReference(s: string): Reference {
  if (s === "") invalid(s, "empty");
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) invalid(s, "digest must be sha256:<64 lowercase hex>");
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) invalid(s, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  }
  if (rest === "") invalid(s, "missing repository name");

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) invalid(s, `"${domain}" is not a valid registry host`);
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = `library/${path}`;
  if (/^[a-f0-9]{64}$/.test(path.replace(/^library\//, "")) && domain === DEFAULT_DOMAIN && slash < 0) {
    invalid(s, "a 64-character hexadecimal string is an image ID, not a repository name");
  }
  for (const c of path.split("/")) {
    if (c !== c.toLowerCase()) invalid(s, "repository name must be lowercase");
    if (!PATH_COMPONENT_RE.test(c)) invalid(s, `"${c}" is not a valid repository path component`);
  }
  if (domain.length + 1 + path.length > MAX_NAME) invalid(s, `repository name longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = "latest";
  return new Reference(domain, path, tag, digest);
}
