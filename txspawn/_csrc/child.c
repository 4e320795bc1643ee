/*
 * child.c: everything the child does between clone and execve.
 *
 * Rules (docs/design/engines.rst, STYLE.md B4):
 *
 *   - This file must not include <Python.h>.  The child reads only the
 *     plain-C struct txs_plan that the parent filled in before the clone.
 *   - Async-signal-safe and vfork-safe calls only: no malloc/free, no stdio,
 *     no strerror, no locks, no writable globals (with CLONE_VM the child
 *     shares the parent's memory: a global written here is written in the
 *     parent; the only shared state touched is errno, which belongs to the
 *     parent thread that is suspended until we exec or exit).
 *   - Credentials through raw syscalls (sys.h), never glibc's set*id().
 *   - No raise()/abort(): glibc's raise() signals the thread id it finds in
 *     the calling thread's TLS, which here is the parent thread's.
 *   - One failure path, txs_child_fail(): record {stage, errno, detail} on
 *     the error pipe (slot mode: in the parent's memory) and _exit(127).
 *     detail is 0 except for RLIMIT (the resource), PDEATHSIG (the
 *     signal), as in the Python engine, and RESERVED_FD (the fd; C only).
 *   - Writes to the parent's memory: only the struct txs_shared of slot
 *     mode and the started word of a spawn into a cgroup (txs_cgroup),
 *     which the parent reads once we have exec'd or exited.
 *
 * Stage order (the Python engine's fork path follows the same order, so
 * both engines report the same stage for the same input):
 *
 *   the cgroup (writing cgroup.procs, when the clone did not place us) ->
 *   fd table unshare and the fds taken from the reserved socket (slot mode
 *   only) -> signal dispositions -> the namespace steps (below) -> setsid ->
 *   setpgid -> fd program -> TIOCSCTTY -> chdir -> umask -> rlimits ->
 *   setgroups -> setresgid -> setresuid -> PR_SET_PDEATHSIG -> signal mask
 *   -> execve over the candidates (or of txspawn's init).
 *
 * The namespace steps (issue 13; txspawn/_plan/namespaceplan.py), after the
 * clone that created the namespaces [NAMESPACES, reported by the parent]:
 *
 *   maps: written here under /proc/self (setgroups, gid_map, uid_map
 *   [IDMAP 1/2/3]), or by the parent while we wait on a futex [SYNC] ->
 *   the early ids inside (setresgid [SETGID], setresuid [SETUID]) ->
 *   sethostname [HOSTNAME] -> lo up [LOOPBACK] -> mount propagation
 *   [MOUNT_PROPAGATION] -> a fresh /proc [MOUNT_PROC] ->
 *   unshare(CLONE_NEWTIME) and its offsets [TIME_OFFSETS 1/2] (the offsets
 *   file is opened right after the maps, before the early ids: a failure
 *   to open it is TIME_OFFSETS 2 at that point).
 *
 * While we wait for the parent's maps the parent is not suspended: we share
 * its memory (CLONE_VM without CLONE_VFORK) and run at the same time as the
 * thread that cloned us.  That thread's errno is ours too (we run on its
 * TLS), so neither side may write errno while the other could be reading
 * it: until the futex word changes we make only calls that cannot fail
 * (prctl, getppid) or that leave errno alone (txs_raw6: the futex wait, the
 * poll); the parent's map writes are raw too, and once it has stored the
 * word it makes no call that can fail until the error pipe's end of file
 * (spawn.c).
 *
 * PR_SET_PDEATHSIG comes after the credential changes because the kernel
 * clears it when the effective uid or gid changes (prctl(2)).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "plan.h"
#include "sys.h"

/* Per-child state; lives on the child's own stack, never in a global. */
struct txs_child {
    const struct txs_plan *plan;
    int err_fd;  /* where the error pipe's write end is right now */
    int status_fd;  /* ... and the status pipe's (init only; else -1) */
};

