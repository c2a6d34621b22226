/** The runtime service: OCI runtime spec generation, user resolution, bundles and the runc driver. */
export { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_PATH, DEFAULT_READONLY_PATHS, OCI_VERSION, generateSpec, mergeEnv, processArgs } from "./spec.ts";
export type { SpecOptions } from "./spec.ts";
export type { Spec, SpecCapabilities, SpecDeviceCgroup, SpecLinux, SpecMount, SpecNamespace, SpecProcess, SpecResources, SpecRlimit, SpecRoot, SpecUser } from "./spec_types.ts";
export { resolveUser } from "./user.ts";
export type { ResolvedUser } from "./user.ts";
export { readFileInRoot, resolveInRoot } from "./in_root.ts";
export { removeBundle, writeBundle } from "./bundle.ts";
export type { BundlePaths } from "./bundle.ts";
export { DEFAULT_RUNC_ROOT, FORWARDED_SIGNALS, Runc, exitStatus, findRunc, forwardSignals } from "./runc.ts";
export type { RuncListEntry, RuncRunOptions, RuncStdio, RuncState, RunningContainer } from "./runc.ts";
export { DEFAULT_LOG_MAX_FILES, DEFAULT_LOG_MAX_SIZE, startMonitored } from "./monitor/start.ts";
export type { MonitorOptions } from "./monitor/start.ts";
export { installMonitor } from "./monitor/install.ts";
export { TASK_FILES, markStopped, readTaskExit, readTaskInfo, taskFile, wasStopped } from "./task_files.ts";
export type { TaskExit, TaskInfo } from "./task_files.ts";
export { readLog } from "./container_log.ts";
export type { LogRecord, ReadLogOptions } from "./container_log.ts";
