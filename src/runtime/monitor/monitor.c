/*
 * tsctr-monitor: the per-container process that outlives tsctr (like containerd's shim, in a few KiB).
 *
 *   tsctr-monitor TASKDIR LOG_MAX_SIZE LOG_MAX_FILES EVENTS_FILE EVENT_FIELDS RUNC [RUNC_ARG...]
 *
 * 1. Forks twice with setsid() in between, so it belongs to no terminal and its parent may exit at once.
 * 2. Becomes a child subreaper, then runs RUNC RUNC_ARG... (tsctr passes `runc ... run -d --pid-file
 *    TASKDIR/init.pid --bundle B ID`) with stdin /dev/null and stdout/stderr as two pipes. `runc run -d`
 *    exits once the container runs; its init, orphaned, is re-parented to this process.
 * 3. Reports on its inherited stdout, then closes it: "ok CONTAINER_PID MONITOR_PID\n", or
 *    "fail STATUS\n" when runc failed (its message is in the bundle's runc.log and in the log below).
 *    With "ok" it appends {"type":"start",EVENT_FIELDS,"time":"..."} to EVENTS_FILE (unless "-"), and
 *    after the exit below {"type":"exit",EVENT_FIELDS,"status":S,"time":"..."}; EVENT_FIELDS is JSON
 *    members such as "namespace":"default","id":"web". Each line is one O_APPEND write, so the lines of
 *    concurrent writers do not mix.
 * 4. Writes every line the container prints to TASKDIR/container.log in the CRI log format
 *    "<RFC 3339 UTC, ns> <stdout|stderr> <F|P> <text>\n" (F: a full line, P: part of a line longer than
 *    the buffer or cut by the end of the stream). Before a write would take the file past LOG_MAX_SIZE
 *    bytes it rotates: container.log.(N-2) → .(N-1), …, container.log → .1 (N = LOG_MAX_FILES).
 * 5. When the container's init exits, writes TASKDIR/exit.json atomically and durably
 *    ({"pid":P,"status":S,"exitedAt":"..."}, S = the exit code, or 128+n for signal n), appends the same
 *    line to TASKDIR/exits.log (one line per run: the history a restart supervisor counts), drains the pipes
 *    and exits. Where the kernel refuses a subreaper (qemu-user does), the init is not its child: it then
 *    looks every second whether the init still exists and records S = 255 (unknown) once it is gone.
 *
 * Freestanding: no libc, raw Linux system calls for x86_64 and aarch64 (build/monitor.ts builds both).
 */

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;

#if defined(__x86_64__)
enum {
  SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_lseek = 8, SYS_rt_sigprocmask = 14, SYS_getpid = 39,
  SYS_clone = 56, SYS_execve = 59, SYS_exit_group = 231, SYS_wait4 = 61, SYS_fsync = 74, SYS_setsid = 112,
  SYS_prctl = 157, SYS_clock_gettime = 228, SYS_openat = 257, SYS_ppoll = 271, SYS_signalfd4 = 289,
  SYS_dup3 = 292, SYS_pipe2 = 293, SYS_renameat2 = 316, SYS_kill = 62,
};
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  i64 ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}
__asm__(".text\n.globl _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");
#elif defined(__aarch64__)
enum {
  SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_lseek = 62, SYS_rt_sigprocmask = 135, SYS_getpid = 172,
  SYS_clone = 220, SYS_execve = 221, SYS_exit_group = 94, SYS_wait4 = 260, SYS_fsync = 82, SYS_setsid = 157,
  SYS_prctl = 167, SYS_clock_gettime = 113, SYS_openat = 56, SYS_ppoll = 73, SYS_signalfd4 = 74,
  SYS_dup3 = 24, SYS_pipe2 = 59, SYS_renameat2 = 276, SYS_kill = 129,
};
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 x8 __asm__("x8") = n;
  register i64 x0 __asm__("x0") = a;
  register i64 x1 __asm__("x1") = b;
  register i64 x2 __asm__("x2") = c;
  register i64 x3 __asm__("x3") = d;
  register i64 x4 __asm__("x4") = e;
  register i64 x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
__asm__(".text\n.globl _start\n_start:\n mov x29, #0\n mov x0, sp\n and x1, x0, #-16\n mov sp, x1\n bl cmain\n brk #0\n");
#else
#error "tsctr-monitor supports x86_64 and aarch64"
#endif

#define sys1(n, a) sys6(n, (i64)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (i64)(a), (i64)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (i64)(a), (i64)(b), (i64)(c), (i64)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (i64)(a), (i64)(b), (i64)(c), (i64)(d), (i64)(e), 0)

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_CLOEXEC 02000000
#define EINTR 4
#define EAGAIN 11
#define ESRCH 3
#define SIGCHLD 17
#define SIGPIPE 13
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define SEEK_END 2
#define POLLIN 1
#define POLLHUP 0x10
#define POLLERR 0x08
#define WNOHANG 1
#define PR_SET_CHILD_SUBREAPER 36
#define CLOCK_REALTIME 0
#define SFD_CLOEXEC O_CLOEXEC
#define SFD_NONBLOCK 04000

