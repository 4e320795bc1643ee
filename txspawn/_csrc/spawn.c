/*
 * spawn.c: the parent side of a spawn.  No Python here: module.c converts
 * the arguments into a struct txs_plan, releases the GIL, and calls
 * txs_spawn(), which
 *
 *   1. in slot mode (see txspawn/_engine/fdslots.py), checks that the reserved socket is
 *      still ours and sends it every fd the child needs (SCM_RIGHTS);
 *      else creates the error pipe (pipe2 O_CLOEXEC);
 *   2. takes a child stack with a guard page (a CLONE_VM child must never
 *      run on the caller's stack): the one cached by the previous spawn, or
 *      a fresh mapping (see txs_take_stack);
 *   3. blocks every signal, clones (CLONE_VM|CLONE_VFORK|CLONE_PIDFD, plus
 *      CLONE_FILES in slot mode), restores the signal mask;
 *   4. in slot mode, empties the socket if the child did not take its
 *      message, and reads a failure from the memory the child shares with
 *      us; else closes its copy of the error pipe's write end and reads the
 *      pipe until EOF (the exec closed the child's copy) or one record.  A
 *      failed child is reaped here, before returning.
 *
 * No fixed fd number is ever written here: another thread may have closed
 * one of ours and got the number for its own file (its bug, but its file
 * must never be replaced).
 *
 * Mechanisms are chosen by probes cached in txs_features[], each with the
 * reason it is off.  A probe is settled by the first spawn that uses the
 * flag: EINVAL/ENOSYS from clone() turns the flag off for good, success
 * turns it on for good; any other error (EAGAIN, ENOMEM, EMFILE) is
 * transient and settles nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clone3.h"
#include "plan.h"
#include "spawn.h"
#include "sys.h"

#if defined(__hppa__)
#error "txspawn: stacks that grow upwards are not supported"
#endif

/* Enough for child.c (its largest frame holds a 4 KiB getdents buffer)
   and the libc wrappers it calls. */
#define TXS_STACK_SIZE (64 * 1024)

struct txs_feature txs_features[TXS_NFEATURES] = {
    [TXS_FEAT_VFORK] = {"vfork", TXS_UNKNOWN,
                        "not probed yet: settled by the first spawn"},
    [TXS_FEAT_CLONE_PIDFD] = {"clone_pidfd", TXS_UNKNOWN,
                              "not probed yet: settled by the first spawn"},
    [TXS_FEAT_PIDFD_OPEN] = {"pidfd_open", TXS_UNKNOWN,
                             "not probed yet: used only without CLONE_PIDFD"},
    [TXS_FEAT_CLOSE_RANGE] = {"close_range_unshare", TXS_UNKNOWN,
                              "not probed yet"},
    [TXS_FEAT_CLONE3] = {"clone3", TXS_UNKNOWN,
                         "not probed yet: probed when the module loads"},
    [TXS_FEAT_CLEAR_SIGHAND] = {"clone_clear_sighand", TXS_UNKNOWN,
                                "not probed yet: probed with clone3"},
};

static void
txs_settle(int feature, int state, const char *reason)
{
    struct txs_feature *f = &txs_features[feature];
    if (f->state == TXS_UNKNOWN) {
        f->reason = reason;
        f->state = state;
    }
}

/* The probe's child: exits at once (the trampoline does SYS_exit(0)). */
static int
txs_probe_child(void *arg)
{
    (void)arg;
    return 0;
}

static long
txs_clone3_probe_once(char *stack_lo, size_t stack_size, uint64_t flags)
{
    int pidfd = -1;
    struct txs_clone_args ca = {0};
    ca.flags = flags;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)(uintptr_t)stack_lo;
    ca.stack_size = stack_size;
    long r = txs_clone3_vm(&ca, TXS_CLONE_ARGS_VER0, txs_probe_child, NULL);
    if (r > 0) {
        int status;
        /* ECHILD when SIGCHLD is SIG_IGN: already reaped by the kernel. */
        while (waitpid((pid_t)r, &status, 0) < 0 && errno == EINTR) {
        }
        if (pidfd >= 0) {
            close(pidfd);
        }
    }
    return r;
}

/*
 * A real clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_CLEAR_SIGHAND) of a
 * child that exits at once, through the trampoline, on a throwaway stack,
 * with every signal blocked (a CLONE_VM child must never run the parent's
 * handlers).  Only a real call tells: the kernel answers EINVAL for an
 * unknown flag as for any other bad argument, and seccomp profiles answer
 * ENOSYS or EPERM for clone3 as a whole (it cannot filter its flags).
 */
