/*
 * plan.h: the plain-C spawn plan shared by spawn.c (parent) and child.c
 * (child), plus the child-to-parent wire record, the setup stages and the
 * fd-op codes.
 *
 * Everything here mirrors a Python definition, and tests/test_wire.py and
 * tests/test_cspawn.py check that the values agree (module.c exports them):
 *
 *   - struct txs_record          <-> txspawn/_plan/failurerecord.py RECORD ("=4sIii")
 *   - enum txs_stage             <-> txspawn/errors.py ChildSetupStage
 *   - enum txs_fdop_code         <-> txspawn/_plan/fdops.py FdOpCode
 *
 * Never renumber a value: only add new ones.
 *
 * This header must not include <Python.h>: the child never touches Python.
 */
#ifndef TXSPAWN_PLAN_H
#define TXSPAWN_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the wire record (16 bytes, native byte order, < PIPE_BUF) ---- */

#define TXS_MAGIC0 'T'
#define TXS_MAGIC1 'X'
#define TXS_MAGIC2 'S'
#define TXS_MAGIC3 'P'

struct txs_record {
    char magic[4];   /* "TXSP" */
    uint32_t stage;  /* enum txs_stage */
    int32_t err;     /* errno */
    int32_t detail;  /* stage-specific, see txs_child_fail() callers */
};

_Static_assert(sizeof(struct txs_record) == 16, "wire record is 16 bytes");

/* ---- setup stages (txspawn.errors.ChildSetupStage) ---- */

enum txs_stage {
    TXS_STAGE_SPAWN = 1,
    TXS_STAGE_FDS = 2,
    TXS_STAGE_CLOSE_FDS = 3,
    TXS_STAGE_SIGNALS = 4,
    TXS_STAGE_SETSID = 5,
    TXS_STAGE_SETPGID = 6,
    TXS_STAGE_CTTY = 7,
    TXS_STAGE_CHDIR = 8,
    TXS_STAGE_UMASK = 9,
    TXS_STAGE_RLIMIT = 10,
    TXS_STAGE_PDEATHSIG = 11,
    TXS_STAGE_SETGROUPS = 12,
    TXS_STAGE_SETGID = 13,
    TXS_STAGE_SETUID = 14,
    TXS_STAGE_EXEC = 15,
    TXS_STAGE_SYNC = 16,
    TXS_STAGE_NAMESPACES = 17,
    TXS_STAGE_IDMAP = 18,
    TXS_STAGE_CGROUP = 19,
    TXS_STAGE_RESERVED_FD = 20,
    TXS_STAGE_HOSTNAME = 21,
    TXS_STAGE_LOOPBACK = 22,
    TXS_STAGE_MOUNT_PROPAGATION = 23,
    TXS_STAGE_MOUNT_PROC = 24,
    TXS_STAGE_TIME_OFFSETS = 25,
    TXS_STAGE_INIT = 26,
};

/* The detail of an IDMAP failure: which file could not be written. */
enum txs_idmap_file {
    TXS_IDMAP_SETGROUPS = 1,
    TXS_IDMAP_GID_MAP = 2,
    TXS_IDMAP_UID_MAP = 3,
};

/* The detail of a TIME_OFFSETS failure. */
enum txs_time_step {
    TXS_TIME_UNSHARE = 1,        /* unshare(CLONE_NEWTIME) */
    TXS_TIME_WRITE = 2,          /* writing /proc/self/timens_offsets */
};

/* ---- fd operations (txspawn._plan.fdops.FdOpCode) ---- */

enum txs_fdop_code {
    TXS_FDOP_DUP2 = 1,
    TXS_FDOP_DUP2_CLOEXEC = 2,
    TXS_FDOP_CLEAR_CLOEXEC = 3,
    TXS_FDOP_CLOSE = 4,
    TXS_FDOP_CLOSE_RANGE = 5,
};

#define TXS_CLOSE_RANGE_MAX 0xFFFFFFFFu