struct pollfd {
  int fd;
  short events, revents;
};
struct timespec {
  i64 sec, nsec;
};

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *d, int c, u64 n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, u64 n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

static __attribute__((noreturn)) void quit(int code) {
  for (;;) sys1(SYS_exit_group, code);
}

static u64 slen(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

/* Writes all of buf, retrying after short writes and EINTR; returns 0 or a negative errno. */
static i64 write_all(int fd, const char *buf, u64 len) {
  while (len > 0) {
    i64 r = sys3(SYS_write, fd, buf, len);
    if (r == -EINTR) continue;
    if (r < 0) return r;
    buf += r;
    len -= (u64)r;
  }
  return 0;
}

/* A small string builder over a fixed buffer; text past the end is dropped. */
struct str {
  char *buf;
  u64 len, cap;
};
static void put(struct str *s, const char *p, u64 n) {
  while (n-- && s->len + 1 < s->cap) s->buf[s->len++] = *p++;
  s->buf[s->len] = 0;
}
static void puts_(struct str *s, const char *p) { put(s, p, slen(p)); }
static void putu(struct str *s, u64 v, int width) {
  char d[24];
  int n = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n < width) d[n++] = '0';
  while (n) put(s, &d[--n], 1);
}

static i64 parse_u(const char *p) {
  i64 v = 0;
  if (*p < '0' || *p > '9') return -1;
  while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  return v;
}

