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

/** A byte size: "1048576", "512k", "10m", "1g" (also "10MiB", "10MB": powers of 1024); at least 1. */
export function byteSize(value: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** " kmg".indexOf((m[2] || " ").toLowerCase()) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1) throw errorOf("InvalidArgument", `invalid size "${value}": expected a number of bytes with an optional unit k, m or g`);
  return n;
}
