/** Small text helpers for test and benchmark output. */

/** The last few meaningful lines of some output, on one line. */
export function lastLines(text: string, n = 3): string {
  return text
    // drop terminal escapes (ctr's progress) and carriage-return redraws
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(" | ");
}