/* The current UTC time in RFC 3339 with nanoseconds: 2026-01-02T03:04:05.123456789Z. */
static void put_now(struct str *s) {
  struct timespec ts;
  sys2(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  i64 days = ts.sec / 86400, rem = ts.sec % 86400;
  /* Days since 1970-01-01 to a civil date (proleptic Gregorian, 400-year eras of 146097 days). */
  i64 z = days + 719468, era = z / 146097, doe = z - era * 146097;
  i64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  i64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  i64 day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  i64 year = yoe + era * 400 + (month <= 2);
  putu(s, (u64)year, 4); puts_(s, "-");
  putu(s, (u64)month, 2); puts_(s, "-");
  putu(s, (u64)day, 2); puts_(s, "T");
  putu(s, (u64)(rem / 3600), 2); puts_(s, ":");
  putu(s, (u64)(rem / 60 % 60), 2); puts_(s, ":");
  putu(s, (u64)(rem % 60), 2); puts_(s, ".");
  putu(s, (u64)ts.nsec, 9); puts_(s, "Z");
}

static char taskdir[2048];
static char pathbuf[4096];

/* TASKDIR/name, in a shared buffer (valid until the next call). */
static const char *task_path(const char *name, int suffix) {
  struct str s = {pathbuf, 0, sizeof pathbuf};
  puts_(&s, taskdir);
  puts_(&s, "/");
  puts_(&s, name);
  if (suffix > 0) {
    puts_(&s, ".");
    putu(&s, (u64)suffix, 1);
  }
  return pathbuf;
}

/* The size-capped, rotated log. */
static int log_fd = -1;
static u64 log_size, log_max_size, log_max_files;

static void log_open(int truncate) {
  log_fd = (int)sys4(SYS_openat, AT_FDCWD, task_path("container.log", 0), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
  i64 end = log_fd >= 0 ? sys3(SYS_lseek, log_fd, 0, SEEK_END) : 0;
  log_size = end > 0 ? (u64)end : 0;
}

static void log_rotate(void) {
  static char from[4096];
  sys1(SYS_close, log_fd);
  for (u64 i = log_max_files - 1; i >= 1; i--) {
    const char *p = task_path("container.log", (int)(i - 1));
    u64 n = slen(p) + 1;
    memcpy(from, p, n);
    sys5(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, task_path("container.log", (int)i), 0);
  }
  log_open(1);
}

/* Appends one record; `full` says whether `text` ended with a newline (which is not in `text`). */
static void log_record(const char *stream, const char *text, u64 len, int full) {
  static char line[16384 + 128];
  struct str s = {line, 0, sizeof line};
  put_now(&s);
  puts_(&s, " ");
  puts_(&s, stream);
  puts_(&s, full ? " F " : " P ");
  put(&s, text, len);
  puts_(&s, "\n");
  if (log_size > 0 && log_size + s.len > log_max_size) log_rotate();
  if (log_fd < 0) return;
  if (write_all(log_fd, s.buf, s.len) == 0) log_size += s.len;
}

/* One output pipe of the container and the incomplete line read from it so far. */
struct stream {
  const char *name;
  int fd;
  u64 len;
  char buf[16384];
};

/* Reads what the pipe holds; logs each complete line, and the buffer when it fills without a newline. */
static void stream_read(struct stream *st) {
  i64 r = sys3(SYS_read, st->fd, st->buf + st->len, sizeof st->buf - st->len);
  if (r == -EINTR || r == -EAGAIN) return;
  if (r <= 0) {
    if (st->len) log_record(st->name, st->buf, st->len, 0);
    st->len = 0;
    sys1(SYS_close, st->fd);
    st->fd = -1;
    return;
  }
  st->len += (u64)r;
  u64 start = 0;
  for (u64 i = 0; i < st->len; i++) {
    if (st->buf[i] != '\n') continue;
    log_record(st->name, st->buf + start, i - start, 1);
    start = i + 1;
  }
  if (start == 0 && st->len == sizeof st->buf) {
    log_record(st->name, st->buf, st->len, 0);
    start = st->len;
  }
  st->len -= start;
  if (start) memcpy(st->buf, st->buf + start, st->len);
}

static struct stream out = {"stdout", -1, 0, {0}}, err = {"stderr", -1, 0, {0}};

static const char *events_file, *event_fields;

/* Appends {"type":TYPE,EVENT_FIELDS[,"status":S],"time":"..."} and a newline in one write (status < 0: none). */
static void append_event(const char *type, i64 status) {
  if (events_file[0] == '-' && events_file[1] == 0) return;
  static char text[1024];
  struct str s = {text, 0, sizeof text};
  puts_(&s, "{\"type\":\"");
  puts_(&s, type);
  puts_(&s, "\",");
  puts_(&s, event_fields);
  if (status >= 0) {
    puts_(&s, ",\"status\":");
    putu(&s, (u64)status, 1);
  }
  puts_(&s, ",\"time\":\"");
  put_now(&s);
  puts_(&s, "\"}\n");
  int fd = (int)sys4(SYS_openat, AT_FDCWD, events_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, s.buf, s.len);
  sys1(SYS_close, fd);
}

/* Writes exit.json through a temporary file (fsync, rename, fsync of the directory), appends the same
   line to exits.log (the history a restart supervisor counts), then the event. */
static void write_exit(i64 pid, i64 status) {
  char text[256];
  struct str s = {text, 0, sizeof text};
  puts_(&s, "{\"pid\":");
  putu(&s, (u64)pid, 1);
  puts_(&s, ",\"status\":");
  putu(&s, (u64)status, 1);
  puts_(&s, ",\"exitedAt\":\"");
  put_now(&s);
  puts_(&s, "\"}\n");
  static char tmp[4096];
  const char *p = task_path(".exit.json.tmp", 0);
  memcpy(tmp, p, slen(p) + 1);
  int fd = (int)sys4(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, s.buf, s.len);
  sys1(SYS_fsync, fd);
  sys1(SYS_close, fd);
  sys5(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, task_path("exit.json", 0), 0);
  int dir = (int)sys4(SYS_openat, AT_FDCWD, taskdir, O_RDONLY | O_CLOEXEC, 0);
  if (dir >= 0) {
    sys1(SYS_fsync, dir);
    sys1(SYS_close, dir);
  }
  int history = (int)sys4(SYS_openat, AT_FDCWD, task_path("exits.log", 0), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (history >= 0) {
    write_all(history, s.buf, s.len);
    sys1(SYS_close, history);
  }
  append_event("exit", status);
}

/* The shell's view of a wait status: the exit code, or 128+n for signal n. */
static i64 shell_status(int st) {
  return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f);
}

static i64 read_pid_file(void) {
  char buf[32];
  int fd = (int)sys4(SYS_openat, AT_FDCWD, task_path("init.pid", 0), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  i64 n = sys3(SYS_read, fd, buf, sizeof buf - 1);
  sys1(SYS_close, fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return parse_u(buf);
}

/* Reports to tsctr on fd 1 and lets go of it (tsctr reads until end of file). */
static void report(const char *word, i64 a, i64 b) {
  char text[96];
  struct str s = {text, 0, sizeof text};
  puts_(&s, word);
  puts_(&s, " ");
  putu(&s, (u64)a, 1);
  if (b >= 0) {
    puts_(&s, " ");
    putu(&s, (u64)b, 1);
  }
  puts_(&s, "\n");
  write_all(1, s.buf, s.len);
  int null = (int)sys3(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
  if (null >= 0) {
    sys3(SYS_dup3, null, 1, 0);
    sys3(SYS_dup3, null, 2, 0);
    if (null > 2) sys1(SYS_close, null);
  }
}

static i64 fork_(void) { return sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0); }

__attribute__((used)) void cmain(i64 *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  if (argc < 7) {
    const char *usage = "usage: tsctr-monitor TASKDIR LOG_MAX_SIZE LOG_MAX_FILES EVENTS_FILE EVENT_FIELDS RUNC [ARG...]\n";
    write_all(2, usage, slen(usage));
    quit(2);
  }
  if (slen(argv[1]) >= sizeof taskdir - 64) quit(2);
  memcpy(taskdir, argv[1], slen(argv[1]) + 1);
  i64 max_size = parse_u(argv[2]), max_files = parse_u(argv[3]);
  if (max_size < 1 || max_files < 1) quit(2);
  log_max_size = (u64)max_size;
  log_max_files = (u64)max_files;
  events_file = argv[4];
  event_fields = argv[5];

  /* Detach: the first child starts a session, its child is the monitor; both parents exit at once. */
  i64 pid = fork_();
  if (pid < 0) quit(1);
  if (pid > 0) quit(0);
  sys1(SYS_setsid, 0);
  pid = fork_();
  if (pid < 0) quit(1);
  if (pid > 0) quit(0);
  int subreaper = sys5(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;

  /* SIGCHLD arrives through a signalfd in the poll loop; SIGPIPE is held so a gone reader is just EPIPE. */
  u64 mask = (1UL << (SIGCHLD - 1)) | (1UL << (SIGPIPE - 1)), old = 0;
  sys4(SYS_rt_sigprocmask, SIG_BLOCK, &mask, &old, 8);
  u64 chld = 1UL << (SIGCHLD - 1);
  int sigfd = (int)sys4(SYS_signalfd4, -1, &chld, 8, SFD_CLOEXEC | SFD_NONBLOCK);
  int po[2], pe[2];
  if (sigfd < 0 || sys2(SYS_pipe2, po, O_CLOEXEC) < 0 || sys2(SYS_pipe2, pe, O_CLOEXEC) < 0) {
    report("fail", 255, -1);
    quit(1);
  }
  log_open(0);

  i64 runc = fork_();
  if (runc == 0) {
    int null = (int)sys3(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
    sys3(SYS_dup3, null, 0, 0);
    sys3(SYS_dup3, po[1], 1, 0);
    sys3(SYS_dup3, pe[1], 2, 0);
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
    sys3(SYS_execve, argv[6], argv + 6, envp);
    quit(127);
  }
  sys1(SYS_close, po[1]);
  sys1(SYS_close, pe[1]);
  if (runc < 0) {
    report("fail", 255, -1);
    quit(1);
  }
  out.fd = po[0];
  err.fd = pe[0];

  i64 container = -1;
  int runc_done = 0, exited = 0;
  /* Children reaped before runc's own exit was seen: the container's init may be among them. */
  i64 early_pid[16], early_status[16];
  int early = 0;
  for (;;) {
    struct pollfd fds[3] = {{sigfd, POLLIN, 0}, {out.fd, POLLIN, 0}, {err.fd, POLLIN, 0}};
    /* Once the container has exited, wait at most 2 s more for the pipes (a process outside its PID
       namespace may hold them open). */
    struct timespec grace = {2, 0}, tick = {1, 0};
    if (exited && out.fd < 0 && err.fd < 0) break;
    int orphan = !subreaper && container > 0 && !exited;
    i64 n = sys5(SYS_ppoll, fds, 3, exited ? &grace : orphan ? &tick : 0, 0, 8);
    if (orphan && sys2(SYS_kill, container, 0) == -ESRCH) {
      write_exit(container, 255);
      exited = 1;
      continue;
    }
    if (n == 0 && exited) break;
    if (n < 0) continue;
    if (fds[1].revents) stream_read(&out);
    if (fds[2].revents) stream_read(&err);
    if (!fds[0].revents) continue;
    char info[128 * 4];
    while (sys3(SYS_read, sigfd, info, sizeof info) > 0) {
    }
    for (;;) {
      int st = 0;
      i64 w = sys4(SYS_wait4, -1, &st, WNOHANG, 0);
      if (w <= 0) break;
      if (w == runc && !runc_done) {
        runc_done = 1;
        if (shell_status(st) != 0) {
          report("fail", shell_status(st), -1);
          exited = 1;
          continue;
        }
        container = read_pid_file();
        if (container <= 0) {
          report("fail", 255, -1);
          exited = 1;
          continue;
        }
        append_event("start", -1);
        report("ok", container, sys1(SYS_getpid, 0));
        for (int i = 0; i < early; i++) {
          if (early_pid[i] != container) continue;
          write_exit(container, early_status[i]);
          exited = 1;
        }
      } else if (w == container && !exited) {
        write_exit(container, shell_status(st));
        exited = 1;
      } else if (!runc_done && early < 16) {
        early_pid[early] = w;
        early_status[early++] = shell_status(st);
      }
    }
  }
  if (out.fd >= 0) stream_read(&out);
  if (err.fd >= 0) stream_read(&err);
  quit(0);
}
