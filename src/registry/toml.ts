/**
 * A parser for the subset of TOML 1.0 that containerd's hosts.toml files use: comments, `[table]` headers
 * with bare, quoted and dotted keys, `key = value` (dotted keys too), basic and literal strings, booleans,
 * integers, and arrays (nested, over several lines, with a trailing comma). Inline tables, arrays of tables,
 * multi-line strings, floats and dates are refused with an error naming the line, not misread.
 *
 *   const doc = parseToml('server = "https://registry-1.docker.io"\n[host."http://10.0.0.2:5000"]\n', "hosts.toml");
 *   // { server: "https://registry-1.docker.io", host: { "http://10.0.0.2:5000": {} } }
 */
import { errorOf } from "../errdefs/mod.ts";

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

const BARE_KEY = /[A-Za-z0-9_-]/;
const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };

/** True for a plain table (not an array or a scalar). */
export function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses `text` into nested tables. Guarantees: every key is defined once, a table header names a table
 * not yet defined, and anything outside the subset above throws InvalidArgument
 * "<source> line N: <what is wrong>".
 */
export function parseToml(text: string, source: string): TomlTable {
  return new Parser(text, source).document();
}

class Parser {
  readonly #s: string;
  readonly #source: string;
  #i = 0;
  #line = 1;
  readonly #root: TomlTable = {};
  /** Tables created by a [header] (a second header for the same table is an error). */
  readonly #explicit = new Set<TomlTable>();

  constructor(text: string, source: string) {
    this.#s = text.replace(/^\uFEFF/, "");
    this.#source = source;
  }

  document(): TomlTable {
    let table = this.#root;
    for (;;) {
      this.#skipBlankLines();
      if (this.#i >= this.#s.length) return this.#root;
      if (this.#s[this.#i] === "[") table = this.#header();
      else this.#keyValue(table);
      this.#endOfLine();
    }
  }

  #fail(detail: string, line = this.#line): never {
    throw errorOf("InvalidArgument", `${this.#source} line ${line}: ${detail}`);
  }

  #peek(): string | undefined {
    return this.#s[this.#i];
  }

  /** Skips spaces and tabs (not newlines). */
  #skipSpaces(): void {
    while (this.#peek() === " " || this.#peek() === "\t") this.#i++;
  }

  #skipComment(): void {
    if (this.#peek() !== "#") return;
    while (this.#i < this.#s.length && this.#peek() !== "\n") this.#i++;
  }

  /** Skips whitespace, newlines and comments (between statements and inside arrays). */
  #skipBlankLines(): void {
    for (;;) {
      this.#skipSpaces();
      this.#skipComment();
      const c = this.#peek();
      if (c === "\n") {
        this.#line++;
        this.#i++;
      } else if (c === "\r" && this.#s[this.#i + 1] === "\n") {
        this.#i++;
      } else {
        return;
      }
    }
  }

