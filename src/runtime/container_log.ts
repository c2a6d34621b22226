/**
 * Reading a container's log as its monitor writes it: `container.log` plus rotated `container.log.1`,
 * `.2`… (older), one record per line in the CRI format `<RFC 3339 time> <stdout|stderr> <F|P> <text>`,
 * where P marks a piece of a line (no newline follows it in the output).
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { Buffer } from "node:buffer";
import { setTimeout as sleep } from "node:timers/promises";
import { isErrno } from "../errdefs/mod.ts";
import { TASK_FILES, taskFile } from "./task_files.ts";

/** One line (or piece of a line) the container wrote. */
export interface LogRecord {
  time: string;
  stream: "stdout" | "stderr";
  text: string;
  /** True when the text did not end with a newline (a long line cut, or the stream's last bytes). */
  partial: boolean;
}

export interface ReadLogOptions {
  /** Only the last N records already written (new ones still follow with `follow`). */
  tail?: number;
  /** Keep reading as the log grows (across rotations) until `done` says the writer is gone. */
  follow?: boolean;
  /** With `follow`: resolves true once nothing more will be written (the monitor exited). */
  done?: () => Promise<boolean>;
  /** With `follow`: how often to look for new records; default 200 ms. */
  pollMs?: number;
}

const LINE_RE = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s;

/** Parses one log line; undefined for a line that is not a record (skipped by readers). */
export function parseLogLine(line: string): LogRecord | undefined {
  const m = LINE_RE.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as LogRecord["stream"], partial: m[3] === "P", text: m[4]! };
}

/** An open file read from a position, handing out complete lines only. */
export class LineCursor {
  readonly fh: FileHandle;
  #pos: number;
  #rest = Buffer.alloc(0);
  readonly #buf = Buffer.alloc(64 * 1024);

  constructor(fh: FileHandle, pos = 0) {
    this.fh = fh;
    this.#pos = pos;
  }

  /** Opens `path` at its start (or, with `atEnd`, past what it holds now); undefined when it does not exist. */
  static async open(path: string, atEnd = false): Promise<LineCursor | undefined> {
    try {
      const fh = await open(path, "r");
      return new LineCursor(fh, atEnd ? (await fh.stat()).size : 0);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  /** Every complete line from the position to the current end of the file. */
  async *drain(): AsyncGenerator<string> {
    for (;;) {
      const { bytesRead } = await this.fh.read(this.#buf, 0, this.#buf.length, this.#pos);
      if (bytesRead === 0) return;
      this.#pos += bytesRead;
      let chunk = Buffer.concat([this.#rest, this.#buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = chunk.indexOf(10)) >= 0) {
        yield chunk.subarray(0, nl).toString();
        chunk = chunk.subarray(nl + 1);
      }
      this.#rest = Buffer.from(chunk);
    }
  }
}

/**
 * The lines appended to `path` from `cursor` on (or from the start of `path` once it appears), across
 * rotations (the renamed file is drained, then the new one read from its start), until `done()` resolves
 * true and all is drained. Closes the cursors it opens and `cursor`.
 */
export async function* followLines(path: string, cursor: LineCursor | undefined, opts: { done?: () => Promise<boolean>; pollMs?: number } = {}): AsyncGenerator<string> {
  let cur = cursor;
  try {
    for (;;) {
      const finished = opts.done ? await opts.done() : false;
      if (cur) yield* cur.drain();
      const ino = await stat(path).then((s) => s.ino, () => undefined);
      if (ino !== undefined && (!cur || (await cur.fh.stat()).ino !== ino)) {
        await cur?.fh.close();
        cur = await LineCursor.open(path);
        continue;
      }
      if (finished) return;
      await sleep(opts.pollMs ?? 200);
    }
  } finally {
    await cur?.fh.close();
  }
}

/** The rotated files that exist, oldest first. */
async function rotatedFiles(base: string): Promise<string[]> {
  const found: string[] = [];
  for (let n = 1; ; n++) {
    const path = `${base}.${n}`;
    if (!(await stat(path).then(() => true, () => false))) break;
    found.unshift(path);
  }
  return found;
}

/** Yields the parsed records of `lines`, skipping lines that are not records. */
async function* records(lines: AsyncIterable<string>): AsyncGenerator<LogRecord> {
  for await (const line of lines) {
    const r = parseLogLine(line);
    if (r) yield r;
  }
}

/**
 * The records of the task's log, oldest first: everything kept (or the last `tail`), then with `follow`
 * every new record until `done()` and the file is drained. A missing log is an empty one.
 */
export async function* readLog(taskDir: string, opts: ReadLogOptions = {}): AsyncGenerator<LogRecord> {
  const base = taskFile(taskDir, TASK_FILES.log);
  const kept: LogRecord[] = [];
  const emit = function* (r: LogRecord): Generator<LogRecord> {
    if (opts.tail === undefined) return yield r;
    kept.push(r);
    if (kept.length > opts.tail) kept.shift();
  };
  for (const path of await rotatedFiles(base)) {
    const c = await LineCursor.open(path);
    if (!c) continue;
    try {
      for await (const r of records(c.drain())) yield* emit(r);
    } finally {
      await c.fh.close();
    }
  }
  const cur = await LineCursor.open(base);
  try {
    if (cur) for await (const r of records(cur.drain())) yield* emit(r);
  } catch (e) {
    await cur?.fh.close();
    throw e;
  }
  yield* kept;
  if (!opts.follow) return void (await cur?.fh.close());
  yield* records(followLines(base, cur, opts));
}