/* What getdents64(2) fills in; glibc < 2.30 does not declare it. */
struct txs_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/*
 * Report a failure and exit.  errno is read first, before anything can
 * change it.  The record is 16 bytes (< PIPE_BUF), so one write() puts it in
 * the pipe atomically; the loop only retries EINTR (signals are blocked at
 * every call site but the last, where they are set to the planned mask).
 */
_Noreturn static void
txs_child_fail(const struct txs_child *c, enum txs_stage stage, int detail)
{
    int saved = errno;
    struct txs_record rec = {
        {TXS_MAGIC0, TXS_MAGIC1, TXS_MAGIC2, TXS_MAGIC3},
        (uint32_t)stage, (int32_t)saved, (int32_t)detail,
    };
    struct txs_shared *shared = c->plan->shared;
    if (shared != NULL) {
        /* Slot mode (vfork mode): straight into the suspended parent's
           memory, read once clone() returns there, after our exit. */
        shared->record = rec;
        shared->failed = 1;
        _exit(127);
    }
    const char *p = (const char *)&rec;
    size_t left = sizeof(rec);
    while (left > 0) {
        ssize_t n = write(c->err_fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;  /* nobody to tell: the parent sees a short record */
        }
        p += n;
        left -= (size_t)n;
    }
    _exit(127);
}

/* Parse a /proc/self/fd entry name; -1 for "." and "..". */
static int
txs_parse_fd(const char *name)
{
    long fd = 0;
    if (*name == '\0') {
        return -1;
    }
    for (; *name; name++) {
        if (*name < '0' || *name > '9' || fd > INT_MAX / 10) {
            return -1;
        }
        fd = fd * 10 + (*name - '0');
    }
    return fd > INT_MAX ? -1 : (int)fd;
}

/*
 * Close every fd in [lo, hi].  close_range() (Linux 5.9) when the kernel
 * has it; else list /proc/self/fd with getdents64 into a stack buffer
 * (never opendir: it mallocs); else close every number up to the
 * RLIMIT_NOFILE soft limit (CPython's _close_open_fds_safe/_unsafe).
 */
static void
txs_close_fds(const struct txs_child *c, unsigned lo, unsigned hi)
{
    if (txs_close_range(lo, hi, 0) == 0) {
        return;
    }
    if (errno != ENOSYS && errno != EINVAL) {
        txs_child_fail(c, TXS_STAGE_CLOSE_FDS, 0);
    }
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        _Alignas(8) char buf[4096];
        long n;
        while ((n = txs_getdents64(dir, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                struct txs_dirent64 *d = (struct txs_dirent64 *)(buf + off);
                int fd = txs_parse_fd(d->d_name);
                if (fd >= 0 && fd != dir && fd != c->err_fd &&
                        fd != c->status_fd &&
                        (unsigned)fd >= lo && (unsigned)fd <= hi) {
                    close(fd);
                }
                off += d->d_reclen;
            }
        }
        close(dir);
        return;
    }
    struct rlimit rl;
    unsigned top = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < (rlim_t)INT_MAX) {
        top = (unsigned)rl.rlim_cur;
    }
    for (unsigned fd = lo; fd <= hi && fd < top; fd++) {
        if ((int)fd != c->err_fd && (int)fd != c->status_fd) {
            close((int)fd);
        }
    }
}

/*
 * With CLONE_FILES the child starts on the parent's own fd table: it must
 * not change any fd until it has a private copy.  close_range(bound, ~0U,
 * CLOSE_RANGE_UNSHARE) (Linux 5.9) copies only [0, bound) -- where the
 * parent put every fd the child needs -- and drops the rest, at a cost
 * independent of how many fds the parent has open.
 */
