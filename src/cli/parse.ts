/** Option value parsers for commander: they throw InvalidArgument errors that the CLI reports in one line. */
import { errorOf } from "../errdefs/mod.ts";

/** A whole number ≥ 1 ("1048576"); anything else is InvalidArgument. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw errorOf("InvalidArgument", `invalid number "${value}": expected a whole number of at least 1`);
  return n;
}

/** A whole number ≥ 0 ("0", "2"); anything else is InvalidArgument. */
export function nonNegativeInteger(value: string): number {
  return value === "0" ? 0 : positiveInteger(value);
}

/** Collects a repeatable `KEY=VALUE` option (`--env`), refusing anything without a key and an "=". */
export function keyValue(value: string, previous: string[]): string[] {
  if (!/^[^=]+=/.test(value)) throw errorOf("InvalidArgument", `invalid "${value}": expected KEY=VALUE`);
  return [...previous, value];
}
