/**
 * Resolving an image's `User` ("", "name", "uid", "uid:gid", "name:group", "uid:group"…) to numeric ids
 * from the container's own /etc/passwd and /etc/group, with the rules of Docker and containerd.
 */
import { errorOf } from "../errdefs/mod.ts";
import { readFileInRoot } from "./in_root.ts";

/** Who the container's process runs as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Groups from /etc/group that list the user as a member (only when no group was given). */
  additionalGids: number[];
  /** The home directory from /etc/passwd, when the user has an entry. */
  home?: string;
}

/** One usable /etc/passwd line. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One usable /etc/group line. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The largest uid or gid Linux accepts (2^32 - 2; -1 means "unchanged"). */
const MAX_ID = 0xfffffffe;

/**
 * Resolves `user` against the passwd and group files inside `rootfs`, never following a link out of it.
 * A number needs no entry (a uid without one gets gid 0); a name must have one, else InvalidArgument
 * "unable to find user X: no matching entries in passwd file" (the same for groups).
 */
export async function resolveUser(rootfs: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = (user ?? "").trim();
  const colon = spec.indexOf(":");
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (groupPart === "" || (userPart === "" && groupPart !== undefined)) throw errorOf("InvalidArgument", `resolve user ${JSON.stringify(spec)}: expected user[:group]`);

  const passwd = await readEntries(rootfs, "/etc/passwd", parsePasswdLine);
  const wanted = userPart === "" ? "0" : userPart;
  const uidNumber = parseId(wanted);
  const entry = passwd.find((e) => (uidNumber === undefined ? e.name === wanted : e.uid === uidNumber));
  if (!entry && uidNumber === undefined) throw errorOf("InvalidArgument", `unable to find user ${wanted}: no matching entries in passwd file`);

  const result: ResolvedUser = { uid: entry?.uid ?? uidNumber ?? 0, gid: entry?.gid ?? 0, additionalGids: [] };
  if (entry) result.home = entry.home;

  const groups = await readEntries(rootfs, "/etc/group", parseGroupLine);
  if (groupPart !== undefined) {
    const gidNumber = parseId(groupPart);
    const group = groups.find((g) => (gidNumber === undefined ? g.name === groupPart : g.gid === gidNumber));
    if (!group && gidNumber === undefined) throw errorOf("InvalidArgument", `unable to find group ${groupPart}: no matching entries in group file`);
    result.gid = group?.gid ?? gidNumber ?? 0;
  } else if (entry) {
    for (const g of groups) {
      if (g.members.includes(entry.name) && g.gid !== result.gid && !result.additionalGids.includes(g.gid)) result.additionalGids.push(g.gid);
    }
  }
  return result;
}

/**
 * Parses one /etc/passwd line ("name:password:uid:gid:gecos:home:shell"); undefined for comments, blank
 * or malformed lines.
 */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.split(":");
  if (line.startsWith("#") || f.length < 4) return undefined;
  const uid = parseId(f[2] ?? "");
  const gid = parseId(f[3] ?? "");
  if (uid === undefined || gid === undefined || !f[0]) return undefined;
  return { name: f[0], uid, gid, home: f[5] || "/" };
}

/** Parses one /etc/group line ("name:password:gid:member,member"); undefined for unusable lines. */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.split(":");
  if (line.startsWith("#") || f.length < 3) return undefined;
  const gid = parseId(f[2] ?? "");
  if (gid === undefined || !f[0]) return undefined;
  return { name: f[0], gid, members: (f[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "") };
}

async function readEntries<T>(rootfs: string, path: string, parse: (line: string) => T | undefined): Promise<T[]> {
  const data = await readFileInRoot(rootfs, path);
  if (!data) return [];
  const out: T[] = [];
  for (const line of data.toString("utf8").split("\n")) {
    const entry = parse(line.trim());
    if (entry) out.push(entry);
  }
  return out;
}

function parseId(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}
