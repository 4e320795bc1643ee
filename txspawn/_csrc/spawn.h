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
 * Slot mode: before the clone, dup3(src[i], slot[i], O_CLOEXEC) for each i
 * and the error pipe's write end into plan->err_target; afterwards put
 * `placeholder` back into every one of those numbers.
 */
struct txs_slots {
    const int *src;
    const int *slot;
    size_t n;
    int placeholder;
    /* The placeholder pipe's identity, recorded when the slots were
       reserved: checked before any slot is touched. */
    dev_t placeholder_dev;
    ino_t placeholder_ino;
};

struct txs_outcome {
    pid_t pid;
    int pidfd;              /* -1: none */
    int used_vm;            /* the child ran in vfork mode */
    int used_clone3;        /* ... created by clone3 (the trampoline) */
    int slots_lost;         /* a slot could not be restored and was closed */
    int slots_foreign;      /* a slot no longer held the placeholder: nothing
                               was done (no pipe, no clone, no dup3) */
    size_t record_len;      /* 0: the exec succeeded */
    unsigned char record[sizeof(struct txs_record)];
    int err;                /* parent-side failure: errno ... */
    const char *what;       /* ... and the call that failed */
};

/*
 * Spawn one child.  Returns 0 when a child was created (record_len > 0:
 * it failed and has been reaped) or a record was synthesised, -1 on a
 * parent-side failure (out->err, out->what).  Call without the GIL.
 */
int txs_spawn(struct txs_plan *plan, const struct txs_slots *slots,
              unsigned allow, struct txs_outcome *out);

#endif /* TXSPAWN_SPAWN_H */