static void
txs_unshare_fds(const struct txs_child *c, unsigned bound)
{
    if (txs_close_range(bound, TXS_CLOSE_RANGE_MAX, CLOSE_RANGE_UNSHARE) == 0) {
        return;
    }
    /* Not expected (the parent probed close_range), but never fall through
       to closing fds in a table the parent still uses. */
    if (unshare(CLONE_FILES) != 0) {
        txs_child_fail(c, TXS_STAGE_CLOSE_FDS, 0);
    }
}

/*
 * Slot mode, right after the unshare: take the fds this child needs from the
 * reserved socket, where the parent sent them (SCM_RIGHTS) before the
 * clone.  The parent never writes a fixed fd number, so no other thread's
 * fd can be replaced, and this table is now private: what slot_fd is here
 * cannot change between the check and the recvmsg, so a reserved fd that
 * other code closed (the number maybe reused for its own file) is caught
 * here, race-free, and that file is never read from or handed on.
 *
 * The received fds land on the lowest free numbers: everything below
 * slot_fd is closed first (this table only holds [0, bound)), so they are
 * 0, 1, ... skipping slot_fd, the numbers the fd program was planned with
 * (txspawn._engine.fdslots.FdSlots.layout); any other outcome is refused.
 */
static void
txs_take_fds(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    struct stat st;
    if (fstat(plan->slot_fd, &st) < 0) {
        /* Closed (EBADF): nobody's file is on the number in our copy of
           the table, and the parent, told so, never touches it again. */
        txs_child_fail(c, TXS_STAGE_RESERVED_FD, plan->slot_fd);
    }
    if (st.st_dev != plan->slot_dev || st.st_ino != plan->slot_ino) {
        /* Someone else's file now: leave it alone. */
        errno = ESTALE;
        txs_child_fail(c, TXS_STAGE_RESERVED_FD, plan->slot_fd);
    }
    if (plan->slot_fd > 0 &&
            txs_close_range(0, (unsigned)plan->slot_fd - 1, 0) < 0) {
        txs_child_fail(c, TXS_STAGE_CLOSE_FDS, 0);
    }
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * TXS_MAX_RECV)];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    /* MSG_DONTWAIT: the message was queued before the clone; if it is not
       there, fail rather than hang the parent (suspended until we exit). */
    if (txs_recvmsg(plan->slot_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) <
            0) {
        txs_child_fail(c, TXS_STAGE_FDS, 0);
    }
    plan->shared->received = 1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (msg.msg_flags & MSG_CTRUNC) {
        errno = EMFILE;  /* the kernel could not install every fd */
        txs_child_fail(c, TXS_STAGE_FDS, 0);
    }
    if (cm == NULL || cm->cmsg_level != SOL_SOCKET ||
            cm->cmsg_type != SCM_RIGHTS ||
            cm->cmsg_len != CMSG_LEN(sizeof(int) * plan->nrecv)) {
        errno = EPROTO;
        txs_child_fail(c, TXS_STAGE_FDS, 0);
    }
    const unsigned char *data = CMSG_DATA(cm);
    for (size_t i = 0; i < plan->nrecv; i++) {
        int fd;
        memcpy(&fd, data + i * sizeof(int), sizeof(int));
        int expected = (int)i < plan->slot_fd ? (int)i : (int)i + 1;
        if (fd != expected) {
            errno = EPROTO;
            txs_child_fail(c, TXS_STAGE_FDS, 0);
        }
    }
}

/*
 * Every disposition back to SIG_DFL, as Twisted does: handlers would run
 * parent code in our shared memory, and SIG_IGN would survive the exec.
 * (CLONE_CLEAR_SIGHAND would reset handlers but keeps SIG_IGN, so this loop
 * is needed in any case.)  Signals stay blocked until just before execve.
 * Through the raw syscall, so that glibc's internal signals (32, 33) are
 * reset too, as glibc's own posix_spawn does with POSIX_SPAWN_SETSIGDEF.
 */
static void
txs_reset_signals(const struct txs_child *c)
{
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) {
            continue;
        }
        if (txs_sigdefault(sig) != 0) {
            txs_child_fail(c, TXS_STAGE_SIGNALS, 0);
        }
    }
}

