/**
 * The process's file mode creation mask, read without changing it (process.umask() with no argument sets
 * it to 0 and back, which another thread could observe).
 */
import { readFileSync } from "node:fs";

/** The umask now, from /proc/self/status (Linux 4.7+); null where it cannot be read. */
export function currentUmask(): number | null {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m?.[1] !== undefined ? parseInt(m[1], 8) : null;
  } catch {
    return null;
  }
}
