/*
 * init.c: txspawn-init, the small init that is pid 1 of a child's pid
 * namespace (txspawn.options.Namespaces(pid=True), the default pidInit).
 *
 * Without an init the command itself is pid 1 of its namespace, and pid 1
 * is special: the kernel drops every signal it has no handler for (SIGTERM
 * and SIGINT included, whoever sends them, except SIGKILL and SIGSTOP from
 * an ancestor namespace), and every orphan of the namespace becomes its
 * child, to be reaped by it or to stay a zombie.  Most programs are not
 * written for that.  This program is the pid 1 they need: it runs the
 * command as pid 2, forwards signals to it, reaps every orphan, and hands
 * pid 2's exact wait status back to txspawn, which reports it as if there
 * had been no namespace at all.
 *
 * The protocol (the namespace contract, docs/design; txspawn's engines exec
 * this program instead of the command, with the command's environment):
 *
 *   txspawn-init ERRFD STATUSFD MASKHEX N CANDIDATE_1 .. CANDIDATE_N ARGV...
 *
 *   ERRFD     the error pipe's write end (-1: none).  A failure before the
 *             command runs comes back on it as one 16-byte wire record
 *             (struct txs_record, plan.h): {EXEC, errno, 0} when every
 *             candidate failed to exec, {INIT, errno, 0} when this program
 *             could not start the command (a bad argument: EINVAL, or EBADF
 *             for a STATUSFD that is not open; clone() failed: its errno).
 *             Closed once pid 2 has exec'd, so that the spawning parent
 *             reads end of file then.
 *   STATUSFD  the status pipe's write end (-1: none).  Once pid 2 is
 *             reaped its raw wait status is written there, 4 bytes, native
 *             int: the parent reports it as the child's status.
 *   MASKHEX   the command's signal mask, 1 to 16 hex digits, bit n-1 =
 *             signal n.
 *   N         how many exec candidates follow (at least 1), tried with
 *             execvp's error semantics exactly as txspawn's engines try
 *             them (child.c txs_exec).
 *   ARGV...   the command's argv (empty, as spawnProcess(args=()) allows,
 *             is passed on as empty).
 *
 * Then this program exits with pid 2's exit code, or 128 + the signal that
 * killed it; as pid 1, its exit makes the kernel kill whatever is left in
 * the namespace.  A wrong command line prints a usage message on stderr and
 * exits 2; --help prints it on stdout.  It can be run by hand, with -1 for
 * both fds.
 *
 * Why each choice:
 *
 *   - Every signal is blocked first thing and taken with rt_sigtimedwait
 *     (sigwaitinfo) in one loop, instead of handlers.  The kernel drops a
 *     signal sent to a namespace's pid 1 with no handler only if it is not
 *     blocked, so nothing sent between our exec and the loop is lost; no
 *     handler races with the main code, there is no EINTR to handle and no
 *     self-pipe: SIGCHLD is just one more signal the loop reads.  The raw
 *     syscall blocks glibc's internal signals 32 and 33 too.  (The engines
 *     should exec this program with every signal blocked, the command's
 *     mask going in MASKHEX, so that nothing can act before this line.)
 *   - Dispositions are reset to SIG_DFL once, before pid 2 exists (the
 *     engines did it already, but this program is also run by hand): pid 2
 *     inherits them, and a SIGCHLD left at SIG_IGN would have the kernel
 *     reap pid 2 itself and lose its status.  pid 2 sets the command's
 *     mask just before execve, as the engines do.
 *   - pid 2 is started with clone(CLONE_VM | CLONE_VFORK) on a stack of its
 *     own, as glibc's posix_spawn does: no page tables to copy, and clone()
 *     returns only once pid 2 has exec'd or exited, so ERRFD can be closed
 *     right then and an exec errno comes back in our own memory.  pid 2
 *     makes async-signal-safe system calls only.
 *   - A signal other than SIGCHLD is forwarded to pid 2 with kill(); pid 2
 *     is unreaped whenever that happens (we exit as soon as it is reaped),
 *     so its pid cannot name another process.  SIGKILL and SIGSTOP cannot
 *     be caught: they act on this program (its death, as pid 1, kills the
 *     whole namespace).
 *   - SIGCHLD: wait4(-1, WNOHANG | __WALL) until nothing is left to reap,
 *     orphans included, whatever signal they were cloned with.  Standard
 *     signals coalesce, so one SIGCHLD may stand for several exits.
 *   - Once pid 2 is reaped the status is written and we exit at once: as
 *     pid 1 the kernel then kills and reaps the rest of the namespace;
 *     waiting for the rest could wait forever (a daemon).
 *   - PR_SET_CHILD_SUBREAPER: when this program is not pid 1 (run by hand,
 *     or in the tests) orphans still come to it to be reaped.  As pid 1 it
 *     changes nothing.
 *   - Once pid 2 runs, every fd but STATUSFD is closed: the copies of the
 *     command's stdin/stdout/stderr held here would keep the parent's pipes
 *     open after the command closed its own, and the parent must see
 *     exactly what it would see without an init.
 *   - Both fds are made close-on-exec at once, so that the command never
 *     inherits them.
 *   - Start-up cost: this program runs on every spawn with a pid namespace,
 *     so on x86_64 it is built freestanding (TXS_INIT_FREESTANDING: no
 *     libc, static, its own _start and raw system calls).  An exec of it
 *     then touches a handful of pages, where a dynamic glibc program
 *     touches some 50 more (ld.so, libc, relocations) and a static glibc
 *     one some 25, and page faults are what an exec costs: measured with
 *     1000 spawns of it running /bin/true, about 1.4x /bin/true alone,
 *     against 1.8x static with glibc and 2.1x dynamic.  Elsewhere it is
 *     an ordinary libc program: the same code, through syscall(2) and
 *     glibc's clone().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "plan.h"

#if defined(TXS_INIT_FREESTANDING) && !defined(__x86_64__)
#error "the freestanding txspawn-init is x86_64 only: build without TXS_INIT_FREESTANDING"
#endif

#ifndef TXS_INIT_FREESTANDING
#include <unistd.h>
#endif

/* txspawn.errors.ChildSetupStage.INIT: this program could not start the
   command.  (The other stages come from plan.h; tests/test_init.py checks
   the records against ChildSetupStage.) */
