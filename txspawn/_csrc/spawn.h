/*
 * spawn.h: the parent-side entry point (spawn.c) as module.c sees it.
 * No Python here either.
 */
#ifndef TXSPAWN_SPAWN_H
#define TXSPAWN_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "plan.h"

/* ---- cached feature probes, each with the reason it is off ---- */

enum { TXS_UNKNOWN = 0, TXS_ON = 1, TXS_OFF = 2 };

enum {
    TXS_FEAT_VFORK,          /* CLONE_VM|CLONE_VFORK accepted */
    TXS_FEAT_CLONE_PIDFD,    /* CLONE_PIDFD: Linux 5.2 */
    TXS_FEAT_PIDFD_OPEN,     /* pidfd_open(): Linux 5.3 */
    TXS_FEAT_CLOSE_RANGE,    /* close_range() + CLOSE_RANGE_UNSHARE: 5.9 */
    TXS_FEAT_CLONE3,         /* clone3() via the trampoline: Linux 5.3 */
    TXS_FEAT_CLEAR_SIGHAND,  /* CLONE_CLEAR_SIGHAND: Linux 5.5 */
    TXS_NFEATURES
};

struct txs_feature {
    const char *name;
    /* Written by whichever thread settles the probe first; an int and a
       pointer to a string literal, each written once. */
    volatile int state;
    const char *volatile reason;
};

extern struct txs_feature txs_features[TXS_NFEATURES];

void txs_probe_init(void);
int txs_can_share_files(void);
/* Tests only: clone3(CLONE_VM|CLONE_VFORK) through the trampoline of a child
   returning 42; 0 (status, whether it ran, whether on its own stack) or
   -errno. */
int txs_clone3_selftest(int *status, int *ran, int *on_stack);

/*
 * Slot mode (see txspawn/_engine/fdslots.py and docs/design/engines.rst): before the clone,
 * send src[0..n) through the reserved socket (sender -> slot_fd); the child,
 * started on our fd table (CLONE_FILES), unshares [0, slot_fd] and takes
 * them from slot_fd.  No fixed fd number of ours is ever written.
 */
struct txs_slots {
    const int *src;
    size_t n;
    int slot_fd;            /* the receiving end: the reserved low fd */
    dev_t slot_dev;         /* ... its identity (checked by the child) */
    ino_t slot_ino;
    int sender;             /* the sending end */
    dev_t sender_dev;       /* ... its identity (checked before sending) */
    ino_t sender_ino;
    int drain;              /* a duplicate of the receiving end, to empty
                               the queue when a child did not take its
                               message */
    pid_t owner;            /* the process the socket was made in */
};

struct txs_outcome {
    pid_t pid;
    int pidfd;              /* -1: none */
    int used_vm;            /* the child shared our memory (CLONE_VM) */
    int used_vfork;         /* ... and we were suspended until it exec'd
                               or exited (CLONE_VFORK): vfork mode */
    int used_clone3;        /* ... created by clone3 (the trampoline) */
    int slots_unusable;     /* slot mode cannot be used for this spawn (no
                               vfork mode, close_range or room in the
                               socket): nothing was done */
    int slots_foreign;      /* the reserved socket belongs to the process
                               we were forked from: nothing was done */
    size_t record_len;      /* 0: the exec succeeded */
    unsigned char record[sizeof(struct txs_record)];
    int status_fd;          /* with init: the status pipe's read end
                               (O_CLOEXEC|O_NONBLOCK); -1: none */
    int err;                /* parent-side failure: errno ... */
    const char *what;       /* ... and the call that failed */
    /* With a cgroup (txs_spawn's cgroup argument): */
    int cgroup_placement;   /* TXS_PLACED_*: how the child got there */
    int cgroup_refused;     /* errno of a clone3(CLONE_INTO_CGROUP) that
                               failed (then placed by cgroup.procs); 0 */
    int cgroup_killed;      /* the child cloned into the leaf was killed
                               by the kernel before its first instruction
                               (then placed by cgroup.procs) */
    int cgroup_no_clone3;   /* placing by the clone was asked for, but
                               this spawn does not use clone3 */
};

/* How a child was placed in its cgroup (struct txs_outcome). */
enum {
    TXS_PLACED_NONE = 0,    /* no cgroup, or the spawn failed first */
    TXS_PLACED_CLONE = 1,   /* clone3(CLONE_INTO_CGROUP) */
    TXS_PLACED_PROCS = 2,   /* the child wrote its pid to cgroup.procs */
};

/*
 * The cgroup a child is placed in (txs_spawn): the leaf's directory
 * (O_RDONLY|O_DIRECTORY), an fd on its cgroup.procs or -1 (then opened
 * under dir_fd when needed, and closed again), and whether to try
 * clone3(CLONE_INTO_CGROUP) first.
 */
struct txs_cgroup {
    int dir_fd;
    int procs_fd;
    int use_clone;
};

/*
 * Spawn one child, in the cgroup cgroup (NULL: none).  Returns 0 when a
 * child was created (record_len > 0: it failed and has been reaped) or a
 * record was synthesised, -1 on a parent-side failure (out->err,
 * out->what), with no child left.  Call without the GIL.
 */
int txs_spawn(struct txs_plan *plan, const struct txs_slots *slots,
              unsigned allow, const struct txs_cgroup *cgroup,
              struct txs_outcome *out);

/*
 * clone3(CLONE_VM|CLONE_VFORK|CLONE_INTO_CGROUP) into the cgroup of
 * dir_fd, of a child that exits 0 at once: its raw wait status, or -errno
 * (-ENOSYS without the clone3 trampoline).  A child the kernel killed
 * before it ran reports SIGKILL.  For `python -m txspawn info`.
 */
int txs_probe_clone_into_cgroup(int dir_fd);

/*
 * Kill (SIGKILL) and reap a child that nobody else knows of, and close its
 * pidfd if close_pidfd: the clean-up of a spawn that failed after the
 * clone.  pidfd may be -1.  Blocks until the child is reaped (it cannot
 * survive SIGKILL); call without the GIL.
 */
void txs_discard(pid_t pid, int pidfd, int close_pidfd);

#endif /* TXSPAWN_SPAWN_H */
