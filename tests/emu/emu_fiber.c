#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "emu_fiber.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
/* hr_emu_context_switch(save = rdi, resume = rsi): push the callee-saved registers, store rsp into
 * save->sp, load resume->sp, pop the same. The floating-point control state (MXCSR, the x87 control
 * word) is not switched: every fiber runs on the one host thread and none changes it. The stack
 * layout that hr_emu_context_make builds is what this pops. */
__asm__(".text\n"
        ".globl hr_emu_context_switch\n"
        ".hidden hr_emu_context_switch\n"
        ".type hr_emu_context_switch,@function\n"
        "hr_emu_context_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size hr_emu_context_switch, .-hr_emu_context_switch\n");

void hr_emu_context_make(hr_emu_context *c, unsigned char *stack, size_t size, void (*entry)(void)) {
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;                          /* entry's return address: it never returns */
    *--sp = (uint64_t)(uintptr_t)entry; /* what the switch's ret jumps to, leaving rsp = 8 mod 16 as a call does */
    for (int i = 0; i < 6; i++) *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
    c->sp = sp;
}
#else
void hr_emu_context_switch(hr_emu_context *save, hr_emu_context *resume) { swapcontext(&save->uc, &resume->uc); }

void hr_emu_context_make(hr_emu_context *c, unsigned char *stack, size_t size, void (*entry)(void)) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, entry, 0);
}
#endif

int hr_emu_stacks_init(hr_emu_stacks *s, int count, size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size = (size + page - 1) / page * page;
    *s = (hr_emu_stacks){.stride = size + page, .size = size, .count = count};
    s->total = s->stride * (size_t)count;
    void *m = mmap(NULL, s->total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
    s->base = m;
    for (int i = 0; i < count; i++) /* the guard page of each stack stays PROT_NONE */
        if (mprotect(s->base + (size_t)i * s->stride + page, size, PROT_READ | PROT_WRITE) != 0) {
            munmap(m, s->total);
            s->base = NULL;
            return -1;
        }
    return 0;
}

void hr_emu_stacks_free(hr_emu_stacks *s) {
    if (s->base) munmap(s->base, s->total);
    s->base = NULL;
}

unsigned char *hr_emu_stack(const hr_emu_stacks *s, int i) {
    return s->base + (size_t)i * s->stride + (s->stride - s->size);
}

int hr_emu_stack_guard_hit(const hr_emu_stacks *s, const void *addr) {
    const unsigned char *a = addr;
    if (!s->base || a < s->base || a >= s->base + s->total) return -1;
    size_t i = (size_t)(a - s->base) / s->stride;
    return (size_t)(a - s->base) % s->stride < s->stride - s->size ? (int)i : -1;
}