#define INIT_STAGE_INIT 26u

/* Exit codes: a command line that is not the protocol (as getopt-style
   tools do); the command could not be started (as a shell does). */
#define INIT_EXIT_USAGE 2
#define INIT_EXIT_FAILED 127

/* Where the candidates start: after the program name and the four fixed
   arguments. */
#define INIT_FIXED_ARGS 5

/* close_range(2): Linux 5.9. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* pid 2's stack while it shares our memory (CLONE_VM), until its execve:
   it only makes a few system calls.  In .bss: no page is touched before
   pid 2 runs, and only the top ones then. */
#define INIT_STACK_SIZE (64 * 1024)
static char init_stack[INIT_STACK_SIZE] __attribute__((aligned(16)));

/* ---- the system-call layer: raw kernel convention, -errno on error ---- */

#ifdef TXS_INIT_FREESTANDING

static long
sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long rax __asm__("rax") = n;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ __volatile__("syscall"
                         : "+r"(rax)
                         : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8),
                           "r"(r9)
                         : "rcx", "r11", "memory");
    return rax;
}

_Noreturn static void
sys_exit(int code)
{
    for (;;) {
        sys6(SYS_exit_group, code, 0, 0, 0, 0, 0);
    }
}

/*
 * clone(CLONE_VM | CLONE_VFORK | SIGCHLD) with pid 2 on its own stack,
 * running fn(arg) there and exiting with its result.  The child never
 * returns into a C frame: those are ours, on our stack, and we are
 * suspended in them (the same trampoline as clone3_x86_64.c, for clone(2),
 * which every kernel has).  fn and arg travel in callee-saved r12 and r13.
 */
static long
clone_vfork(int (*fn)(void *), void *arg)
{
    register long rax __asm__("rax") = SYS_clone;
    register long rdi __asm__("rdi") = CLONE_VM | CLONE_VFORK | SIGCHLD;
    register void *rsi __asm__("rsi") = init_stack + INIT_STACK_SIZE;
    register long rdx __asm__("rdx") = 0;   /* parent_tid */
    register long r10 __asm__("r10") = 0;   /* child_tid */
    register long r8 __asm__("r8") = 0;     /* tls */
    register void *r12 __asm__("r12") = (void *)fn;
    register void *r13 __asm__("r13") = arg;
    __asm__ __volatile__(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xorl %%ebp, %%ebp\n\t"
        "andq $-16, %%rsp\n\t"
        "movq %%r13, %%rdi\n\t"
        "callq *%%r12\n\t"
        "movl %%eax, %%edi\n\t"
        "movl %[sys_exit], %%eax\n\t"
        "syscall\n\t"
        "hlt\n\t"
        "1:\n\t"
        : "+r"(rax)
        : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r12),
          "r"(r13), [sys_exit] "i"(SYS_exit)
        : "rcx", "r11", "memory", "cc");
    return rax;
}

