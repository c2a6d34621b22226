/**
 * Images that `tsctr check --repair` found damaged and repaired by removing the broken pieces: the name
 * stays (on an air-gapped device it says what to fetch again) with a mark, until the next pull of it
 * succeeds and clears the mark.
 */
import type { MetadataStore } from "./db.ts";

export interface ImageMark {
  namespace: string;
  name: string;
  reason: string;
  markedAt: string;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS image_marks (
  namespace TEXT NOT NULL, name TEXT NOT NULL, reason TEXT NOT NULL, marked_at TEXT NOT NULL, PRIMARY KEY (namespace, name));`;

/** Marks image `name` as needing a pull, with the reason. */
export function markImage(md: MetadataStore, namespace: string, name: string, reason: string): void {
  md.execSql(SCHEMA);
  md.transaction(() =>
    md
      .statement("INSERT INTO image_marks (namespace, name, reason, marked_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET reason=excluded.reason")
      .run(namespace, name, reason, new Date().toISOString()),
  );
}

/** Clears the mark of image `name` (call inside the transaction that writes the pulled image). */
export function clearImageMark(md: MetadataStore, namespace: string, name: string): void {
  md.execSql(SCHEMA);
  md.statement("DELETE FROM image_marks WHERE namespace = ? AND name = ?").run(namespace, name);
}

/** Every marked image. */
export function listImageMarks(md: MetadataStore): ImageMark[] {
  md.execSql(SCHEMA);
  return md
    .statement("SELECT * FROM image_marks ORDER BY namespace, name")
    .all()
    .map((r) => ({ namespace: String(r.namespace), name: String(r.name), reason: String(r.reason), markedAt: String(r.marked_at) }));
}
