/**
 * Names inside image archives. An archive is untrusted: every name is cleaned and must stay inside the
 * archive (no absolute paths, no `..` that climbs out), the same rule for tar entries and for the paths
 * that manifest.json and symlinks point at.
 */
import { digestHex, isDigest, type Digest } from "../digest/mod.ts";
import { errorOf } from "../errdefs/mod.ts";

/** The archive path of a blob in an OCI image layout: `blobs/sha256/<hex>`. */
export function blobPath(digest: Digest): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** The digest a `blobs/sha256/<hex>` path names, or undefined for any other path. */
export function digestOfBlobPath(path: string): Digest | undefined {
  const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
  if (!m) return undefined;
  const d = `sha256:${m[1]}`;
  return isDigest(d) ? d : undefined;
}

/**
 * `name` cleaned to a relative path inside the archive ("./a//b/" → "a/b"; "" for the archive's root).
 * Throws InvalidArgument for an absolute path or one that climbs out with `..`; `what` names the archive
 * and where the name came from in the message.
 */
export function cleanArchivePath(name: string, what: string): string {
  if (name.startsWith("/")) throw errorOf("InvalidArgument", `${what}: absolute path "${printable(name)}" is not allowed in an image archive`);
  const out: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) throw errorOf("InvalidArgument", `${what}: path "${printable(name)}" points outside the archive`);
      out.pop();
    } else {
      out.push(part);
    }
  }
  return out.join("/");
}

/** Resolves a symlink `target` found at archive path `at`, staying inside the archive. */
export function resolveLink(at: string, target: string, what: string): string {
  const dir = at.includes("/") ? at.slice(0, at.lastIndexOf("/") + 1) : "";
  try {
    return cleanArchivePath(target.startsWith("/") ? target : dir + target, what);
  } catch {
    throw errorOf("InvalidArgument", `${what}: link target "${printable(target)}" points outside the archive`);
  }
}

/** A name made safe to show in a one-line message. */
export function printable(s: string): string {
  return s.slice(0, 200).replace(/[^\x20-\x7e]/g, "?");
}
