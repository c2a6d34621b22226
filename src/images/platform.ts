/**
 * Platforms (os/architecture/variant): parsing, normalisation, the host's platform, and choosing the best
 * manifest of an index for a wanted platform, the way containerd's platform matcher does.
 *
 * Normal form: os lowercase (default linux); architecture in GOARCH terms (amd64, arm64, arm, 386…);
 * arm64 always carries variant "v8" unless another is named; arm defaults to "v7"; amd64 "v1" is dropped.
 */
import { readFileSync } from "node:fs";
import { errorOf } from "../errdefs/mod.ts";
import { hostArchitecture } from "../platform/runtime.ts";
import type { Descriptor, Index, Platform } from "./types.ts";
import { MediaTypes } from "./types.ts";

const KNOWN_OS = new Set(["linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "android", "aix", "plan9", "js", "wasip1"]);
const COMPONENT_RE = /^[A-Za-z0-9_.-]+$/;

/** Returns `p` in normal form (see the module comment); other fields (os.version, os.features) are kept. */
export function normalizePlatform(p: Partial<Platform>): Platform {
  let os = (p.os ?? "").toLowerCase() || "linux";
  if (os === "macos") os = "darwin";
  let arch = (p.architecture ?? "").toLowerCase();
  let variant = (p.variant ?? "").toLowerCase();
  switch (arch) {
    case "i386":
    case "i486":
    case "i586":
    case "i686":
    case "x86":
      arch = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "x64":
    case "amd64":
      arch = "amd64";
      if (variant === "v1" || variant === "1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (variant === "" || variant === "8" || variant === "v8.0") variant = "v8";
      break;
    case "armhf":
      arch = "arm";
      variant = "v7";
      break;
    case "armel":
      arch = "arm";
      variant = "v6";
      break;
    case "armv5":
    case "armv5l":
    case "armv6":
    case "armv6l":
    case "armv7":
    case "armv7l":
    case "armv8":
    case "armv8l":
      variant = `v${arch[4]}`;
      arch = "arm";
      break;
    case "arm":
      if (variant === "") variant = "v7";
      break;
  }
  if (/^[0-9]+$/.test(variant)) variant = `v${variant}`;
  const out: Platform = { ...p, os, architecture: arch };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/**
 * Parses "os/arch[/variant]", "arch" or "os" into a normalised Platform. A lone component is an OS when it
 * names one (the architecture is then the host's), otherwise an architecture on linux.
 * Throws InvalidArgument for empty or malformed input.
 */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split("/");
  if (parts.length > 3 || parts.some((x) => !COMPONENT_RE.test(x))) {
    throw errorOf("InvalidArgument", `invalid platform "${s}": expected os/arch[/variant], e.g. linux/arm64/v8`);
  }
  const [a, b, c] = parts as [string, string?, string?];
  if (b === undefined) {
    if (KNOWN_OS.has(a.toLowerCase())) return normalizePlatform({ os: a, architecture: hostArchitecture() });
    return normalizePlatform({ os: "linux", architecture: a });
  }
  return normalizePlatform({ os: a, architecture: b, variant: c });
}

/** Formats a platform as "os/arch[/variant]" (as given; normalise first for the canonical form). */
export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

let cachedHost: Platform | undefined;

/**
 * The platform this process runs on, normalised. On arm the variant comes from /proc/cpuinfo's
 * "CPU architecture" line (v8 for arm64, v7 for arm when it cannot be read, e.g. under qemu-user).
 */
export function hostPlatform(): Platform {
  if (cachedHost) return { ...cachedHost };
  const arch = hostArchitecture();
  let variant: string | undefined;
  if (arch === "arm" || arch === "arm64") variant = cpuVariant(arch);
  cachedHost = normalizePlatform({ os: "linux", architecture: arch, variant });
  return { ...cachedHost };
}

function cpuVariant(arch: string): string | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return undefined;
  }
  const m = /^CPU architecture\s*:\s*(\d+)/m.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (arch === "arm64") return n >= 8 ? "v8" : undefined;
  // An ARMv6 core reports "CPU architecture: 7" on some kernels; the model name tells the truth.
  if (n === 7 && /^model name\s*:.*ARMv6/im.test(text)) return "v6";
  return `v${n}`;
}

/**
 * The variants a `want` platform can run, best first: arm/v8 → v8, v7, v6, v5; arm/v7 → v7, v6, v5;
 * amd64/v3 → v3, v2, v1; otherwise just the wanted variant. "" stands for "no variant".
 */
function compatibleVariants(want: Platform): string[] {
  const v = want.variant ?? "";
  if (want.architecture === "arm") {
    const n = Number(v.slice(1));
    const out: string[] = [];
    for (let i = Number.isInteger(n) && n > 0 ? n : 7; i >= 5; i--) out.push(`v${i}`);
    return out;
  }
  if (want.architecture === "amd64") {
    const n = v === "" ? 1 : Number(v.slice(1));
    const out: string[] = [];
    for (let i = Number.isInteger(n) && n > 0 ? n : 1; i >= 2; i--) out.push(`v${i}`);
    out.push("");
    return out;
  }
  return [v];
}

/**
 * How well `have` serves `want`: 0 is an exact match, higher is a worse but usable fallback, -1 is no match.
 * Both sides are normalised first, so arm64 ≡ arm64/v8 and x86_64 ≡ amd64.
 */
export function platformRank(want: Platform, have: Platform): number {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return -1;
  return compatibleVariants(w).indexOf(h.variant ?? "");
}

/** True when an image built for `have` runs on `want` (exactly or through a compatible older variant). */
export function platformMatches(want: Platform, have: Platform): boolean {
  return platformRank(want, have) >= 0;
}

const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest, MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

/** True for index entries that describe a runnable image (not attestations, not unknown/unknown). */
export function isImageEntry(d: Descriptor): d is Descriptor & { platform: Platform } {
  if (!d.platform || !MANIFEST_TYPES.has(d.mediaType)) return false;
  if (d.platform.os === "unknown" || d.platform.architecture === "unknown") return false;
  return d.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest";
}

/**
 * Picks the index entry that best serves `want`: an exact variant first, then the nearest compatible
 * older variant; ties go to the entry listed first. Entries without a platform, attestations and
 * unknown/unknown are never chosen. Throws NotFound naming `want`, `where` (e.g. the reference) and the
 * platforms that exist.
 */
export function selectManifest(index: Index, want: Platform, where = "the image index"): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  const available: string[] = [];
  for (const d of index.manifests) {
    if (!isImageEntry(d)) continue;
    available.push(formatPlatform(normalizePlatform(d.platform)));
    const r = platformRank(want, d.platform);
    if (r >= 0 && r < bestRank) {
      best = d;
      bestRank = r;
    }
  }
  if (best) return best;
  const list = available.length ? [...new Set(available)].join(", ") : "none";
  throw errorOf("NotFound", `no manifest for ${formatPlatform(normalizePlatform(want))} in ${where}; available: ${list}`);
}
