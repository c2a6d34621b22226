export { ErrorKinds, TsctrError, errorOf, isErrno, isKind } from "./errors.ts";
export type { ErrorKind } from "./errors.ts";