/* Run the fd program computed by txspawn._plan.fdremap.planFdOps. */
static void
txs_run_fd_ops(struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    for (size_t i = 0; i < plan->nops; i++) {
        const struct txs_fdop *op = &plan->ops[i];
        int target = (int)op->target;
        switch (op->code) {
        case TXS_FDOP_DUP2:
            if (dup2(op->fd, target) < 0) {
                txs_child_fail(c, TXS_STAGE_FDS, 0);
            }
            break;
        case TXS_FDOP_DUP2_CLOEXEC:
            if (dup3(op->fd, target, O_CLOEXEC) < 0) {
                txs_child_fail(c, TXS_STAGE_FDS, 0);
            }
            if (op->fd == c->err_fd) {
                c->err_fd = target;  /* the kept error pipe was moved */
            }
            else if (op->fd == c->status_fd) {
                c->status_fd = target;  /* ... or the status pipe */
            }
            break;
        case TXS_FDOP_CLEAR_CLOEXEC:
            if (fcntl(op->fd, F_SETFD, 0) < 0) {
                txs_child_fail(c, TXS_STAGE_FDS, 0);
            }
            break;
        case TXS_FDOP_CLOSE:
            close(op->fd);  /* EBADF is fine; EINTR still closed it */
            break;
        case TXS_FDOP_CLOSE_RANGE:
            txs_close_fds(c, (unsigned)op->fd, op->target);
            break;
        default:
            errno = EINVAL;
            txs_child_fail(c, TXS_STAGE_FDS, 0);
        }
    }
}

/*
 * execve over the candidates with glibc execvp's error semantics: ENOENT
 * and ENOTDIR mean "try the next one"; EACCES is remembered and reported if
 * nothing better comes (libuv's seen_eacces); any other error stops the
 * search and is reported; if every candidate was missing, the last
 * ENOENT/ENOTDIR.  The Python engine does exactly the same.
 */
_Noreturn static void
txs_exec(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    int seen_eacces = 0, err = ENOENT;
    for (char *const *path = plan->candidates; *path != NULL; path++) {
        execve(*path, plan->argv, plan->envp);
        err = errno;
        if (err == EACCES) {
            seen_eacces = 1;
        }
        else if (err != ENOENT && err != ENOTDIR) {
            errno = err;
            txs_child_fail(c, TXS_STAGE_EXEC, 0);
        }
    }
    errno = seen_eacces ? EACCES : err;
    txs_child_fail(c, TXS_STAGE_EXEC, 0);
}

/* ---- the namespace steps (issue 13) ---- */

/*
 * Fault injection (tests only, txspawn._plan.faultinjection): the step of
 * `stage` fails with the planned errno instead of running.  Called at the
 * start of each namespace step, so every earlier step has run.
 */
static void
txs_fault(const struct txs_child *c, enum txs_stage stage, int detail)
{
    if (c->plan->fault_stage == (int)stage) {
        errno = c->plan->fault_errno;
        txs_child_fail(c, stage, detail);
    }
}

/* Write one of our own map files (/proc/self/...): one write(). */
static void
txs_write_own_map(const struct txs_child *c, const char *path,
                  const struct txs_bytes *data, int detail)
{
    if (txs_write_file(path, data->data, data->len) < 0) {
        txs_child_fail(c, TXS_STAGE_IDMAP, detail);
    }
}

/*
 * Whether the parent is gone, so that nobody will write our maps or read
 * our record.  Outside a new pid namespace, we were reparented.  In one,
 * getppid() is always 0 (the parent is outside), but the error pipe tells:
 * its write end polls POLLERR once no reader is left (the parent died or,
 * by an exec in another of its threads, closed it; a process that inherited
 * the read end from a concurrent fork delays this until it execs).
 */
