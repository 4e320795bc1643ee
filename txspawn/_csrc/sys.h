/*
 * sys.h: raw system-call wrappers used by the parent (spawn.c) and the child
 * (child.c), each with the minimum kernel that has it.
 *
 * Why raw syscalls:
 *   - glibc's set*id() wrappers broadcast the change to every thread with
 *     SIGSETXID; in a CLONE_VM child that shares the parent's memory but is
 *     not one of its threads, that machinery is unsafe (CPython bpo-35823:
 *     "consider using syscall()").  The child wants to change only itself.
 *   - close_range(), pidfd_open(), pidfd_send_signal() and getdents64()
 *     have no wrapper in older glibc (close_range since 2.34, the pidfd
 *     calls since 2.36).
 *   - rt_sigprocmask: glibc's sigprocmask() refuses to block its own
 *     internal signals (SIGCANCEL, SIGSETXID); around a CLONE_VM clone we
 *     block really everything, as glibc's own posix_spawn does.
 *
 * All of these are async-signal-safe: each is one syscall instruction and
 * touches no libc state except errno.
 */
#ifndef TXSPAWN_SYS_H
#define TXSPAWN_SYS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* close_range(2): Linux 5.9 (with CLOSE_RANGE_UNSHARE); 2.6.x has none. */
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/* pidfd_open(2): Linux 5.3. */
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

/* pidfd_send_signal(2): Linux 5.1. */
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

/* waitid(P_PIDFD, ...): Linux 5.4. */
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* CLONE_PIDFD for clone(2): Linux 5.2. */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* CLONE_NEWTIME: Linux 5.6, for unshare() only (its value is in CSIGNAL
   for clone()); glibc < 2.32 does not define it. */
#define TXS_CLONE_NEWTIME 0x00000080

static inline int
txs_close_range(unsigned lo, unsigned hi, unsigned flags)
{
    return (int)syscall(__NR_close_range, lo, hi, flags);
}

static inline int
txs_pidfd_open(pid_t pid)
{
    return (int)syscall(__NR_pidfd_open, pid, 0);
}

static inline int
txs_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(__NR_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/*
 * 32-bit architectures have 16-bit legacy uid syscalls; the "32" variants
 * take full ids (Linux 2.4).  64-bit architectures only have the full ones.
 */
static inline int
txs_setgroups(size_t n, const gid_t *groups)
{
#ifdef SYS_setgroups32
    return (int)syscall(SYS_setgroups32, n, groups);
#else
    return (int)syscall(SYS_setgroups, n, groups);
#endif
}

static inline int
txs_setresgid(gid_t gid)
{
#ifdef SYS_setresgid32
    return (int)syscall(SYS_setresgid32, gid, gid, gid);
#else
    return (int)syscall(SYS_setresgid, gid, gid, gid);
#endif
}

static inline int
txs_setresuid(uid_t uid)
{
#ifdef SYS_setresuid32
    return (int)syscall(SYS_setresuid32, uid, uid, uid);
#else
    return (int)syscall(SYS_setresuid, uid, uid, uid);
#endif
}

/*
 * rt_sigprocmask with the kernel's 64-bit sigset (every Linux architecture
 * txspawn targets has _NSIG == 64; MIPS has 128 and is not supported).
 */
static inline int
txs_sigmask(int how, const uint64_t *set, uint64_t *old)
{
    return (int)syscall(SYS_rt_sigprocmask, how, set, old, sizeof(uint64_t));
}

/*
 * rt_sigaction setting one signal to SIG_DFL, with the kernel's own
 * struct: glibc's sigaction() refuses its internal signals (32 and 33) with
 * EINVAL, but they can still arrive ignored from an ancestor that set them
 * with the raw syscall, and SIG_IGN survives execve.  The kernel accepts
 * every signal but SIGKILL and SIGSTOP.  SIG_DFL needs no sa_restorer.
 */
struct txs_kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static inline int
txs_sigdefault(int sig)
{
    struct txs_kernel_sigaction sa = {.handler = SIG_DFL};
    return (int)syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof sa.mask);
}

/* recvmsg(2) without glibc's cancellation point (the calling thread's TLS
   is the suspended parent thread's in a CLONE_VM child). */
struct msghdr;
static inline long
txs_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return syscall(SYS_recvmsg, fd, msg, flags);
}

/* getdents64(2): Linux 2.4.  Used only by the close_range() fallback. */
static inline long
txs_getdents64(int fd, void *buf, size_t len)
{
    return syscall(SYS_getdents64, fd, buf, len);
}

/*
 * A system call that returns -errno and never touches errno: the map
 * handoff's child runs beside the parent thread whose errno it shares (it
 * runs on that thread's TLS), so during the handoff neither side may write
 * errno while the other could be reading it.  x86_64 (the only architecture
 * with the clone3 trampoline too): the syscall instruction, rax the number,
 * then rdi, rsi, rdx, r10, r8, r9; rcx and r11 clobbered.  Elsewhere
 * glibc's syscall() stands in, and a failure of one side's call could, in
 * theory, be seen with the other side's errno.
 */
#if defined(__x86_64__)
static inline long
txs_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10),
                           "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    return ret;
}
#else
static inline long
txs_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret = syscall(nr, a, b, c, d, e, f);
    return ret < 0 ? -errno : ret;
}
#endif

/*
 * Write len bytes to path in one write(), as the kernel wants a uid/gid map
 * or time offsets (a short write is EIO): open, write, close, nothing
 * else; 0 or -errno.  Raw (see txs_raw6), and not glibc's open, write and
 * close, which are cancellation points that mark the calling thread's
 * struct pthread -- in a CLONE_VM child, the parent thread's, which may be
 * running.  Used by the child and by the parent (its /proc/<pid> maps).
 */
static inline int
txs_write_file_raw(const char *path, const char *data, size_t len)
{
    long fd = txs_raw6(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC,
                       0, 0, 0);
    if (fd < 0) {
        return (int)fd;
    }
    long n = txs_raw6(SYS_write, fd, (long)data, (long)len, 0, 0, 0);
    (void)txs_raw6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n < 0) {
        return (int)n;
    }
    return (size_t)n == len ? 0 : -EIO;
}

/* txs_write_file_raw with the errno convention: 0, or -1 and errno. */
static inline int
txs_write_file(const char *path, const char *data, size_t len)
{
    int r = txs_write_file_raw(path, data, len);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return 0;
}

#endif /* TXSPAWN_SYS_H */
