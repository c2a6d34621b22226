/**
 * Namespaces: created explicitly (`namespaces create`) or implicitly by the first image, container or
 * snapshot record in them. A namespace can be removed only when nothing in it remains.
 */
import { errorOf } from "../errdefs/mod.ts";
import type { MetadataStore } from "./db.ts";

const SCHEMA = "CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);";

/** Every namespace: the created ones and those that hold records. */
export function listNamespaces(md: MetadataStore): string[] {
  md.execSql(SCHEMA);
  const names = new Set<string>();
  for (const table of ["namespaces", "images", "containers", "snapshots"]) {
    const col = table === "namespaces" ? "name" : "namespace";
    for (const r of md.statement(`SELECT DISTINCT ${col} AS n FROM ${table}`).all()) names.add(String(r.n));
  }
  return [...names].sort();
}

/** Creates namespace `name`; AlreadyExists when it exists. */
export function createNamespace(md: MetadataStore, name: string): void {
  md.transaction(() => {
    if (listNamespaces(md).includes(name)) throw errorOf("AlreadyExists", `namespace "${name}": already exists`);
    md.statement("INSERT INTO namespaces (name, created_at) VALUES (?, ?)").run(name, new Date().toISOString());
  });
}

/** What namespace `name` still holds ("2 images, 1 container"), or "" when it is empty. */
export function namespaceContents(md: MetadataStore, name: string): string {
  const parts: string[] = [];
  for (const [table, word] of [["images", "image"], ["containers", "container"], ["snapshots", "snapshot"]] as const) {
    const n = Number(md.statement(`SELECT COUNT(*) AS n FROM ${table} WHERE namespace = ?`).get(name)?.n ?? 0);
    if (n > 0) parts.push(`${n} ${word}${n === 1 ? "" : "s"}`);
  }
  return parts.join(", ");
}

/** Removes namespace `name`: NotFound when absent, FailedPrecondition while it holds anything. */
export function removeNamespace(md: MetadataStore, name: string): void {
  md.transaction(() => {
    if (!listNamespaces(md).includes(name)) throw errorOf("NotFound", `namespace "${name}": not found`);
    const left = namespaceContents(md, name);
    if (left) throw errorOf("FailedPrecondition", `remove namespace "${name}": it still holds ${left}`);
    md.statement("DELETE FROM namespaces WHERE name = ?").run(name);
  });
}