struct txs_fdop {
    int code;         /* enum txs_fdop_code */
    int fd;
    unsigned target;  /* an fd, or TXS_CLOSE_RANGE_MAX for CLOSE_RANGE */
};

/* A byte string of the plan (not NUL-terminated); data NULL: none. */
struct txs_bytes {
    const char *data;
    size_t len;
};

/*
 * The map handoff's futex word (parent-written maps): the child waits while
 * it is TXS_SYNC_WAIT; the parent stores GO once the maps are written, or
 * ABORT (the child then _exits: the parent reports the failure).
 */
enum { TXS_SYNC_WAIT = 0, TXS_SYNC_GO = 1, TXS_SYNC_ABORT = 2 };

/*
 * The namespaces (txspawn._plan.namespaceplan.NamespacePlan): what the
 * child does right after the clone, before its ordinary steps.
 */
struct txs_namespaces {
    uint64_t clone_flags;        /* CLONE_NEW*, never CLONE_NEWTIME; 0: no
                                    namespace at all (the rest is unused) */
    struct txs_bytes uid_map;    /* ready for one write(); none: no user ns */
    struct txs_bytes gid_map;
    struct txs_bytes setgroups;  /* "deny" / "allow"; none: not written */
    int maps_by_child;           /* 1: the child writes /proc/self/...;
                                    0 (with maps): the parent writes
                                    /proc/<pid>/... while the child waits on
                                    *map_sync (struct txs_plan) */
    int early_ids;               /* set early_gid, early_uid right after
                                    the maps (setresgid, setresuid) */
    uid_t early_uid;
    gid_t early_gid;
    struct txs_bytes hostname;   /* none: unchanged */
    int loopback;                /* bring lo up */
    unsigned long propagation;   /* MS_SLAVE/MS_PRIVATE/MS_SHARED (the
                                    child adds MS_REC); 0: unchanged */
    int mount_proc;              /* mount a fresh /proc */
    struct txs_bytes time_offsets; /* none: no time namespace; else written
                                    to /proc/self/timens_offsets after
                                    unshare(CLONE_NEWTIME) */
};

struct txs_rlimit {
    int resource;
    uint64_t soft;    /* RLIM_INFINITY is passed through unchanged */
    uint64_t hard;
};

/* ---- mechanism bits: what the caller allows this spawn to use ---- */

#define TXS_ALLOW_VFORK 0x1        /* CLONE_VM|CLONE_VFORK */
#define TXS_ALLOW_CLONE_PIDFD 0x2  /* CLONE_PIDFD */
#define TXS_ALLOW_PIDFD_OPEN 0x4   /* pidfd_open() after the clone */
#define TXS_ALLOW_CLONE3 0x8       /* clone3() (trampoline) for vfork mode */
#define TXS_ALLOW_ALL 0xf

/* The most fds one slot-mode spawn passes (SCM_MAX_FD is 253). */
#define TXS_MAX_RECV 64

/*
 * Slot mode's child-to-parent channel, in the parent's memory (CLONE_VM):
 * the child writes it, the parent reads it once clone() returned (the child
 * has exec'd or exited).  It replaces the error pipe there.
 */
struct txs_shared {
    struct txs_record record;
    volatile int failed;         /* record holds a failure */
    volatile int received;       /* the child took the message */
};

/*
 * The plan.  Every pointer refers to memory the parent allocated and keeps
 * alive until spawn returns; the child only reads it.
 */
struct txs_plan {
    /* exec */
    char *const *candidates;     /* NULL-terminated */
    char *const *argv;           /* NULL-terminated */
    char *const *envp;           /* NULL-terminated */

    /* fds */
    const struct txs_fdop *ops;
    size_t nops;
    int err_fd;                  /* the error pipe's number at clone time */
    int err_target;              /* where the child moves it before the fd
                                    ops (== err_fd: leave it; the program
                                    keeps it, see planFdOps(keep=)) */
    unsigned files_bound;        /* >0: slot mode: started on the parent's
                                    fd table (CLONE_FILES); unshare
                                    [0, bound) first, then take the fds
                                    from the reserved socket (below) */

