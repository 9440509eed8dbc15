#include "core/context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/graph.h"

static const char *const op_names[HR_OP_COUNT] = {
#define HR_OP_NAME(id, name) [HR_OP_##id] = name,
    HR_OP_LIST(HR_OP_NAME)
#undef HR_OP_NAME
};

const char *hr_op_name(hr_op_id op) { return op >= 0 && op < HR_OP_COUNT ? op_names[op] : "?"; }

hr_ctx *hr_ctx_create(void) {
    hr_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    for (int i = 0; i < HR_OP_COUNT; i++) ctx->ops[i].name = op_names[i];
    ctx->grad_enabled = true;
    ctx->rng = (hr_rng){.seed = 1337, .offset = 0};
    return ctx;
}

void hr_ctx_destroy(hr_ctx *ctx) {
    if (!ctx) return;
    hr_capture_abort(ctx);
    for (int k = 0; k < HR_DEVICE_KINDS; k++) hr_device_mem_release(ctx->devices[k]);
    free(ctx);
}

int hr_error(hr_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *hr_last_error(const hr_ctx *ctx) { return ctx->err; }

double hr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
