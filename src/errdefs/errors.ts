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