/* What the compiler may call for struct copies and zeroing even in a
   freestanding program. */
void *memset(void *dest, int c, size_t n);
void *memcpy(void *dest, const void *src, size_t n);

void *
memset(void *dest, int c, size_t n)
{
    unsigned char *d = dest;
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dest;
}

void *
memcpy(void *dest, const void *src, size_t n)
{
    unsigned char *d = dest;
    const unsigned char *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dest;
}

#else /* libc */

static long
sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(n, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}

_Noreturn static void
sys_exit(int code)
{
    _exit(code);
}

static long
clone_vfork(int (*fn)(void *), void *arg)
{
    int pid = clone(fn, init_stack + INIT_STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
    return pid < 0 ? -errno : pid;
}

#endif

#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) \
    sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The kernel's sigaction (glibc's refuses signals 32 and 33); SIG_DFL
   needs no restorer. */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* ---- small helpers (no libc in the freestanding build) ---- */

static size_t
str_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

static int
str_eq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void
write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        long n = sys3(SYS_write, fd, p, size);
        if (n == -EINTR) {
            continue;
        }
        if (n < 0) {
            return;  /* nobody to tell */
        }
        p += n;
        size -= (size_t)n;
    }
}

static void
write_str(int fd, const char *s)
{
    write_all(fd, s, str_len(s));
}

static void
write_int(int fd, int value)
{
    char buf[12];
    char *p = buf + sizeof buf;
    unsigned v = value < 0 ? -(unsigned)value : (unsigned)value;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (value < 0) {
        *--p = '-';
    }
    write_all(fd, p, (size_t)(buf + sizeof buf - p));
}

/* A decimal fd number, or -1; -2 when it is neither. */
static int
parse_fd(const char *s)
{
    if (str_eq(s, "-1")) {
        return -1;
    }
    if (*s == '\0') {
        return -2;
    }
    long value = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || value > INT_MAX / 10) {
            return -2;
        }
        value = value * 10 + (*s - '0');
    }
    return value > INT_MAX ? -2 : (int)value;
}

/* 1 to 16 hex digits; 0 when it is not that. */
static int
parse_mask(const char *s, uint64_t *mask)
{
    size_t len = str_len(s);
    if (len == 0 || len > 16) {
        return 0;
    }
    uint64_t value = 0;
    for (; *s != '\0'; s++) {
        unsigned digit;
        if (*s >= '0' && *s <= '9') {
            digit = (unsigned)(*s - '0');
        }
        else if (*s >= 'a' && *s <= 'f') {
            digit = (unsigned)(*s - 'a' + 10);
        }
        else if (*s >= 'A' && *s <= 'F') {
            digit = (unsigned)(*s - 'A' + 10);
        }
        else {
            return 0;
        }
        value = (value << 4) | digit;
    }
    *mask = value;
    return 1;
}

/* ---- the program ---- */

struct init_args {
    int err_fd;
    int status_fd;
    uint64_t mask;
    char **candidates;       /* n_candidates paths */
    int n_candidates;
    char **argv;             /* NULL-terminated (by the kernel's argv) */
    char **envp;
    int exec_errno;          /* written by pid 2 when it could not exec */
};

/* One wire record on the error pipe, if there is one. */
static void
report(int err_fd, uint32_t stage, int err)
{
    if (err_fd < 0) {
        return;
    }
    struct txs_record rec = {
        {TXS_MAGIC0, TXS_MAGIC1, TXS_MAGIC2, TXS_MAGIC3},
        stage, (int32_t)err, 0,
    };
    write_all(err_fd, &rec, sizeof rec);
}

