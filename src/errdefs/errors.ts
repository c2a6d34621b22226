/**
 * The fixed set of error kinds every service throws, each with a stable exit code.
 * Library code throws these; only the CLI turns them into a message and an exit status.
 */
export const ErrorKinds = {
  Internal: 1,
  InvalidArgument: 10,
  NotFound: 11,
  AlreadyExists: 12,
  FailedPrecondition: 13,
  Unavailable: 14,
  Unauthorized: 15,
  DataLoss: 16,
  PermissionDenied: 17,
  NotImplemented: 18,
  ResourceExhausted: 19,
  Canceled: 130,
} as const;

export type ErrorKind = keyof typeof ErrorKinds;

/** An error of a known kind; `message` is one line: "action: detail". */
export class TsctrError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = `${kind}Error`;
  }
  /** The process exit status for this error. */
  get exitCode(): number {
    return ErrorKinds[this.kind];
  }
}

/** Creates an error of `kind`; a short form for `new TsctrError(kind, message)`. */
export function errorOf(kind: ErrorKind, message: string, cause?: unknown): TsctrError {
  return new TsctrError(kind, message, cause === undefined ? undefined : { cause });
}

/** True when `err` is a TsctrError of the given kind. */
export function isKind(err: unknown, kind: ErrorKind): boolean {
  return err instanceof TsctrError && err.kind === kind;
}

/** True when `err` is a Node/Deno system error with the given errno code (ENOENT, EEXIST…). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

/** Errno codes of a filesystem without room: out of blocks or inodes (ENOSPC) or over a quota (EDQUOT). */
const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT"]);

/**
 * True when `err`, or an error in its `cause` chain, says the disk is full: ENOSPC or EDQUOT from a
 * filesystem call (also when it crossed a worker thread as a `code`), or SQLite's SQLITE_FULL
 * ("database or disk is full").
 */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, errcode, message } = e as { code?: unknown; errcode?: unknown; message?: unknown };
    if (typeof code === "string" && DISK_FULL_CODES.has(code)) return true;
    if (errcode === 13 || (typeof message === "string" && /\bENOSPC\b|\bEDQUOT\b|no space left on device|database or disk is full|SQLITE_FULL/i.test(message))) return true;
  }
  return false;
}