static void
txs_probe_clone3(void)
{
    static char why[128];
    if (txs_features[TXS_FEAT_CLONE3].state != TXS_UNKNOWN) {
        return;  /* done once per process, not once per interpreter */
    }
    if (!txs_clone3_available) {
        txs_settle(TXS_FEAT_CLONE3, TXS_OFF,
                   "clone3 trampoline not available on this architecture; "
                   "using glibc clone()");
        txs_settle(TXS_FEAT_CLEAR_SIGHAND, TXS_OFF,
                   "needs clone3, which is not used on this architecture");
        return;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = 4 * page;
    char *stack = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        return;  /* transient: stays unprobed, glibc clone() is used */
    }
    if (mprotect(stack, page, PROT_NONE) < 0) {
        munmap(stack, size + page);
        return;
    }
    uint64_t base = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
    uint64_t all = ~(uint64_t)0, old;
    txs_sigmask(SIG_SETMASK, &all, &old);
    long r = txs_clone3_probe_once(stack + page, size,
                                   base | CLONE_CLEAR_SIGHAND);
    int clear = r > 0;
    if (r == -EINVAL) {
        r = txs_clone3_probe_once(stack + page, size, base);
    }
    txs_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, size + page);

    if (r > 0) {
        txs_settle(TXS_FEAT_CLONE3, TXS_ON, NULL);
        /* The probe's child was a CLONE_VM|CLONE_VFORK child. */
        txs_settle(TXS_FEAT_VFORK, TXS_ON, NULL);
        if (clear) {
            txs_settle(TXS_FEAT_CLEAR_SIGHAND, TXS_ON, NULL);
        }
        else {
            txs_settle(TXS_FEAT_CLEAR_SIGHAND, TXS_OFF,
                       "clone3(CLONE_CLEAR_SIGHAND) failed with EINVAL: "
                       "needs Linux 5.5; the child resets every "
                       "disposition itself");
        }
        return;
    }
    if (r == -ENOSYS) {
        snprintf(why, sizeof(why), "clone3() failed with ENOSYS: needs "
                 "Linux 5.3 (or seccomp); using glibc clone()");
    }
    else if (r == -EPERM) {
        snprintf(why, sizeof(why), "clone3() failed with EPERM (seccomp?); "
                 "using glibc clone()");
    }
    else if (r == -EINVAL) {
        snprintf(why, sizeof(why), "clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)"
                 " failed with EINVAL; using glibc clone()");
    }
    else if (r == -EAGAIN || r == -ENOMEM) {
        return;  /* transient: stays unprobed, glibc clone() is used */
    }
    else {
        snprintf(why, sizeof(why), "clone3() probe failed with errno %ld; "
                 "using glibc clone()", -r);
    }
    txs_settle(TXS_FEAT_CLONE3, TXS_OFF, why);
    txs_settle(TXS_FEAT_CLEAR_SIGHAND, TXS_OFF, "needs clone3, which is off");
}

/* ---- the trampoline's self-test (tests/test_cspawn.py) ---- */

struct txs_selftest {
    uintptr_t lo, hi;    /* the child's stack */
    volatile int ran;    /* written by the child: proves CLONE_VM */
    volatile int on_stack;
};

static int
txs_selftest_child(void *arg)
{
    struct txs_selftest *t = arg;
    char here = 0;
    uintptr_t at = (uintptr_t)&here;
    t->on_stack = at > t->lo && at < t->hi;
    t->ran = 1;
    return 42;
}