static const char usage_text[] =
    "usage: txspawn-init ERRFD STATUSFD MASKHEX N CANDIDATE... "
    "[ARGV0 ARG...]\n"
    "  Run a command as pid 2 under this init (pid 1 of a pid namespace,\n"
    "  as txspawn runs it): forward signals to it, reap every orphan,\n"
    "  write its raw wait status (4 bytes) to STATUSFD, exit as it did.\n"
    "  ERRFD, STATUSFD  file descriptors, or -1 for none\n"
    "  MASKHEX          the command's signal mask (bit n-1: signal n)\n"
    "  N                how many exec candidates (paths) follow\n";

/* A command line that is not the protocol: say so on the error pipe (once
   it is known) and on stderr, and exit. */
_Noreturn static void
usage(int err_fd, int err, const char *problem)
{
    report(err_fd, INIT_STAGE_INIT, err);
    write_str(2, "txspawn-init: ");
    write_str(2, problem);
    write_str(2, "\n");
    write_str(2, usage_text);
    sys_exit(INIT_EXIT_USAGE);
}

static void
parse_args(int argc, char **argv, struct init_args *a)
{
    if (argc > 1 && (str_eq(argv[1], "-h") || str_eq(argv[1], "--help"))) {
        write_str(1, usage_text);
        sys_exit(0);
    }
    if (argc < INIT_FIXED_ARGS + 1) {
        usage(-1, EINVAL, "too few arguments");
    }
    int err_fd = parse_fd(argv[1]);
    if (err_fd == -2) {
        usage(-1, EINVAL, "ERRFD is not a file descriptor number or -1");
    }
    if (err_fd >= 0 && sys3(SYS_fcntl, err_fd, F_SETFD, FD_CLOEXEC) < 0) {
        usage(-1, EBADF, "ERRFD is not open");
    }
    /* From here on a bad argument is reported on the error pipe too: the
       parent raises SpawnError(INIT) instead of waiting for a status that
       never comes. */
    a->err_fd = err_fd;
    a->status_fd = parse_fd(argv[2]);
    if (a->status_fd == -2) {
        usage(err_fd, EINVAL, "STATUSFD is not a file descriptor number or -1");
    }
    if (a->status_fd >= 0 &&
            sys3(SYS_fcntl, a->status_fd, F_SETFD, FD_CLOEXEC) < 0) {
        usage(err_fd, EBADF, "STATUSFD is not open");
    }
    if (!parse_mask(argv[3], &a->mask)) {
        usage(err_fd, EINVAL, "MASKHEX is not 1 to 16 hex digits");
    }
    int n = parse_fd(argv[4]);
    if (n < 1 || n > argc - INIT_FIXED_ARGS) {
        usage(err_fd, EINVAL, "N must be at least 1 and at most the paths given");
    }
    a->n_candidates = n;
    a->candidates = argv + INIT_FIXED_ARGS;
    a->argv = argv + INIT_FIXED_ARGS + n;
    a->exec_errno = 0;
}

/*
 * pid 2, on init_stack in our memory until it execs (we are suspended
 * meanwhile).  execve over the candidates with the engines' execvp
 * semantics: ENOENT and ENOTDIR try the next one, EACCES is remembered and
 * reported if nothing better comes, any other error stops the search; if
 * every candidate was missing, the last ENOENT/ENOTDIR.
 */
static int
command_main(void *arg)
{
    struct init_args *a = arg;
    long err = sys4(SYS_rt_sigprocmask, SIG_SETMASK, &a->mask, 0,
                    sizeof a->mask);
    if (err < 0) {
        /* Cannot fail with a 64-bit mask; reported as the engines would. */
        a->exec_errno = (int)-err;
        report(a->err_fd, TXS_STAGE_SIGNALS, (int)-err);
        return INIT_EXIT_FAILED;
    }
    int seen_eacces = 0;
    for (int i = 0; i < a->n_candidates; i++) {
        err = -sys3(SYS_execve, a->candidates[i], a->argv, a->envp);
        if (err == EACCES) {
            seen_eacces = 1;
        }
        else if (err != ENOENT && err != ENOTDIR) {
            break;
        }
    }
    if (seen_eacces && (err == ENOENT || err == ENOTDIR)) {
        err = EACCES;
    }
    a->exec_errno = (int)err;
    report(a->err_fd, TXS_STAGE_EXEC, (int)err);
    return INIT_EXIT_FAILED;
}

