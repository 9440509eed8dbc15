/* Fibers for the emulated device: each GPU thread of a block runs on a stack of its own, and
 * __syncthreads() switches back to the scheduler, so a barrier is a real barrier. On x86-64 a switch
 * is a dozen instructions (the callee-saved registers and the stack pointer); elsewhere it is ucontext's swapcontext (slower: a system call per switch). */
#ifndef HR_EMU_FIBER_H
#define HR_EMU_FIBER_H

#include <stddef.h>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

typedef struct hr_emu_context {
#if defined(__x86_64__)
    void *sp; /* the saved stack pointer while switched out */
#else
    ucontext_t uc;
#endif
} hr_emu_context;

/* Saves the running context into *save and resumes *resume. */
void hr_emu_context_switch(hr_emu_context *save, hr_emu_context *resume);

/* Makes *c start entry() on the stack [stack, stack + size) at its first resumption; entry must
 * never return (it switches away for good instead). */
void hr_emu_context_make(hr_emu_context *c, unsigned char *stack, size_t size, void (*entry)(void));

/* Stacks of `size` bytes, each with an inaccessible guard page below it (where an overflow goes):
 * reserved once, reused by every block. */
typedef struct hr_emu_stacks {
    unsigned char *base; /* the whole mapping */
    size_t stride, size, total;
    int count;
} hr_emu_stacks;

int hr_emu_stacks_init(hr_emu_stacks *s, int count, size_t size);
void hr_emu_stacks_free(hr_emu_stacks *s);
unsigned char *hr_emu_stack(const hr_emu_stacks *s, int i);
/* The stack whose guard page holds addr, or -1. */
int hr_emu_stack_guard_hit(const hr_emu_stacks *s, const void *addr);

#endif