int
txs_clone3_selftest(int *status, int *ran, int *on_stack)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = 4 * page;
    char *stack = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        return -errno;
    }
    struct txs_selftest t = {(uintptr_t)(stack + page),
                             (uintptr_t)(stack + page + size), 0, 0};
    struct txs_clone_args ca = {0};
    ca.flags = CLONE_VM | CLONE_VFORK;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)(uintptr_t)(stack + page);
    ca.stack_size = size;
    uint64_t all = ~(uint64_t)0, old;
    txs_sigmask(SIG_SETMASK, &all, &old);
    long r = txs_clone3_vm(&ca, TXS_CLONE_ARGS_VER0, txs_selftest_child, &t);
    txs_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, size + page);
    if (r < 0) {
        return (int)r;
    }
    *status = -1;
    while (waitpid((pid_t)r, status, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    *ran = t.ran;
    *on_stack = t.on_stack;
    return 0;
}

void
txs_probe_init(void)
{
    txs_probe_clone3();
    /* close_range(~0U, ~0U, 0) closes nothing (fd ~0U is never open) and
       fails with ENOSYS before Linux 5.9.  Never probe CLOSE_RANGE_UNSHARE
       itself here: in a threaded parent it would give this thread a
       private fd table. */
    if (txs_close_range(TXS_CLOSE_RANGE_MAX, TXS_CLOSE_RANGE_MAX, 0) == 0) {
        txs_settle(TXS_FEAT_CLOSE_RANGE, TXS_ON, NULL);
    }
    else if (errno == ENOSYS) {
        txs_settle(TXS_FEAT_CLOSE_RANGE, TXS_OFF,
                   "close_range() failed with ENOSYS: needs Linux 5.9; "
                   "children copy the whole fd table");
    }
    else {
        txs_settle(TXS_FEAT_CLOSE_RANGE, TXS_OFF,
                   "close_range() probe failed (seccomp?); children copy "
                   "the whole fd table");
    }
}

int
txs_can_share_files(void)
{
    return txs_features[TXS_FEAT_CLOSE_RANGE].state == TXS_ON;
}

static int
txs_usable(int feature)
{
    return txs_features[feature].state != TXS_OFF;
}

/* Whether a spawn with these mechanisms takes the clone3 path (the
   trampoline, CLONE_VM): the only one that can use CLONE_INTO_CGROUP. */
static int
txs_clone3_path(unsigned allow)
{
    return (allow & TXS_ALLOW_VFORK) && (allow & TXS_ALLOW_CLONE3) &&
           txs_features[TXS_FEAT_CLONE3].state == TXS_ON;
}

/*
 * Whether clone3(CLONE_INTO_CGROUP) failing with err means "not into this
 * cgroup, not this way": the child is then placed through cgroup.procs.
 * EBADF: not a cgroup2 directory (or not an fd); EBUSY: the target has
 * controllers enabled for children (the "no internal processes" rule);
 * EACCES/EPERM: no write access to the target or the common ancestor's
 * cgroup.procs, or a seccomp filter; EINVAL/ENOSYS/E2BIG: a kernel
 * without CLONE_INTO_CGROUP (Linux 5.7; E2BIG is an older kernel's answer
 * to the larger struct clone_args); EOPNOTSUPP: a domain-invalid or
 * threaded target; ENOENT, ENODEV: the cgroup was removed (cgroup.procs
 * then fails too, and says so as stage CGROUP; a clone never fails with
 * ENOENT otherwise).  Anything else (EAGAIN, ENOMEM) is the clone's own
 * failure.
 */
static int
txs_cgroup_refusal(int err)
{
    return err == EBADF || err == EBUSY || err == EACCES || err == EPERM ||
           err == EINVAL || err == ENOSYS || err == E2BIG ||
           err == EOPNOTSUPP || err == ENODEV || err == ENOENT;
}

static pid_t
txs_clone_once(struct txs_plan *plan, void *stack_top, int vm, int vfork,
               int pidfd, int share_files, int *pidfd_out)
{
    /* The CLONE_NEW* flags all fit in clone()'s int (CLONE_NEWTIME, which
       would not -- it is in CSIGNAL --, is never among them). */
    int flags = SIGCHLD | (int)plan->ns.clone_flags;
    if (vm) {
        flags |= CLONE_VM | (vfork ? CLONE_VFORK : 0);
        /* Only while the parent is suspended: the child unshares the
           table first thing, before the parent can touch the slots. */
        if (share_files) {
            flags |= CLONE_FILES;
        }
    }
    if (pidfd) {
        flags |= CLONE_PIDFD;
    }
    *pidfd_out = -1;
    /* With CLONE_PIDFD the kernel stores the pidfd through parent_tid
       (Linux 5.2, glibc passes it through). */
    return clone(txs_child_main, stack_top, flags, plan, pidfd_out);
}

/*
 * clone() with the best flags the probes allow, settling the probes.  On
 * EINVAL/ENOSYS with a flag not yet known to work, retry without it.
 * handoff: the parent must run while the child waits for its maps, so
 * CLONE_VM goes without CLONE_VFORK (spawn.c's caller then owns the child's
 * stack until the child has exec'd or exited).
 */
static pid_t
txs_clone(struct txs_plan *plan, char *stack_lo, size_t stack_size,
          unsigned allow, int share_files, int handoff, int cgroup_fd,
          int *pidfd_out, int *used_vm, int *used_vfork, int *used_clone3,
          int *cgroup_refused)
{
    void *stack_top = stack_lo + stack_size;
    int vm = (allow & TXS_ALLOW_VFORK) && txs_usable(TXS_FEAT_VFORK);
    int vfork = !handoff;
    int pfd = (allow & TXS_ALLOW_CLONE_PIDFD) &&
              txs_usable(TXS_FEAT_CLONE_PIDFD);
    *used_clone3 = 0;
    *used_vfork = 0;
    *cgroup_refused = 0;
    if (txs_clone3_path(allow)) {
        /* The primary path, settled by the probe at load time. */
        struct txs_clone_args ca = {0};
        size_t size = TXS_CLONE_ARGS_VER0;
        ca.flags = CLONE_VM | (vfork ? CLONE_VFORK : 0) | plan->ns.clone_flags;
        if (cgroup_fd >= 0) {
            /* In the leaf from the child's first instruction. */
            ca.flags |= CLONE_INTO_CGROUP;
            ca.cgroup = (uint64_t)cgroup_fd;
            size = TXS_CLONE_ARGS_VER2;
        }
        if (share_files) {
            ca.flags |= CLONE_FILES;
        }
        if (allow & TXS_ALLOW_CLONE_PIDFD) {
            ca.flags |= CLONE_PIDFD;
        }
        /* Defence in depth only: the child still resets every
           disposition (CLONE_CLEAR_SIGHAND keeps SIG_IGN). */
        if (txs_features[TXS_FEAT_CLEAR_SIGHAND].state == TXS_ON) {
            ca.flags |= CLONE_CLEAR_SIGHAND;
        }
        *pidfd_out = -1;
        ca.pidfd = (uint64_t)(uintptr_t)pidfd_out;
        ca.exit_signal = SIGCHLD;
        ca.stack = (uint64_t)(uintptr_t)stack_lo;
        ca.stack_size = stack_size;
        long r = txs_clone3_vm(&ca, size, txs_child_main, plan);
        if (r > 0) {
            /* clone3 accepting these flags implies clone() would too. */
            if (vfork) {
                txs_settle(TXS_FEAT_VFORK, TXS_ON, NULL);
            }
            if (allow & TXS_ALLOW_CLONE_PIDFD) {
                txs_settle(TXS_FEAT_CLONE_PIDFD, TXS_ON, NULL);
            }
            *used_vm = 1;
            *used_vfork = vfork;
            *used_clone3 = 1;
            return (pid_t)r;
        }
        if (cgroup_fd >= 0 && txs_cgroup_refusal((int)-r)) {
            /* Never glibc clone() here: its child would start outside
               the leaf.  txs_spawn places it through cgroup.procs. */
            *cgroup_refused = (int)-r;
            errno = (int)-r;
            *used_vm = 0;
            return -1;
        }
        if (r != -EINVAL && r != -ENOSYS && r != -EPERM) {
            errno = (int)-r;  /* transient (EAGAIN, ENOMEM): no fallback */
            *used_vm = 0;
            return -1;
        }
        /* Refused although the probe passed (a seccomp filter installed
           since?): this spawn uses glibc clone(). */
    }
    pid_t pid = txs_clone_once(plan, stack_top, vm, vfork, pfd, share_files,
                               pidfd_out);
    int retry_pfd = pfd &&
        txs_features[TXS_FEAT_CLONE_PIDFD].state == TXS_UNKNOWN;
    int retry_vm = vm && txs_features[TXS_FEAT_VFORK].state == TXS_UNKNOWN;
    if (pid < 0 && (errno == EINVAL || errno == ENOSYS) && retry_pfd) {
        pid = txs_clone_once(plan, stack_top, vm, vfork, 0, share_files,
                             pidfd_out);
        if (pid >= 0) {
            txs_settle(TXS_FEAT_CLONE_PIDFD, TXS_OFF,
                       "clone(CLONE_PIDFD) failed with EINVAL: needs Linux "
                       "5.2; using pidfd_open() after the clone");
            pfd = 0;
        }
    }
    if (pid < 0 && (errno == EINVAL || errno == ENOSYS) && retry_vm) {
        int p = retry_pfd ? 0 : pfd;
        pid = txs_clone_once(plan, stack_top, 0, 0, p, share_files,
                             pidfd_out);
        if (pid >= 0) {
            txs_settle(TXS_FEAT_VFORK, TXS_OFF,
                       "clone(CLONE_VM|CLONE_VFORK) failed with EINVAL or "
                       "ENOSYS (seccomp or an emulator); using the fork-like "
                       "mode");
            vm = 0;
            if (retry_pfd && !p) {
                txs_settle(TXS_FEAT_CLONE_PIDFD, TXS_OFF,
                           "clone(CLONE_PIDFD) failed with EINVAL: needs "
                           "Linux 5.2; using pidfd_open() after the clone");
            }
            pfd = p;
        }
    }
    if (pid >= 0) {
        if (vm && vfork) {
            txs_settle(TXS_FEAT_VFORK, TXS_ON, NULL);
        }
        if (pfd) {
            txs_settle(TXS_FEAT_CLONE_PIDFD, TXS_ON, NULL);
        }
    }
    *used_vm = vm;
    *used_vfork = vm && vfork;
    return pid;
}

static void
txs_fail_parent(struct txs_outcome *out, const char *what)
{
    out->err = errno;
    out->what = what;
}

/*
 * One child stack is kept mapped between spawns: mapping, guarding and
 * unmapping a fresh one, and the page faults of a child running on
 * untouched pages, cost about 14 us per spawn.  Spawns run without the GIL
 * and may overlap, so the cached stack is taken and given back with atomic
 * exchanges: a spawn that finds none (another one holds it) maps its own,
 * and a spawn giving one back when the slot is full unmaps it.  Reuse is
 * safe once clone() has returned: in vfork mode the child has exec'd or
 * exited (it runs on the new image's stack or not at all), in the
 * fork-like mode it runs on its own copy of the pages, and a failed clone
 * ran nothing.  A fork() of the whole process copies the cache along with
 * the rest of the memory, which is equally fine.
 */
static char *txs_cached_stack = NULL;

static char *
txs_take_stack(size_t map_size, size_t page, struct txs_outcome *out)
{
    char *stack = __atomic_exchange_n(&txs_cached_stack, NULL,
                                      __ATOMIC_ACQ_REL);
    if (stack != NULL) {
        return stack;
    }
    stack = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        txs_fail_parent(out, "mmap");
        return NULL;
    }
    if (mprotect(stack, page, PROT_NONE) < 0) {
        txs_fail_parent(out, "mprotect");  /* the guard page */
        munmap(stack, map_size);
        return NULL;
    }
    return stack;
}

