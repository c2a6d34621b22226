/** The client version and git revision; build/ replaces REVISION at bundle time. */
export const VERSION = "0.1.0";
export const REVISION: string = (globalThis as { __TSCTR_REVISION__?: string }).__TSCTR_REVISION__ ?? "source";