static int
txs_parent_gone(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    if (!(plan->ns.clone_flags & CLONE_NEWPID)) {
        return getppid() != plan->parent_pid;
    }
    struct pollfd pfd = {c->err_fd, POLLOUT, 0};
    struct timespec now = {0, 0};
    long n = txs_raw6(SYS_ppoll, (long)&pfd, 1, (long)&now, 0, 0, 0);
    return n == 1 && (pfd.revents & POLLERR);
}

/*
 * Parent-written maps: wait until the parent has written them (the futex
 * word turns TXS_SYNC_GO) or gave up (TXS_SYNC_ABORT: it reports the
 * failure itself, so we just go).  We run beside the parent (no vfork), so
 * we must not outlive it: SIGKILL when the thread that cloned us dies, and
 * if it died before the prctl, nobody will ever change the word: looked at
 * before each wait, and again every second.  Until the word changes, the
 * calls here cannot fail or are raw (txs_raw6): the parent thread may be
 * reading the errno we share.
 */
static void
txs_wait_for_maps(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    uint32_t *word = plan->map_sync;
    int op = plan->map_sync_shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE;
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0, 0, 0) < 0) {
        txs_child_fail(c, TXS_STAGE_SYNC, 0);
    }
    for (;;) {
        uint32_t state = __atomic_load_n(word, __ATOMIC_ACQUIRE);
        if (state == TXS_SYNC_GO) {
            break;
        }
        if (state != TXS_SYNC_WAIT || txs_parent_gone(c)) {
            _exit(127);  /* the parent gave up and reports why, or died */
        }
        /* Returns at once if the word is no longer TXS_SYNC_WAIT (EAGAIN);
           a spurious wake-up or the timeout just loops. */
        struct timespec recheck = {1, 0};
        long r = txs_raw6(SYS_futex, (long)word, op, TXS_SYNC_WAIT,
                          (long)&recheck, 0, 0);
        if (r < 0 && r != -EAGAIN && r != -EINTR && r != -ETIMEDOUT) {
            errno = (int)-r;
            txs_child_fail(c, TXS_STAGE_SYNC, 0);
        }
    }
    /* The ordinary PR_SET_PDEATHSIG step (death_signal) comes later. */
    if (prctl(PR_SET_PDEATHSIG, 0UL, 0, 0, 0) < 0) {
        txs_child_fail(c, TXS_STAGE_SYNC, 0);
    }
    txs_fault(c, TXS_STAGE_SYNC, 0);
}

/* Step 2: the user namespace's maps. */
static void
txs_maps(const struct txs_child *c)
{
    const struct txs_namespaces *ns = &c->plan->ns;
    if (ns->uid_map.data == NULL) {
        return;  /* no user namespace */
    }
    if (!ns->maps_by_child) {
        txs_wait_for_maps(c);
        return;
    }
    txs_fault(c, TXS_STAGE_IDMAP,
              ns->setgroups.data != NULL ? TXS_IDMAP_SETGROUPS
                                         : TXS_IDMAP_GID_MAP);
    /* setgroups first: an unprivileged gid_map write needs "deny". */
    if (ns->setgroups.data != NULL) {
        txs_write_own_map(c, "/proc/self/setgroups", &ns->setgroups,
                          TXS_IDMAP_SETGROUPS);
    }
    if (ns->gid_map.data != NULL) {
        txs_write_own_map(c, "/proc/self/gid_map", &ns->gid_map,
                          TXS_IDMAP_GID_MAP);
    }
    txs_write_own_map(c, "/proc/self/uid_map", &ns->uid_map,
                      TXS_IDMAP_UID_MAP);
}

/* Step 5: `lo` up.  SIOCSIFFLAGS alone does it: the kernel adds 127.0.0.1
   and ::1 to an interface that comes up. */