static void
txs_give_stack(char *stack, size_t map_size)
{
    char *expected = NULL;
    if (!__atomic_compare_exchange_n(&txs_cached_stack, &expected, stack, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(stack, map_size);
    }
}

/* Whether fd is still the file (st_dev, st_ino). */
static int
txs_is_file(int fd, dev_t dev, ino_t ino)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/*
 * How fd, once ours (dev, ino), is now: 0 if still ours, EBADF if closed,
 * ESTALE if the number holds another file.
 */
static int
txs_file_state(int fd, dev_t dev, ino_t ino)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return EBADF;
    }
    return st.st_dev == dev && st.st_ino == ino ? 0 : ESTALE;
}

/* A failure found in the parent, reported as the child would. */
static void
txs_parent_record(struct txs_outcome *out, enum txs_stage stage, int err,
                  int detail)
{
    struct txs_record rec = {
        {TXS_MAGIC0, TXS_MAGIC1, TXS_MAGIC2, TXS_MAGIC3},
        (uint32_t)stage, (int32_t)err, (int32_t)detail};
    memcpy(out->record, &rec, sizeof(rec));
    out->record_len = sizeof(rec);
}

union txs_control {
    char buf[CMSG_SPACE(sizeof(int) * TXS_MAX_RECV)];
    struct cmsghdr align;
};

/* Queue src[0..n) (n >= 1) on the reserved socket; 0, or -1 and errno. */
static int
txs_send_fds(const struct txs_slots *slots)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union txs_control control;
    struct msghdr msg = {0};
    memset(&control, 0, sizeof(control));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * slots->n);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * slots->n);
    memcpy(CMSG_DATA(cm), slots->src, sizeof(int) * slots->n);
    ssize_t r;
    while ((r = sendmsg(slots->sender, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)) <
            0 && errno == EINTR) {
    }
    return r < 0 ? -1 : 0;
}

/*
 * Empty the reserved socket: a message no child took (the clone failed, or
 * the child failed or was killed before taking it) would hold its fds open
 * (a pipe would never see EOF) and be taken by the next child.
 */
static void
txs_drain(const struct txs_slots *slots)
{
    /* Never read from someone else's fd. */
    if (!txs_is_file(slots->drain, slots->slot_dev, slots->slot_ino)) {
        return;
    }
    for (;;) {
        char byte;
        struct iovec iov = {&byte, 1};
        union txs_control control;
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        ssize_t r = recvmsg(slots->drain, &msg,
                            MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return;  /* EAGAIN: empty */
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL;
                cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfds; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                close(fd);
            }
        }
    }
}

/*
 * Slot mode's checks and the send, before the clone.  Returns 1 to go on,
 * 0 when the outcome is settled (a record, or a flag telling the caller to
 * spawn the ordinary way), with nothing left behind.
 */
