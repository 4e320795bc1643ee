/*
 * clone3.h: the raw clone3(2) trampoline (clone3_x86_64.c).  No Python here.
 *
 * A CLONE_VM child must never run on the caller's stack, and a C function
 * calling syscall(SYS_clone3) with CLONE_VM would return twice into the
 * same C frames on two stacks (STYLE.md B4).  So the raw call lives in one
 * tiny per-architecture trampoline that switches the child straight to
 * fn(arg) on its new stack and exits with fn's result, never returning.
 */
#ifndef TXSPAWN_CLONE3_H
#define TXSPAWN_CLONE3_H

#include <stddef.h>
#include <stdint.h>

/* clone3(2): Linux 5.3; CLONE_CLEAR_SIGHAND: Linux 5.5. */
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
/* CLONE_INTO_CGROUP: Linux 5.7 (struct clone_args VER2). */
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* The kernel's struct clone_args up to CLONE_ARGS_SIZE_VER2 (88 bytes);
   our own name, so that <linux/sched.h> and <sched.h> never clash.  A
   spawn passes TXS_CLONE_ARGS_VER0 (64 bytes) unless it uses the cgroup
   field: a kernel older than 5.7 refuses a larger size whose extra bytes
   are not zero (E2BIG), and needs nothing past VER0 otherwise. */
struct txs_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;        /* VER1 (Linux 5.5) */
    uint64_t set_tid_size;
    uint64_t cgroup;         /* VER2 (Linux 5.7): with CLONE_INTO_CGROUP */
};

#define TXS_CLONE_ARGS_VER0 64
#define TXS_CLONE_ARGS_VER2 88
_Static_assert(sizeof(struct txs_clone_args) == TXS_CLONE_ARGS_VER2,
               "struct clone_args VER2 is 88 bytes");

/* 1 when this architecture has the trampoline. */
extern const int txs_clone3_available;

/*
 * clone3(args, size); in the child (on args->stack) run fn(arg) and exit
 * the child with its result via SYS_exit; in the parent return the pid, or
 * -errno (the raw kernel convention; errno is not touched).
 * Returns -ENOSYS where txs_clone3_available is 0.
 */
long txs_clone3_vm(struct txs_clone_args *args, size_t size,
                   int (*fn)(void *), void *arg);

#endif /* TXSPAWN_CLONE3_H */