/* What getdents64(2) fills in. */
struct init_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Close every fd but keep (-1: none): close_range() where the kernel has
   it (5.9), else the fds /proc/self/fd lists. */
static void
close_all_but(int keep)
{
    if (keep < 0 ? sys3(SYS_close_range, 0, ~0u, 0) == 0
            : (keep == 0 || sys3(SYS_close_range, 0, keep - 1, 0) == 0) &&
              sys3(SYS_close_range, keep + 1, ~0u, 0) == 0) {
        return;
    }
    int dir = (int)sys4(SYS_openat, AT_FDCWD, "/proc/self/fd",
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) {
        for (int fd = 0; fd < 3; fd++) {
            if (fd != keep) {
                sys1(SYS_close, fd);
            }
        }
        return;
    }
    /* Closing fds while listing is fine: each entry is read once. */
    static char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = sys3(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct init_dirent64 *entry = (struct init_dirent64 *)(buf + off);
            int fd = parse_fd(entry->d_name);
            if (fd >= 0 && fd != keep && fd != dir) {
                sys1(SYS_close, fd);
            }
            off += entry->d_reclen;
        }
    }
    sys1(SYS_close, dir);
}

_Noreturn static void
finish(int status_fd, int status)
{
    if (status_fd >= 0) {
        write_all(status_fd, &status, sizeof status);
    }
    if (WIFSIGNALED(status)) {
        sys_exit(128 + WTERMSIG(status));
    }
    sys_exit(WEXITSTATUS(status));
}

static int
init_main(int argc, char **argv, char **envp)
{
    /* First: from here on no signal can kill us or be lost (see above). */
    const uint64_t all = ~(uint64_t)0;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, sizeof all);

    struct init_args a = {.err_fd = -1, .status_fd = -1, .envp = envp};
    parse_args(argc, argv, &a);

    struct kernel_sigaction dfl = {.handler = SIG_DFL};
    for (int sig = 1; sig <= 64; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            sys4(SYS_rt_sigaction, sig, &dfl, 0, sizeof dfl.mask);
        }
    }
    /* Orphans come to us even when we are not pid 1 (EINVAL before Linux
       3.4: then only as pid 1, which is all txspawn needs). */
    sys2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);

    long pid2 = clone_vfork(command_main, &a);
    if (pid2 < 0) {
        report(a.err_fd, INIT_STAGE_INIT, (int)-pid2);
        sys_exit(INIT_EXIT_FAILED);
    }
    /* pid 2 has exec'd or exited. */
    if (a.exec_errno != 0 && a.err_fd < 0) {
        /* Run by hand: say it, as a shell would. */
        write_str(2, "txspawn-init: cannot execute ");
        write_str(2, a.candidates[0]);
        write_str(2, " (errno ");
        write_int(2, a.exec_errno);
        write_str(2, ")\n");
    }
    /* ERRFD too: the parent reads end of file now. */
    close_all_but(a.status_fd);

    for (;;) {
        siginfo_t info;
        int sig = (int)sys4(SYS_rt_sigtimedwait, &all, &info, 0, sizeof all);
        if (sig < 0) {
            continue;  /* EINTR: we were stopped and continued */
        }
        if (sig != SIGCHLD) {
            sys2(SYS_kill, pid2, sig);
            continue;
        }
        for (;;) {
            int status;
            long pid = sys4(SYS_wait4, -1, &status, WNOHANG | __WALL, 0);
            if (pid <= 0) {
                break;  /* 0: nothing more has exited */
            }
            if (pid == pid2) {
                finish(a.status_fd, status);
            }
        }
    }
}

#ifdef TXS_INIT_FREESTANDING

/* The entry point: the kernel leaves argc, argv and envp on the stack. */
_Noreturn void init_start(long *sp);

_Noreturn void
init_start(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys_exit(init_main(argc, argv, argv + argc + 1));
}

__asm__(
    ".text\n"
    ".globl _start\n"
    ".type _start, @function\n"
    "_start:\n"
    "    xorl %ebp, %ebp\n"
    "    movq %rsp, %rdi\n"
    "    andq $-16, %rsp\n"
    "    callq init_start\n"
    "    hlt\n");

#else

int
main(int argc, char **argv, char **envp)
{
    return init_main(argc, argv, envp);
}

#endif