static void
txs_loopback(const struct txs_child *c)
{
    txs_fault(c, TXS_STAGE_LOOPBACK, 0);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        txs_child_fail(c, TXS_STAGE_LOOPBACK, 0);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", sizeof("lo"));
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        txs_child_fail(c, TXS_STAGE_LOOPBACK, 0);
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
        txs_child_fail(c, TXS_STAGE_LOOPBACK, 0);
    }
    close(s);
}

/*
 * Step 8: a time namespace with its offsets.  unshare() does not move us
 * into it, only our future children and ourselves at execve (Linux 6.0,
 * "fs/exec: switch timens when a task gets a new mm"), so its offsets can
 * still be written: the kernel takes them only while nobody is in it.
 * offsets_fd is /proc/self/timens_offsets, opened before the early ids
 * (txs_namespaces): the write is checked against the opener's credentials.
 */
static void
txs_time_offsets(const struct txs_child *c, int offsets_fd)
{
    const struct txs_bytes *offsets = &c->plan->ns.time_offsets;
    txs_fault(c, TXS_STAGE_TIME_OFFSETS, TXS_TIME_UNSHARE);
    if (unshare(TXS_CLONE_NEWTIME) < 0) {
        txs_child_fail(c, TXS_STAGE_TIME_OFFSETS, TXS_TIME_UNSHARE);
    }
    long n = txs_raw6(SYS_write, offsets_fd, (long)offsets->data,
                      (long)offsets->len, 0, 0, 0);
    if (n < 0 || (size_t)n != offsets->len) {
        errno = n < 0 ? (int)-n : EIO;
        txs_child_fail(c, TXS_STAGE_TIME_OFFSETS, TXS_TIME_WRITE);
    }
    (void)txs_raw6(SYS_close, offsets_fd, 0, 0, 0, 0, 0);
}

/* Steps 2 to 8, in the contract's order (the Python engine's too). */
static void
txs_namespaces(const struct txs_child *c)
{
    const struct txs_namespaces *ns = &c->plan->ns;
    int offsets_fd = -1;
    txs_maps(c);
    if (ns->time_offsets.data != NULL) {
        /* Opened now, written at step 8: once the early ids have changed
           our uid (a map whose root is not our euid), the kernel makes us
           non-dumpable and /proc/self/'s files become the host root's,
           which it would no longer let us open for writing. */
        offsets_fd = (int)txs_raw6(SYS_openat, AT_FDCWD,
                                   (long)"/proc/self/timens_offsets",
                                   O_WRONLY | O_CLOEXEC, 0, 0, 0);
        if (offsets_fd < 0) {
            errno = -offsets_fd;
            txs_child_fail(c, TXS_STAGE_TIME_OFFSETS, TXS_TIME_WRITE);
        }
    }
    if (ns->early_ids) {
        /* The ids inside, before anything that needs the capabilities
           they keep (a uid changing to the namespace's root keeps them). */
        txs_fault(c, TXS_STAGE_SETGID, 0);
        if (txs_setresgid(ns->early_gid) < 0) {
            txs_child_fail(c, TXS_STAGE_SETGID, 0);
        }
        txs_fault(c, TXS_STAGE_SETUID, 0);
        if (txs_setresuid(ns->early_uid) < 0) {
            txs_child_fail(c, TXS_STAGE_SETUID, 0);
        }
    }
    if (ns->hostname.data != NULL) {
        txs_fault(c, TXS_STAGE_HOSTNAME, 0);
        if (sethostname(ns->hostname.data, ns->hostname.len) < 0) {
            txs_child_fail(c, TXS_STAGE_HOSTNAME, 0);
        }
    }
    if (ns->loopback) {
        txs_loopback(c);
    }
    if (ns->propagation != 0) {
        txs_fault(c, TXS_STAGE_MOUNT_PROPAGATION, 0);
        if (mount(NULL, "/", NULL, MS_REC | ns->propagation, NULL) < 0) {
            txs_child_fail(c, TXS_STAGE_MOUNT_PROPAGATION, 0);
        }
    }
    if (ns->mount_proc) {
        txs_fault(c, TXS_STAGE_MOUNT_PROC, 0);
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) < 0) {
            txs_child_fail(c, TXS_STAGE_MOUNT_PROC, 0);
        }
    }
    if (offsets_fd >= 0) {
        txs_time_offsets(c, offsets_fd);
    }
}