    /* slot mode only (vfork mode: the child shares our memory) */
    int slot_fd;                 /* the reserved socket's receiving end */
    dev_t slot_dev;              /* ... its identity, checked by the child */
    ino_t slot_ino;              /*     in its private fd table */
    size_t nrecv;                /* fds in the message, received at
                                    0, 1, ... skipping slot_fd */
    struct txs_shared *shared;   /* written by the child, read by the
                                    parent once clone() has returned */

    /* session, terminal */
    int new_session;
    int ctty;                    /* TIOCSCTTY on fd 0 after the fd ops */
    pid_t process_group;         /* -1: unchanged, 0: lead, >0: join */

    /* environment of the process */
    const char *cwd;             /* NULL: unchanged */
    int umask;                   /* -1: unchanged */
    const struct txs_rlimit *rlimits;
    size_t nrlimits;

    /* credentials; (uid_t)-1 / (gid_t)-1 mean unchanged */
    int set_groups;              /* call setgroups(ngroups, groups) */
    int groups_implicit;         /* the drop implied by a uid: EPERM is ok */
    const gid_t *groups;
    size_t ngroups;
    gid_t gid;
    uid_t uid;

    /* signals */
    int death_signal;            /* 0: none */
    pid_t parent_pid;            /* for the PR_SET_PDEATHSIG race check */
    uint64_t signal_mask;        /* bit (n - 1) blocks signal n */

    /* namespaces (issue 13); ns.clone_flags == 0 and no time_offsets:
       none */
    struct txs_namespaces ns;
    /* Parent-written maps only: the futex word the child waits on
       (TXS_SYNC_*).  spawn.c points it at map_word below when the child
       shares our memory (a private futex), or at a MAP_SHARED page in the
       fork-like mode (map_sync_shared: a shared futex). */
    uint32_t *map_sync;          /* accessed with __atomic builtins only */
    int map_sync_shared;
    uint32_t map_word;

    /* txspawn's init as pid 1 (init_path NULL: exec the command).  The
       child execs init_path with init_argv instead of the candidates, with
       the error pipe (at err_target) and the status pipe's write end (at
       status_target) left open across that exec. */
    const char *init_path;
    char *const *init_argv;      /* NULL-terminated */
    int status_fd;               /* the status pipe's write end at clone
                                    time (spawn.c creates it) */
    int status_target;           /* where the child moves it (above every
                                    fd the program mentions, like
                                    err_target) */

    /* The cgroup (issue 14; spawn.c's txs_spawn sets these).  has_cgroup:
       the child is placed in a leaf, by the clone (CLONE_INTO_CGROUP) or
       by itself: with cgroup_procs_fd >= 0 its first step writes "0" to
       that fd, the leaf's cgroup.procs [CGROUP].  started: NULL, or, when
       the clone places the child and the child shares our memory, a word
       of the parent's that the child sets to 1 before anything else: still
       0 once the child has exec'd or exited means the kernel killed it
       before its first instruction (see spawn.c). */
    int has_cgroup;
    int cgroup_procs_fd;
    volatile int *started;
    /* With cgroup_procs_fd: the plan's CLONE_NEWCGROUP, taken out of the
       clone flags, is unshared right after the write instead, so that the
       leaf is the namespace's root as when the clone places the child. */
    int cgroup_unshare;

    /* Tests only (txspawn._plan.faultinjection): the step of stage
       fault_stage (0: none; a namespace step, or CGROUP) fails with
       fault_errno instead of running. */
    int fault_stage;
    int fault_errno;
};

/* child.c: the function the clone runs.  Never returns. */
int txs_child_main(void *plan);

#endif /* TXSPAWN_PLAN_H */
