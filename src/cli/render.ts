/** Output helpers: aligned tables and human sizes, like ctr's tabwriter output, and JSON for scripts. */
import { Option } from "commander";

/** Formats rows as columns separated by at least two spaces; the first row is the header. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 2))).join("").trimEnd()).join("\n") + "\n";
}

/** 1536 → "1.5 KiB", like ctr's progress.Bytes. */
export function humanSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export type OutputFormat = "table" | "json";

/** The `--format table|json` option of listing commands (table by default). */
export function formatOption(): Option {
  return new Option("--format <format>", "output format").choices(["table", "json"]).default("table");
}

/** A list as one JSON array (two-space indented, newline-terminated); field names are the records' own. */
export function json(list: readonly object[]): string {
  return `${JSON.stringify(list, null, 2)}\n`;
}