/*
 * Put the error pipe and (with init) the status pipe at the numbers the
 * plan chose for them, above every fd the fd program mentions.  Each is
 * moved only where it is not already; the status pipe first goes out of
 * the way if it sits where the error pipe is going.
 */
static void
txs_move_pipes(struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    if (c->status_fd >= 0 && c->status_fd == plan->err_target) {
        int above = plan->err_target > plan->status_target
                    ? plan->err_target : plan->status_target;
        int fd = fcntl(c->status_fd, F_DUPFD_CLOEXEC, above + 1);
        if (fd < 0) {
            txs_child_fail(c, TXS_STAGE_FDS, 0);
        }
        c->status_fd = fd;
    }
    if (plan->err_target != c->err_fd) {
        /* Move the error pipe above every fd the program mentions. */
        if (dup3(c->err_fd, plan->err_target, O_CLOEXEC) < 0) {
            txs_child_fail(c, TXS_STAGE_FDS, 0);
        }
        c->err_fd = plan->err_target;
    }
    if (c->status_fd >= 0 && c->status_fd != plan->status_target) {
        if (dup3(c->status_fd, plan->status_target, O_CLOEXEC) < 0) {
            txs_child_fail(c, TXS_STAGE_FDS, 0);
        }
        c->status_fd = plan->status_target;
    }
}

/*
 * Exec txspawn's init (pid 1 of the new pid namespace), which runs the
 * command as its pid 2 (txspawn/_csrc/init.c): the error pipe and the
 * status pipe stay open across this exec (init makes them close-on-exec
 * itself), so that init's child can report an exec failure and init the
 * command's wait status.  Init failing to start is INIT.
 */
_Noreturn static void
txs_exec_init(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    txs_fault(c, TXS_STAGE_INIT, 0);
    if (fcntl(c->err_fd, F_SETFD, 0) < 0 ||
            fcntl(c->status_fd, F_SETFD, 0) < 0) {
        txs_child_fail(c, TXS_STAGE_FDS, 0);
    }
    execve(plan->init_path, plan->init_argv, plan->envp);
    txs_child_fail(c, TXS_STAGE_INIT, 0);
}

/*
 * Step 0, the cgroup (issue 14; see txs_spawn in spawn.c): tell the parent
 * that we run (the kernel kills a child it cloned into a cgroup with
 * another cgroup.kill history before its first instruction), then, when
 * the clone did not place us, move ourselves into the leaf by writing "0"
 * to its cgroup.procs [CGROUP], before anything else: every later step,
 * and whatever it starts, happens inside; and then enter the cgroup
 * namespace the plan asked for [NAMESPACES], so that its root is the leaf
 * (spawn.c left CLONE_NEWCGROUP out of the clone).  Raw calls: in the map
 * handoff the parent runs beside us on our errno.
 */
static void
txs_cgroup(const struct txs_child *c)
{
    const struct txs_plan *plan = c->plan;
    if (plan->started != NULL) {
        *plan->started = 1;
    }
    if (!plan->has_cgroup) {
        return;
    }
    txs_fault(c, TXS_STAGE_CGROUP, 0);
    if (plan->cgroup_procs_fd >= 0) {
        long n = txs_raw6(SYS_write, plan->cgroup_procs_fd, (long)"0", 1, 0,
                          0, 0);
        if (n != 1) {
            errno = n < 0 ? (int)-n : EIO;
            txs_child_fail(c, TXS_STAGE_CGROUP, 0);
        }
    }
    if (plan->cgroup_unshare) {
        /* The cgroup namespace the plan asked the clone for, rooted at
           the leaf we are in now. */
        txs_fault(c, TXS_STAGE_NAMESPACES, 0);
        long r = txs_raw6(SYS_unshare, CLONE_NEWCGROUP, 0, 0, 0, 0, 0);
        if (r < 0) {
            errno = (int)-r;
            txs_child_fail(c, TXS_STAGE_NAMESPACES, 0);
        }
    }
}

