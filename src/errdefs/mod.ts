export { ErrorKinds, TsctrError, errorOf, isDiskFull, isErrno, isKind } from "./errors.ts";
export type { ErrorKind } from "./errors.ts";
