/**
 * tsctr's default seccomp profile, in the spirit of Docker's: every syscall fails with EPERM unless it is
 * on the allowlist below. Namespace creation (unshare, setns, clone with CLONE_NEW* flags), mounting,
 * kernel modules, keyrings, swap, reboot, clock setting and tracing are allowed only when the container
 * holds the capability that the kernel would check anyway (--cap-add SYS_ADMIN, SYS_BOOT…), so the
 * profile narrows the kernel's attack surface without taking away what a capability grants.
 * Names a given libseccomp or architecture does not know are skipped by runc.
 */
import type { SeccompProfile, SeccompRule } from "./seccomp.ts";

const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** Syscalls every container may make (file I/O, memory, signals, time reading, sockets, IPC, threads). */
const ALLOWED: readonly string[] = [
  // files and directories
  "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2", "dup3",
  "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
  "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr",
  "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd",
  "getdents", "getdents64", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "ioctl",
  "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
  "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat", "openat2",
  "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
  "removexattr", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr", "splice", "stat",
  "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate",
  "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write",
  "writev", "fanotify_mark", "name_to_handle_at",
  // polling and events
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
  "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
  "_newselect", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
  "timerfd_settime64", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
  "io_submit",
  // memory
  "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2", "mlockall", "mmap",
  "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
  "remap_file_pages", "map_shadow_stack",
  // processes, threads and scheduling
  "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork", "futex", "futex_requeue", "futex_time64",
  "futex_wait", "futex_waitv", "futex_wake", "getcpu", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
  "getgid32", "getgroups", "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
  "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "gettid",
  "get_thread_area", "getuid", "getuid32", "ioprio_get", "ioprio_set", "pidfd_open", "pidfd_send_signal", "prctl",
  "prlimit64", "process_mrelease", "restart_syscall", "rseq", "sched_getaffinity", "sched_getattr", "sched_getparam",
  "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
  "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
  "sched_yield", "seccomp", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
  "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
  "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "set_thread_area",
  "set_tid_address", "setuid", "setuid32", "ugetrlimit", "wait4", "waitid", "waitpid", "landlock_add_rule",
  "landlock_create_ruleset", "landlock_restrict_self",
  // signals
  "alarm", "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
  "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask",
  "sigreturn", "tgkill", "tkill",
  // time (reading it; setting it needs CAP_SYS_TIME below)
  "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
  "gettimeofday", "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_gettime64", "timer_settime", "timer_settime64", "times",
  // sockets (socket itself is below: AF_VSOCK is refused)
  "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom",
  "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
  "socketcall", "socketpair", "pipe", "pipe2",
  // System V and POSIX IPC
  "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
  "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
  "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
  // system information
  "getrandom", "sysinfo", "uname",
];

/** Syscalls allowed when the container holds a capability (the kernel checks the same capability). */
const BY_CAPABILITY: readonly [cap: string, names: readonly string[]][] = [
  ["CAP_SYS_ADMIN", [
    "bpf", "clone", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
    "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
    "syslog", "umount", "umount2", "unshare", "swapon", "swapoff",
  ]],
  ["CAP_SYS_BOOT", ["reboot", "kexec_load", "kexec_file_load"]],
  ["CAP_SYS_CHROOT", ["chroot"]],
  ["CAP_SYS_MODULE", ["delete_module", "init_module", "finit_module"]],
  ["CAP_SYS_PACCT", ["acct"]],
  ["CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]],
  ["CAP_SYS_RAWIO", ["iopl", "ioperm"]],
  ["CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "adjtimex"]],
  ["CAP_SYS_TTY_CONFIG", ["vhangup"]],
  ["CAP_SYS_NICE", ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]],
  ["CAP_SYSLOG", ["syslog"]],
  ["CAP_BPF", ["bpf"]],
  ["CAP_PERFMON", ["perf_event_open"]],
];

/** Allowed `personality(2)` personas: Linux, 32-bit Linux, UNAME26 variants, and the query value. */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

function allow(names: readonly string[], extra: Partial<SeccompRule> = {}): SeccompRule {
  return { names: [...names], action: "SCMP_ACT_ALLOW", ...extra };
}

/** The profile applied unless `--privileged` or `--security-opt seccomp=unconfined`. */
export const DEFAULT_SECCOMP_PROFILE: SeccompProfile = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: EPERM,
  syscalls: [
    allow(ALLOWED),
    ...PERSONAS.map((value) => allow(["personality"], { args: [{ index: 0, value, op: "SCMP_CMP_EQ" }] })),
    allow(["socket"], { args: [{ index: 0, value: 40, op: "SCMP_CMP_NE" }], comment: "any family but AF_VSOCK" }),
    allow(["arch_prctl", "modify_ldt"], { includes: { arches: ["amd64", "386"] } }),
    allow(["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"], { includes: { arches: ["arm", "arm64"] } }),
    // Threads and processes, but no new namespaces, unless CAP_SYS_ADMIN allows clone outright.
    allow(["clone"], { args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], excludes: { caps: ["CAP_SYS_ADMIN"] } }),
    // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes the C library fall back to clone.
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS, excludes: { caps: ["CAP_SYS_ADMIN"] } },
    allow(["clone3"], { includes: { caps: ["CAP_SYS_ADMIN"] } }),
    ...BY_CAPABILITY.map(([cap, names]) => allow(names, { includes: { caps: [cap] } })),
  ],
};