static int
txs_prepare_slots(struct txs_plan *plan, const struct txs_slots *slots,
                  unsigned allow, struct txs_shared *shared,
                  struct txs_outcome *out)
{
    /* The child must share our memory (the failure record comes back
       through it) and our fd table (the point of slot mode). */
    if (!(allow & TXS_ALLOW_VFORK) ||
            txs_features[TXS_FEAT_VFORK].state != TXS_ON ||
            !txs_can_share_files() || slots->n < 1 ||
            slots->n > TXS_MAX_RECV) {
        out->slots_unusable = 1;
        return 0;
    }
    if (getpid() != slots->owner) {
        /* A fork() that did not run the os.register_at_fork() hook: the
           socket is shared with that other process. */
        out->slots_foreign = 1;
        return 0;
    }
    int state = txs_file_state(slots->sender, slots->sender_dev,
                               slots->sender_ino);
    if (state != 0) {
        /* Closed by other code (EBADF), or the number reused (ESTALE):
           never send our fds to someone else's socket. */
        txs_parent_record(out, TXS_STAGE_RESERVED_FD, state, slots->sender);
        return 0;
    }
    /* The child's own check of the reserved fd is the race-free one; this
       one tells a merely closed fd (EBADF: the caller falls back with no
       error) from a replaced one before the clone, whose pidfd would
       otherwise take the free number and look like someone else's file. */
    state = txs_file_state(slots->slot_fd, slots->slot_dev, slots->slot_ino);
    if (state != 0) {
        txs_parent_record(out, TXS_STAGE_RESERVED_FD, state, slots->slot_fd);
        return 0;
    }
    if (txs_send_fds(slots) < 0) {
        if (errno == EBADF) {
            /* A source fd is not open (closed since the plan): the same
               EBADF the child's dup2 reports in the ordinary mode. */
            txs_parent_record(out, TXS_STAGE_FDS, EBADF, 0);
        }
        else {
            /* ENOBUFS, ENOMEM, ETOOMANYREFS (the user's in-flight fd
               limit), EAGAIN: nothing was queued. */
            out->slots_unusable = 1;
        }
        return 0;
    }
    memset(shared, 0, sizeof(*shared));
    plan->shared = shared;
    plan->slot_fd = slots->slot_fd;
    plan->slot_dev = slots->slot_dev;
    plan->slot_ino = slots->slot_ino;
    plan->nrecv = slots->n;
    plan->err_fd = -1;
    plan->err_target = -1;
    return 1;
}

/* "/proc/<pid>/<name>" into buf, which has room for it (64 bytes). */
static void
txs_proc_path(char *buf, pid_t pid, const char *name)
{
    char digits[16];
    int n = 0;
    unsigned long v = (unsigned long)pid;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    char *p = buf;
    memcpy(p, "/proc/", 6);
    p += 6;
    while (n > 0) {
        *p++ = digits[--n];
    }
    *p++ = '/';
    memcpy(p, name, strlen(name) + 1);
}

/*
 * The map handoff, parent side: write /proc/<pid>/setgroups, gid_map and
 * uid_map, in that order, each in one write() (the kernel takes a map only
 * whole, once, and from outside the namespace unless it is a self-map).
 * 0, or -errno with *detail naming the file (enum txs_idmap_file); errno
 * itself is never touched (the child shares it, see txs_raw6).
 */