int
txs_child_main(void *arg)
{
    const struct txs_plan *plan = arg;
    struct txs_child c = {plan, plan->err_fd,
                          plan->init_path != NULL ? plan->status_fd : -1};

    txs_cgroup(&c);
    if (plan->files_bound > 0) {
        txs_unshare_fds(&c, plan->files_bound);
        txs_take_fds(&c);
    }
    txs_reset_signals(&c);
    txs_namespaces(&c);

    if (plan->new_session && setsid() < 0) {
        txs_child_fail(&c, TXS_STAGE_SETSID, 0);
    }
    if (plan->process_group >= 0 && setpgid(0, plan->process_group) < 0) {
        txs_child_fail(&c, TXS_STAGE_SETPGID, 0);
    }

    txs_move_pipes(&c);
    txs_run_fd_ops(&c);

    if (plan->ctty && ioctl(0, TIOCSCTTY, 0) < 0) {
        txs_child_fail(&c, TXS_STAGE_CTTY, 0);
    }
    if (plan->cwd != NULL && chdir(plan->cwd) < 0) {
        txs_child_fail(&c, TXS_STAGE_CHDIR, 0);
    }
    if (plan->umask >= 0) {
        umask((mode_t)plan->umask);
    }
    for (size_t i = 0; i < plan->nrlimits; i++) {
        const struct txs_rlimit *r = &plan->rlimits[i];
        struct rlimit rl = {(rlim_t)r->soft, (rlim_t)r->hard};
        if (setrlimit(r->resource, &rl) < 0) {
            txs_child_fail(&c, TXS_STAGE_RLIMIT, r->resource);
        }
    }

    if (plan->set_groups && txs_setgroups(plan->ngroups, plan->groups) < 0 &&
            !(plan->groups_implicit && errno == EPERM)) {
        /* The implicit drop that comes with a uid needs CAP_SETGID; without
           it the parent has no privilege to lose, and setresuid() reports
           EPERM if the uid change is not allowed either (as Rust's
           std::process does). */
        txs_child_fail(&c, TXS_STAGE_SETGROUPS, 0);
    }
    if (plan->gid != (gid_t)-1 && txs_setresgid(plan->gid) < 0) {
        txs_child_fail(&c, TXS_STAGE_SETGID, 0);
    }
    if (plan->uid != (uid_t)-1 && txs_setresuid(plan->uid) < 0) {
        txs_child_fail(&c, TXS_STAGE_SETUID, 0);
    }

    if (plan->death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, (unsigned long)plan->death_signal, 0, 0,
                  0) < 0) {
            txs_child_fail(&c, TXS_STAGE_PDEATHSIG, plan->death_signal);
        }
        /* The parent may have died before the prctl: then nobody will send
           the signal, so send it ourselves (pending until the mask below). */
        if (getppid() != plan->parent_pid) {
            syscall(SYS_kill, (pid_t)syscall(SYS_getpid), plan->death_signal);
        }
    }

    if (plan->init_path != NULL) {
        /* Init starts with every signal still blocked (as since the
           clone): one arriving before it has its handlers stays pending
           instead of being dropped (a namespace's pid 1 ignores every
           signal it has no handler for); it sets the command's mask
           (init_argv) in its child itself. */
        txs_exec_init(&c);
    }
    if (txs_sigmask(SIG_SETMASK, &plan->signal_mask, NULL) < 0) {
        txs_child_fail(&c, TXS_STAGE_SIGNALS, 0);
    }
    txs_exec(&c);
}