  /** After a statement only a comment and the end of the line may follow. */
  #endOfLine(): void {
    this.#skipSpaces();
    this.#skipComment();
    if (this.#peek() === "\r") this.#i++;
    if (this.#i < this.#s.length && this.#peek() !== "\n") this.#fail(`unexpected "${this.#peek()}" after the value (one key = value per line)`);
  }

  #header(): TomlTable {
    this.#i++;
    if (this.#peek() === "[") this.#fail("arrays of tables ([[…]]) are not supported");
    this.#skipSpaces();
    const keys = this.#dottedKey();
    this.#skipSpaces();
    if (this.#peek() !== "]") this.#fail('expected "]" to close the table header');
    this.#i++;
    let table = this.#root;
    for (const k of keys) table = this.#child(table, k);
    if (this.#explicit.has(table)) this.#fail(`table [${keys.join(".")}] is defined twice`);
    this.#explicit.add(table);
    return table;
  }

  /** The sub-table `key` of `table`, created when absent; an error when `key` holds a value. */
  #child(table: TomlTable, key: string): TomlTable {
    const v = table[key];
    if (v === undefined) return (table[key] = {});
    if (!isTable(v)) this.#fail(`key "${key}" already holds a value, not a table`);
    return v;
  }

  #keyValue(table: TomlTable): void {
    const keys = this.#dottedKey();
    this.#skipSpaces();
    if (this.#peek() !== "=") this.#fail(`expected "=" after key "${keys.join(".")}"`);
    this.#i++;
    this.#skipSpaces();
    const value = this.#value();
    let t = table;
    for (const k of keys.slice(0, -1)) t = this.#child(t, k);
    const last = keys.at(-1)!;
    if (last in t) this.#fail(`key "${keys.join(".")}" is defined twice`);
    t[last] = value;
  }

  #dottedKey(): string[] {
    const keys = [this.#key()];
    for (;;) {
      this.#skipSpaces();
      if (this.#peek() !== ".") return keys;
      this.#i++;
      this.#skipSpaces();
      keys.push(this.#key());
    }
  }

  #key(): string {
    const c = this.#peek();
    if (c === '"') return this.#basicString();
    if (c === "'") return this.#literalString();
    const start = this.#i;
    while (this.#i < this.#s.length && BARE_KEY.test(this.#s[this.#i]!)) this.#i++;
    if (this.#i === start) this.#fail(c === undefined || c === "\n" ? "expected a key" : `unexpected "${c}" where a key was expected`);
    return this.#s.slice(start, this.#i);
  }

  #value(): TomlValue {
    const c = this.#peek();
    if (c === '"') {
      if (this.#s.startsWith('"""', this.#i)) this.#fail("multi-line strings are not supported");
      return this.#basicString();
    }
    if (c === "'") {
      if (this.#s.startsWith("'''", this.#i)) this.#fail("multi-line strings are not supported");
      return this.#literalString();
    }
    if (c === "[") return this.#array();
    if (c === "{") this.#fail("inline tables ({…}) are not supported; use a [table] header");
    const m = /^[^\s,\]#]+/.exec(this.#s.slice(this.#i, this.#i + 64));
    const word = m?.[0] ?? "";
    this.#i += word.length;
    if (word === "true") return true;
    if (word === "false") return false;
    if (/^[+-]?(0|[1-9](_?[0-9])*)$/.test(word)) {
      const n = Number(word.replaceAll("_", ""));
      if (!Number.isSafeInteger(n)) this.#fail(`integer ${word} is out of range`);
      return n;
    }
    this.#fail(word === "" ? "expected a value" : `unsupported value "${word}" (use a quoted string, true/false, an integer or an array)`);
  }

  #array(): TomlValue[] {
    const opened = this.#line;
    this.#i++;
    const out: TomlValue[] = [];
    for (;;) {
      this.#skipBlankLines();
      if (this.#peek() === "]") {
        this.#i++;
        return out;
      }
      if (this.#i >= this.#s.length) this.#fail('unterminated array: expected "]"', opened);
      out.push(this.#value());
      this.#skipBlankLines();
      if (this.#peek() === ",") this.#i++;
      else if (this.#i >= this.#s.length) this.#fail('unterminated array: expected "]"', opened);
      else if (this.#peek() !== "]") this.#fail('expected "," or "]" in the array');
    }
  }

  #basicString(): string {
    this.#i++;
    let out = "";
    for (;;) {
      const c = this.#s[this.#i++];
      if (c === undefined || c === "\n") this.#fail("unterminated string");
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.#s[this.#i++] ?? "";
      if (e in ESCAPES) out += ESCAPES[e];
      else if (e === "u" || e === "U") {
        const len = e === "u" ? 4 : 8;
        const hex = this.#s.slice(this.#i, this.#i + len);
        const cp = /^[0-9a-fA-F]+$/.test(hex) && hex.length === len ? parseInt(hex, 16) : NaN;
        if (!(cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) this.#fail(`invalid escape \\${e}${hex}`);
        out += String.fromCodePoint(cp);
        this.#i += len;
      } else this.#fail(`invalid escape "\\${e}" in a string`);
    }
  }

  #literalString(): string {
    this.#i++;
    const end = this.#s.indexOf("'", this.#i);
    const nl = this.#s.indexOf("\n", this.#i);
    if (end < 0 || (nl >= 0 && nl < end)) this.#fail("unterminated string");
    const out = this.#s.slice(this.#i, end);
    this.#i = end + 1;
    return out;
  }
}
