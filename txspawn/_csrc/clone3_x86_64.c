/*
 * clone3_x86_64.c: the raw clone3(2) trampoline (see clone3.h).  The only
 * place txspawn issues CLONE_VM itself; everything else in the child is C.
 *
 * x86_64 only: the syscall instruction takes the number in rax, arguments
 * in rdi and rsi, and clobbers rcx and r11.  In the child every register is
 * the parent's except rax (0) and rsp (args->stack + args->stack_size), so
 * fn and arg travel in callee-saved r12/r13.  The child never returns into
 * a C frame: those frames are the parent's, on the parent's stack, and
 * with CLONE_VM|CLONE_VFORK the parent is still suspended in them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>

#include "clone3.h"

#if defined(__x86_64__)

const int txs_clone3_available = 1;

long
txs_clone3_vm(struct txs_clone_args *args, size_t size, int (*fn)(void *),
              void *arg)
{
    register long rax __asm__("rax") = __NR_clone3;
    register void *r12 __asm__("r12") = (void *)fn;
    register void *r13 __asm__("r13") = arg;
    __asm__ __volatile__(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        /* Child, on the new stack: no frame to unwind into, an ABI-aligned
           stack for the call, then SYS_exit with fn's result. */
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
        : "D"(args), "S"(size), "r"(r12), "r"(r13),
          [sys_exit] "i"(SYS_exit)
        : "rcx", "r11", "memory", "cc");
    return rax;
}

#else

const int txs_clone3_available = 0;

long
txs_clone3_vm(struct txs_clone_args *args, size_t size, int (*fn)(void *),
              void *arg)
{
    (void)args;
    (void)size;
    (void)fn;
    (void)arg;
    return -ENOSYS;
}

#endif