static int
txs_write_maps(const struct txs_plan *plan, pid_t pid, int *detail)
{
    const struct txs_namespaces *ns = &plan->ns;
    const struct {
        const char *name;
        const struct txs_bytes *data;
        int detail;
    } files[3] = {
        {"setgroups", &ns->setgroups, TXS_IDMAP_SETGROUPS},
        {"gid_map", &ns->gid_map, TXS_IDMAP_GID_MAP},
        {"uid_map", &ns->uid_map, TXS_IDMAP_UID_MAP},
    };
    int first = 1;
    for (size_t i = 0; i < 3; i++) {
        if (files[i].data->data == NULL) {
            continue;
        }
        *detail = files[i].detail;
        if (first && plan->fault_stage == TXS_STAGE_IDMAP) {
            return -plan->fault_errno;  /* tests: as if this write failed */
        }
        first = 0;
        char path[64];
        txs_proc_path(path, pid, files[i].name);
        int r = txs_write_file_raw(path, files[i].data->data,
                                   files[i].data->len);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* Tell the waiting child (txs_wait_for_maps) to go on or to give up. */
static void
txs_release_child(struct txs_plan *plan, uint32_t state)
{
    __atomic_store_n(plan->map_sync, state, __ATOMIC_RELEASE);
    (void)txs_raw6(SYS_futex, (long)plan->map_sync,
                   plan->map_sync_shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1,
                   0, 0, 0);
}

/* SIGKILL our unreaped child, through its pidfd when there is one (the pid
   is safe too: the unreaped child pins it). */
static void
txs_kill(pid_t pid, int pidfd)
{
    if (pidfd < 0 || txs_pidfd_send_signal(pidfd, SIGKILL) < 0) {
        (void)kill(pid, SIGKILL);
    }
}

/* Reap our child, blocking (ECHILD: SIGCHLD is SIG_IGN, already reaped). */
static void
txs_reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/*
 * Where the handoff's futex word lives.  A child that shares our memory
 * waits on plan->map_word (a private futex); a fork-like child has only a
 * copy of it, so when the clone may end up without CLONE_VM (vfork mode
 * not allowed, or not known to work yet: txs_clone may fall back) the word
 * is in a MAP_SHARED page, which the copy shares (a shared futex).  0, or
 * -1 (out->err).
 */
static int
txs_prepare_handoff(struct txs_plan *plan, unsigned allow, size_t page,
                    uint32_t **shared_word, struct txs_outcome *out)
{
    *shared_word = NULL;
    if ((allow & TXS_ALLOW_VFORK) &&
            txs_features[TXS_FEAT_VFORK].state == TXS_ON) {
        plan->map_word = TXS_SYNC_WAIT;
        plan->map_sync = &plan->map_word;
        plan->map_sync_shared = 0;
        return 0;
    }
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        txs_fail_parent(out, "mmap");
        return -1;
    }
    *shared_word = p;
    **shared_word = TXS_SYNC_WAIT;
    plan->map_sync = *shared_word;
    plan->map_sync_shared = 1;
    return 0;
}

/*
 * A child that changes its uid or gid while it runs in our memory
 * (CLONE_VM) has the kernel reset the dumpable flag of that memory --
 * ours, for the rest of our life: commit_creds() sets mm->flags to
 * fs.suid_dumpable (0 by default), and with it our /proc/<pid> files
 * become root's and we can no longer be ptraced or dump core.  So the
 * flag is read before such a clone (txs_dumpable) and put back once the
 * child is out of our memory (txs_restore_dumpable).  -1: nothing to do.
 */
static int
txs_dumpable(const struct txs_plan *plan)
{
    if (plan->uid == (uid_t)-1 && plan->gid == (gid_t)-1 &&
            !plan->ns.early_ids) {
        return -1;
    }
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

static void
txs_restore_dumpable(int dumpable)
{
    /* PR_SET_DUMPABLE takes 0 and 1 only (not SUID_DUMP_ROOT, 2). */
    if ((dumpable == 0 || dumpable == 1) &&
            prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL) != dumpable) {
        (void)prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
    }
}

/*
 * Whether our child pid has already been killed by SIGKILL, without
 * reaping it.  Raw, without errno: a child cloned for the map handoff may
 * still run beside us on our errno (see child.c).
 */
static int
txs_killed_already(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    long r = txs_raw6(SYS_waitid, P_PID, (long)pid, (long)&info,
                      WEXITED | WNOHANG | WNOWAIT, 0, 0);
    return r == 0 && info.si_pid == pid && info.si_code == CLD_KILLED &&
           info.si_status == SIGKILL;
}

static void
txs_close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

/*
 * One attempt of txs_spawn: the child cloned into the cgroup of cgroup_fd
 * (clone3(CLONE_INTO_CGROUP)) when cgroup_fd >= 0; out->cgroup_refused
 * says whether that flag was refused.
 */
static int
txs_spawn_once(struct txs_plan *plan, const struct txs_slots *slots,
               unsigned allow, int cgroup_fd, struct txs_outcome *out)
{
    static long page = 0;
    int errpipe[2] = {-1, -1};
    int statuspipe[2] = {-1, -1};
    uint32_t *shared_word = NULL;
    struct txs_shared shared;
    /* Parent-written maps: the child waits while we write them. */
    int handoff = plan->ns.uid_map.data != NULL && !plan->ns.maps_by_child;

    memset(out, 0, sizeof(*out));
    out->pid = -1;
    out->pidfd = -1;
    out->status_fd = -1;

    if (page == 0) {
        page = sysconf(_SC_PAGESIZE);
    }
    if (plan->ns.clone_flags != 0 &&
            plan->fault_stage == TXS_STAGE_NAMESPACES) {
        /* Tests: as if the clone had failed. */
        txs_parent_record(out, TXS_STAGE_NAMESPACES, plan->fault_errno, 0);
        return 0;
    }
    if (slots != NULL) {
        if (!txs_prepare_slots(plan, slots, allow, &shared, out)) {
            return 0;
        }
    }
    else {
        plan->shared = NULL;
        if (pipe2(errpipe, O_CLOEXEC) < 0) {
            txs_fail_parent(out, "pipe2");
            return -1;
        }
        plan->err_fd = errpipe[1];
    }
    if (plan->init_path != NULL) {
        /* The status pipe: init writes pid 2's wait status on it.  Both
           ends non-blocking: the read end's user wants it so, and init's
           one 4-byte write into an empty pipe never blocks anyway. */
        if (pipe2(statuspipe, O_CLOEXEC | O_NONBLOCK) < 0) {
            txs_fail_parent(out, "pipe2");
            txs_close_pair(errpipe);
            return -1;
        }
        plan->status_fd = statuspipe[1];
    }
    if (handoff &&
            txs_prepare_handoff(plan, allow, (size_t)page, &shared_word,
                                out) < 0) {
        txs_close_pair(errpipe);
        txs_close_pair(statuspipe);
        return -1;
    }
    plan->parent_pid = getpid();
    int dumpable = txs_dumpable(plan);

    size_t map_size = TXS_STACK_SIZE + (size_t)page;
    char *stack = txs_take_stack(map_size, (size_t)page, out);
    pid_t pid = -1;
    int pidfd = -1, used_vm = 0, used_vfork = 0, used_clone3 = 0;
    int clone_errno = 0, cgroup_refused = 0;
    /* The child runs on our stack mapping and in our memory while we go
       on (the handoff without CLONE_VFORK): until it has exec'd or exited
       the stack stays ours, and every signal stays blocked (so that no
       call of ours fails with EINTR and writes the errno the child shares
       with us; see child.c). */
    int concurrent = 0;
    uint64_t all = ~(uint64_t)0, old;
    if (stack != NULL) {
        txs_sigmask(SIG_SETMASK, &all, &old);
        pid = txs_clone(plan, stack + page, TXS_STACK_SIZE, allow,
                        slots != NULL, handoff, cgroup_fd, &pidfd, &used_vm,
                        &used_vfork, &used_clone3, &cgroup_refused);
        clone_errno = errno;
        concurrent = pid > 0 && used_vm && !used_vfork;
        if (!concurrent) {
            txs_sigmask(SIG_SETMASK, &old, NULL);
        }
        if (pid < 0) {
            errno = clone_errno;
            txs_fail_parent(out, "clone");
        }
    }
    if (stack != NULL && !concurrent) {
        /* vfork mode: the child has exec'd or exited.  Fork-like mode: the
           child runs on its own copy of these pages. */
        txs_give_stack(stack, map_size);
        if (used_vm) {
            txs_restore_dumpable(dumpable);
        }
    }
    if (slots != NULL) {
        /* Slot mode is vfork mode only: the child has exec'd or exited. */
        if (!shared.received) {
            txs_drain(slots);
        }
    }
    else {
        close(errpipe[1]);
        errpipe[1] = -1;
    }
    if (statuspipe[1] >= 0) {
        close(statuspipe[1]);
        statuspipe[1] = -1;
    }
    if (pid < 0) {
        txs_close_pair(errpipe);
        txs_close_pair(statuspipe);
        if (shared_word != NULL) {
            munmap(shared_word, (size_t)page);
        }
        if (stack != NULL && plan->ns.clone_flags != 0) {
            /* The kernel refused the namespaces (EPERM, ENOSPC, EUSERS,
               EINVAL, ...): the child's first step failed. */
            memset(out, 0, sizeof(*out));
            out->pid = -1;
            out->pidfd = -1;
            out->status_fd = -1;
            out->cgroup_refused = cgroup_refused;
            txs_parent_record(out, TXS_STAGE_NAMESPACES, clone_errno, 0);
            return 0;
        }
        out->cgroup_refused = cgroup_refused;
        return -1;
    }

    if (handoff) {
        int detail = 0;
        int map_errno = -txs_write_maps(plan, pid, &detail);
        int failed = map_errno > 0;
        txs_release_child(plan, failed ? TXS_SYNC_ABORT : TXS_SYNC_GO);
        if (failed) {
            if (plan->started != NULL && !*plan->started &&
                    txs_killed_already(pid)) {
                /* Not the maps' fault: the kernel killed the child it
                   cloned into the cgroup before it ran (txs_spawn). */
                out->cgroup_killed = 1;
            }
            /* The child _exits on TXS_SYNC_ABORT; SIGKILL makes sure. */
            txs_kill(pid, pidfd);
            txs_reap(pid);
            if (concurrent) {
                txs_sigmask(SIG_SETMASK, &old, NULL);
                txs_give_stack(stack, map_size);  /* reaped: not in use */
                txs_restore_dumpable(dumpable);
            }
            if (pidfd >= 0) {
                close(pidfd);
            }
            txs_close_pair(errpipe);
            txs_close_pair(statuspipe);
            if (shared_word != NULL) {
                munmap(shared_word, (size_t)page);
            }
            txs_parent_record(out, TXS_STAGE_IDMAP, map_errno, detail);
            out->pid = pid;
            out->used_vm = used_vm;
            out->used_vfork = used_vfork;
            out->used_clone3 = used_clone3;
            return 0;
        }
    }

    size_t got = 0;
    int eof = 0;
    if (slots != NULL) {
        if (shared.failed) {
            memcpy(out->record, &shared.record, sizeof(shared.record));
            got = sizeof(shared.record);
        }
    }
    else {
        /* Until end of file (the exec closed the child's copy, or the
           child exited; with init, its pid 2 exec'd) or one record.
           Without CLONE_VFORK this is also how we learn that the child no
           longer runs on the stack we lent it. */
        while (got < sizeof(struct txs_record)) {
            ssize_t n = read(errpipe[0], out->record + got,
                             sizeof(struct txs_record) - got);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n == 0) {
                eof = 1;
            }
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        close(errpipe[0]);
    }
    if (shared_word != NULL) {
        munmap(shared_word, (size_t)page);
    }
    out->pid = pid;
    out->used_vm = used_vm;
    out->used_vfork = used_vfork;
    out->used_clone3 = used_clone3;
    if (got == 0 && concurrent && !eof) {
        /* A read error on the error pipe (never seen): we cannot know
           whether the child still runs on our stack, so it must go. */
        txs_kill(pid, pidfd);
        txs_reap(pid);
        txs_sigmask(SIG_SETMASK, &old, NULL);
        txs_give_stack(stack, map_size);
        txs_restore_dumpable(dumpable);
        if (pidfd >= 0) {
            close(pidfd);
        }
        txs_close_pair(statuspipe);
        out->pid = -1;
        out->err = EIO;
        out->what = "read";
        return -1;
    }
    if (got > 0) {
        /* The child failed and is exiting, or (init) its pid 2 failed and
           init is alive: kill init, then reap, before returning, so the
           caller never sees a zombie.  (ECHILD: SIGCHLD is SIG_IGN.) */
        if (plan->init_path != NULL) {
            txs_kill(pid, pidfd);
        }
        txs_reap(pid);
        if (pidfd >= 0) {
            close(pidfd);
        }
        pidfd = -1;
        txs_close_pair(statuspipe);
    }
    if (concurrent) {
        /* Exec'd (end of file) or reaped: the stack is free again. */
        txs_sigmask(SIG_SETMASK, &old, NULL);
        txs_give_stack(stack, map_size);
        txs_restore_dumpable(dumpable);
    }
    if (got == 0 && pidfd < 0 && (allow & TXS_ALLOW_PIDFD_OPEN) &&
            txs_usable(TXS_FEAT_PIDFD_OPEN)) {
        /* Race-free: the child cannot have been reaped yet. */
        pidfd = txs_pidfd_open(pid);
        if (pidfd >= 0) {
            txs_settle(TXS_FEAT_PIDFD_OPEN, TXS_ON, NULL);
        }
        else if (errno == ENOSYS) {
            txs_settle(TXS_FEAT_PIDFD_OPEN, TXS_OFF,
                       "pidfd_open() failed with ENOSYS: needs Linux 5.3");
        }
    }
    out->record_len = got;
    out->pidfd = pidfd;
    out->status_fd = statuspipe[0];
    return 0;
}

void
txs_discard(pid_t pid, int pidfd, int close_pidfd)
{
    int status;
    if (pidfd >= 0) {
        /* The pidfd names this very process whatever happened to it: no
           check is needed before the signal (ESRCH if it has already been
           reaped, by the kernel when SIGCHLD is ignored). */
        (void)txs_pidfd_send_signal(pidfd, SIGKILL);
        siginfo_t info;
        int r;
        while ((r = waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED)) < 0 &&
                errno == EINTR) {
        }
        if (r < 0 && errno == EINVAL) {
            /* No P_PIDFD (Linux < 5.4): by pid, which the unreaped child
               still pins (ECHILD if the kernel reaped it). */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        if (close_pidfd) {
            close(pidfd);
        }
        return;
    }
    /* A bare pid is the child's only while the child is unreaped: with
       SIGCHLD ignored the kernel may have reaped it and freed the number.
       Look first (WNOWAIT), as txspawn._kernel.childhandle.discardChild does. */
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
        return;  /* ECHILD: gone, or not ours */
    }
    (void)kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/* ---- the cgroup (issue 14) ---- */

/*
 * Get rid of the child of an attempt that placed it by the clone and that
 * the kernel killed before it ran: reap it (it is dead or dying), close
 * its pidfd and init's status pipe.
 */
static void
txs_drop_attempt(struct txs_outcome *out)
{
    if (out->pid > 0) {
        txs_discard(out->pid, out->pidfd, 1);
    }
    if (out->status_fd >= 0) {
        close(out->status_fd);
    }
}

/*
 * The spawn, with the child placed in cgroup (if not NULL) before it runs
 * any of the plan:
 *
 *   1. by the clone, when cgroup->use_clone and this spawn takes the clone3
 *      path: clone3(CLONE_INTO_CGROUP) with .cgroup = dir_fd, the child
 *      still in vfork mode (or the map handoff).  Two outcomes send the
 *      spawn to step 2 instead, and are reported: the kernel refusing the
 *      flag for this target (txs_cgroup_refusal), and a child the kernel
 *      SIGKILLed before its first instruction.  The kernel does that when
 *      the target's cgroup.kill count differs from our cgroup's (it
 *      compares kill_seq at fork: a fresh leaf has 0, every cgroup.kill
 *      write adds one in the cgroup and all its descendants), so a spawner
 *      whose cgroup was ever killed cannot clone into a fresh leaf.  The
 *      child sets plan->started (our memory: CLONE_VM) first thing; once
 *      it has exec'd or exited, a word still 0 means it never ran.
 *   2. by the child itself: it writes "0" to the leaf's cgroup.procs as
 *      its first step (stage CGROUP), before the signals, the fds and the
 *      namespace steps; procs_fd, or cgroup.procs opened under dir_fd here
 *      and closed after (opening it fails as stage CGROUP too).
 *
 * Placing it by the clone costs no syscall of its own; step 2 costs the
 * open, the write (a cgroup migration) and the close.
 */
int
txs_spawn(struct txs_plan *plan, const struct txs_slots *slots,
          unsigned allow, const struct txs_cgroup *cgroup,
          struct txs_outcome *out)
{
    plan->has_cgroup = cgroup != NULL;
    plan->cgroup_procs_fd = -1;
    plan->cgroup_unshare = 0;
    plan->started = NULL;
    if (cgroup == NULL) {
        return txs_spawn_once(plan, slots, allow, -1, out);
    }
    int refused = 0, killed = 0, no_clone3 = 0;
    if (cgroup->use_clone && txs_clone3_path(allow)) {
        volatile int started = 0;
        plan->started = &started;
        int rc = txs_spawn_once(plan, slots, allow, cgroup->dir_fd, out);
        plan->started = NULL;
        refused = out->cgroup_refused;
        killed = out->cgroup_killed;
        if (!refused && !killed) {
            if (rc == 0 && out->pid > 0 && out->record_len == 0 &&
                    !started) {
                /* Exec'd or exited, yet it never ran.  (A record comes
                   from a child that ran, or from a failed map write: its
                   child is reaped, and txs_spawn_once told above.) */
                killed = 1;
                txs_drop_attempt(out);
            }
            else {
                if (rc == 0 && out->pid > 0) {
                    out->cgroup_placement = TXS_PLACED_CLONE;
                }
                return rc;
            }
        }
    }
    else if (cgroup->use_clone) {
        no_clone3 = 1;
    }
    int procs_fd = cgroup->procs_fd, opened = -1;
    if (procs_fd < 0) {
        procs_fd = opened = openat(cgroup->dir_fd, "cgroup.procs",
                                   O_WRONLY | O_CLOEXEC);
    }
    int rc;
    if (procs_fd < 0) {
        int err = errno;
        memset(out, 0, sizeof(*out));
        out->pid = -1;
        out->pidfd = -1;
        out->status_fd = -1;
        txs_parent_record(out, TXS_STAGE_CGROUP, err, 0);
        rc = 0;
    }
    else {
        /* A cgroup namespace is made by the child once in the leaf (see
           txs_cgroup in child.c), as the clone would have made it there;
           the Python engine's child does the same. */
        uint64_t clone_flags = plan->ns.clone_flags;
        plan->cgroup_unshare = (clone_flags & CLONE_NEWCGROUP) != 0;
        plan->ns.clone_flags &= ~(uint64_t)CLONE_NEWCGROUP;
        plan->cgroup_procs_fd = procs_fd;
        rc = txs_spawn_once(plan, slots, allow, -1, out);
        plan->cgroup_procs_fd = -1;
        plan->cgroup_unshare = 0;
        plan->ns.clone_flags = clone_flags;
        if (rc == 0 && out->pid > 0 && out->record_len == 0) {
            out->cgroup_placement = TXS_PLACED_PROCS;
        }
    }
    if (opened >= 0) {
        close(opened);
    }
    out->cgroup_refused = refused;
    out->cgroup_killed = killed;
    out->cgroup_no_clone3 = no_clone3;
    return rc;
}

/* The probe's child: exits 0 at once, if it runs at all. */
static int
txs_cgroup_probe_child(void *arg)
{
    (void)arg;
    return 0;
}

int
txs_probe_clone_into_cgroup(int dir_fd)
{
    if (!txs_clone3_available) {
        return -ENOSYS;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = 4 * page;
    char *stack = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        return -errno;
    }
    if (mprotect(stack, page, PROT_NONE) < 0) {
        int err = errno;
        munmap(stack, size + page);
        return -err;
    }
    struct txs_clone_args ca = {0};
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)(uintptr_t)(stack + page);
    ca.stack_size = size;
    ca.cgroup = (uint64_t)dir_fd;
    uint64_t all = ~(uint64_t)0, old;
    txs_sigmask(SIG_SETMASK, &all, &old);
    long r = txs_clone3_vm(&ca, TXS_CLONE_ARGS_VER2, txs_cgroup_probe_child,
                           NULL);
    txs_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, size + page);
    if (r < 0) {
        return (int)r;
    }
    int status = 0;
    while (waitpid((pid_t)r, &status, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return status;
}
